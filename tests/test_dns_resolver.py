"""The resolver on its own (scraper_project/dns.py, resolver.py), against the
local DNS server of tests/support/dnsserver.py; TTLs with an injected clock."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from scrapy.exceptions import UsageError
from scrapy.settings import Settings
from twisted.internet.address import IPv4Address, IPv6Address

from scraper_project.dns import (
    RESOLUTION_DELAY,
    NameResolutionError,
    Resolver,
    parse_hosts_file,
    parse_nameserver,
)
from scraper_project.ratelimit.testing import FakeClock
from scraper_project.resolver import AsyncResolver, BlockedAddressError, resolver_from_settings
from tests.support.aio import in_task
from tests.support.dnsserver import Answer, DNSServer

ZONE: dict[str, Answer] = {
    "fast.test": Answer(a=("127.0.0.1",), delay=0.03),
    "short.test": Answer(a=("127.0.0.1",), ttl=30),
    "tiny.test": Answer(a=("127.0.0.1",), ttl=1),
    "huge.test": Answer(a=("127.0.0.1",), ttl=10**6),
    "dual.test": Answer(a=("127.0.0.1", "127.0.0.5"), aaaa=("::1",), ttl=30),
    "nx.test": Answer(rcode="NXDOMAIN"),
    "servfail.test": Answer(rcode="SERVFAIL"),
    "refused.test": Answer(rcode="REFUSED"),
    "silent.test": Answer(drop=True),
    "empty.test": Answer(),
    "slow.test": Answer(a=("127.0.0.1",), delay=0.8),
    "late6.test": Answer(a=("127.0.0.1",), aaaa=("::1",), aaaa_delay=0.6),
    "late6none.test": Answer(a=("127.0.0.1",), aaaa_delay=0.6),
    "big.test": Answer(a=tuple(f"10.9.{i // 250}.{i % 250 + 1}" for i in range(120))),
    "mixed.test": Answer(a=("10.0.0.1", "127.0.0.1"), aaaa=("fd00::1",)),
    "private.test": Answer(a=("10.0.0.1",), aaaa=("fd00::1",)),
    **{f"h{i}.test": Answer(a=("127.0.0.1",), delay=0.3) for i in range(8)},
    **{f"warm{i}.test": Answer(a=("127.0.0.1",), delay=0.03) for i in range(6)},
    **{f"other{i}.test": Answer(a=("127.0.0.1",)) for i in range(20)},
}
_OTHERS = itertools.count()


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self.values[key] = self.values.get(key, start) + count


@pytest.fixture(scope="module")
def server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as running:
        yield running


@pytest.fixture
def dns(server: DNSServer) -> DNSServer:
    server.reset()
    return server


def make(dns: DNSServer, **options: Any) -> Resolver:
    resolver = Resolver([dns.address], **{"timeout": 2.0, **options})
    resolver.sinks.append(Stats())
    return resolver


def stats(resolver: Resolver) -> dict[str, int]:
    sink = resolver.sinks[0]
    assert isinstance(sink, Stats)
    return sink.values


async def outcome(resolver: Resolver, host: str) -> tuple[str, ...] | str:
    try:
        return await resolver.resolve(host)
    except NameResolutionError as exc:
        return exc.kind


def asked(dns: DNSServer, host: str) -> tuple[int, int]:
    return dns.count(host, "A"), dns.count(host, "AAAA")


async def retire_channel(resolver: Resolver) -> None:
    """Two more answers: the c-ares channel retires (c-ares keeps answers
    for the life of its channel, which a fake clock does not move)."""
    for _ in range(2):
        await resolver.resolve(f"other{next(_OTHERS)}.test")


# -- answers and failures -----------------------------------------------------------


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_every_answer_kind(dns: DNSServer) -> None:
    resolver = make(dns)
    hosts = ["fast.test", "dual.test", "nx.test", "servfail.test", "refused.test", "empty.test"]
    results = await asyncio.gather(*(outcome(resolver, h) for h in hosts))
    assert dict(zip(hosts, results, strict=True)) == {
        "fast.test": ("127.0.0.1",),
        "dual.test": ("::1", "127.0.0.1", "127.0.0.5"),  # every address, IPv6 first
        "nx.test": "nxdomain",
        "servfail.test": "servfail",
        "refused.test": "servfail",
        "empty.test": "no_address",
    }
    with pytest.raises(NameResolutionError) as info:
        await resolver.resolve("refused.test")
    assert str(info.value) == "servfail: the nameserver could not resolve refused.test (REFUSED)"
    assert {h: asked(dns, h) for h in hosts} == dict.fromkeys(hosts, (1, 1))
    assert stats(resolver) == {
        "dns/lookups": 6,
        "dns/queries": 12,
        "dns/negative_hits": 1,
        "dns/errors/nxdomain": 1,
        "dns/errors/servfail": 2,
        "dns/errors/no_address": 1,
    }
    assert resolver.latency.count == 6


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_timeout_is_the_whole_budget(dns: DNSServer) -> None:
    """DNS_TIMEOUT bounds the lookup; one query per type, then cached."""
    resolver = make(dns, timeout=0.5)
    started = time.monotonic()
    assert await outcome(resolver, "silent.test") == "timeout"
    assert 0.45 < time.monotonic() - started < 1.5
    assert await outcome(resolver, "silent.test") == "timeout"
    assert asked(dns, "silent.test") == (1, 1)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_resends_with_attempts(dns: DNSServer) -> None:
    """DNS_ATTEMPTS=2: a silent nameserver is asked twice within the budget."""
    resolver = make(dns, timeout=0.9, attempts=2)
    started = time.monotonic()
    assert await outcome(resolver, "silent.test") == "timeout"
    assert time.monotonic() - started < 1.8
    assert asked(dns, "silent.test") == (2, 2)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_slow_nameserver_after_fast_answers(dns: DNSServer) -> None:
    """A nameserver that answers in 800 ms still answers, with one query per
    type, after many 30 ms answers (c-ares on a shared channel would have
    learnt a 250 ms timeout by then, and resent)."""
    resolver = make(dns, timeout=2.0)
    for i in range(6):
        assert await resolver.resolve(f"warm{i}.test") == ("127.0.0.1",)
    assert await resolver.resolve("slow.test") == ("127.0.0.1",)
    assert asked(dns, "slow.test") == (1, 1)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_truncated_answer_over_tcp(dns: DNSServer) -> None:
    resolver = make(dns)
    addresses = await resolver.resolve("big.test")
    assert len(addresses) == 120
    assert dns.tcp_queries[("big.test", "A")] == 1


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_resolution_delay(dns: DNSServer) -> None:
    """RFC 8305: A answered, AAAA late -> done RESOLUTION_DELAY later with
    the IPv4 addresses; the late AAAA still lands in the cache."""
    resolver = make(dns)
    started = time.monotonic()
    assert await resolver.resolve("late6.test") == ("127.0.0.1",)
    assert RESOLUTION_DELAY < time.monotonic() - started < 0.4
    assert resolver.cached("late6.test") == ("127.0.0.1",)
    await asyncio.sleep(0.7)
    assert resolver.cached("late6.test") == ("::1", "127.0.0.1")
    assert asked(dns, "late6.test") == (1, 1)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_stale_type_refreshed_behind(dns: DNSServer) -> None:
    """A still fresh, AAAA stale and slow to answer: the lookup does not wait
    for AAAA (the cached IPv4 addresses are used), AAAA lands later."""
    clock = FakeClock()
    resolver = make(dns, clock=clock, negative_ttl=5)
    assert await resolver.resolve("late6none.test") == ("127.0.0.1",)
    await asyncio.sleep(0.7)  # AAAA (NODATA) arrived: cached for 5 s
    await retire_channel(resolver)
    clock.advance(6)
    started = time.monotonic()
    assert await resolver.resolve("late6none.test") == ("127.0.0.1",)
    assert time.monotonic() - started < 0.4
    await asyncio.sleep(0.7)
    assert asked(dns, "late6none.test") == (1, 2)


# -- caches -------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_ttls(dns: DNSServer) -> None:
    clock = FakeClock(100.0)
    resolver = make(dns, clock=clock, min_ttl=10, max_ttl=3600, negative_ttl=300)
    for host in ("short.test", "tiny.test", "huge.test", "nx.test"):
        await outcome(resolver, host)
    clock.advance(9)  # tiny (TTL 1) is kept for the floor, 10 s
    for host in ("short.test", "tiny.test", "huge.test", "nx.test"):
        await outcome(resolver, host)
    assert [asked(dns, h)[0] for h in ("short.test", "tiny.test", "huge.test", "nx.test")] == [
        1,
        1,
        1,
        1,
    ]
    clock.advance(2)  # 11 s: tiny asked again
    await outcome(resolver, "tiny.test")
    await outcome(resolver, "short.test")
    assert asked(dns, "tiny.test")[0] == 2
    assert asked(dns, "short.test")[0] == 1
    clock.advance(20)  # 31 s: short (TTL 30) asked again
    await outcome(resolver, "short.test")
    assert asked(dns, "short.test")[0] == 2
    clock.advance(3600 - 31 + 1)  # past the ceiling: huge asked again; nx (300 s) long ago
    await outcome(resolver, "huge.test")
    await outcome(resolver, "nx.test")
    assert asked(dns, "huge.test")[0] == 2
    assert asked(dns, "nx.test")[0] == 2


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_failures_kept_for_failure_ttl(dns: DNSServer) -> None:
    clock = FakeClock()
    resolver = make(dns, clock=clock, failure_ttl=30, negative_ttl=300, timeout=0.3)
    for _ in range(3):
        for host in ("servfail.test", "silent.test", "nx.test", "empty.test"):
            await outcome(resolver, host)
    clock.advance(31)
    for host in ("servfail.test", "silent.test", "nx.test", "empty.test"):
        await outcome(resolver, host)
    assert asked(dns, "servfail.test") == (2, 2)
    assert asked(dns, "silent.test") == (2, 2)
    assert asked(dns, "nx.test") == (1, 1)  # RFC 2308: longer
    assert asked(dns, "empty.test") == (1, 1)
    assert stats(resolver)["dns/negative_hits"] == 4 * 2 + 2


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_types_expire_separately(dns: DNSServer) -> None:
    """dual.test: A and AAAA with TTL 30; a name with addresses for one type
    and NODATA for the other keeps the NODATA for negative_ttl: only the
    stale type is asked again."""
    clock = FakeClock()
    resolver = make(dns, clock=clock, negative_ttl=300)
    assert await resolver.resolve("short.test") == ("127.0.0.1",)
    await retire_channel(resolver)
    clock.advance(31)
    assert await resolver.resolve("short.test") == ("127.0.0.1",)
    assert asked(dns, "short.test") == (2, 1)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_coalesced_and_cancel_safe(dns: DNSServer) -> None:
    """Concurrent lookups of one name share one query per type; a waiter
    that is cancelled does not cancel the others' lookup."""
    resolver = make(dns)
    waiters = [asyncio.ensure_future(resolver.resolve("slow.test")) for _ in range(20)]
    await asyncio.sleep(0.1)
    waiters[0].cancel()
    results = await asyncio.gather(*waiters[1:])
    assert results == [("127.0.0.1",)] * 19
    assert asked(dns, "slow.test") == (1, 1)
    assert stats(resolver)["dns/coalesced"] == 19


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_cache_is_bounded_lru(dns: DNSServer) -> None:
    resolver = make(dns, cache_size=3)
    for i in range(6):
        await resolver.resolve(f"warm{i}.test")
    assert len(resolver) == 3
    assert resolver.cached("warm5.test") == ("127.0.0.1",)
    assert resolver.cached("warm0.test") is None  # the least recently used went
    resolver = make(dns, cache_size=0)
    await resolver.resolve("fast.test")
    await retire_channel(resolver)
    await resolver.resolve("fast.test")
    assert len(resolver) == 0
    assert asked(dns, "fast.test") == (2, 2)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_lookups_in_flight_are_bounded(dns: DNSServer) -> None:
    """concurrency=2: 8 names answering after 300 ms take 4 rounds, and the
    server never has more than 2 lookups (4 queries) waiting."""
    resolver = make(dns, concurrency=2)
    started = time.monotonic()
    await asyncio.gather(*(resolver.resolve(f"h{i}.test") for i in range(8)))
    assert time.monotonic() - started >= 4 * 0.3 * 0.9
    assert dns.max_pending == 4


# -- the Scrapy / Twisted face ----------------------------------------------------------


def _async_resolver(settings: dict[str, Any]) -> AsyncResolver:
    from twisted.internet import reactor

    class _Crawler:
        def __init__(self, values: dict[str, Any]) -> None:
            self.settings = Settings({"DNS_HOSTS_FILE": "", **values})

    return AsyncResolver.from_crawler(_Crawler(settings), reactor)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_guard_filters_every_address(dns: DNSServer) -> None:
    resolver = _async_resolver(
        {
            "DNS_NAMESERVERS": [dns.address],
            "PAGES_BLOCK_PRIVATE_ADDRESSES": True,
            "PAGES_ALLOWED_ADDRESSES": ["127.0.0.0/8"],
            "RESOLVE_HOSTS": {"pinned.test": ["10.1.1.1", "127.0.0.9"]},
        }
    )
    assert await resolver.resolve("mixed.test") == ("127.0.0.1",)
    assert await resolver.resolve("pinned.test") == ("127.0.0.9",)
    with pytest.raises(BlockedAddressError) as info:
        await resolver.resolve("private.test")
    assert info.value.args[0] == (
        "private.test resolves to fd00::1, 10.0.0.1, non-public addresses only "
        "(PAGES_BLOCK_PRIVATE_ADDRESSES is on)"
    )
    with pytest.raises(BlockedAddressError):
        resolver.cached("169.254.169.254")  # IP literals too
    assert resolver.cached("127.0.0.1") == ("127.0.0.1",)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_static_tables(dns: DNSServer, tmp_path: Any) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# comment\n127.0.0.7 intranet intranet.corp # alias\n::1 intranet\nbad line\n"
    )
    resolver = _async_resolver(
        {
            "DNS_NAMESERVERS": [dns.address],
            "DNS_HOSTS_FILE": str(hosts),
            "RESOLVE_HOSTS": {"Pinned.Test.": "127.0.0.8", "intranet.corp": "127.0.0.6"},
        }
    )
    assert resolver.cached("intranet") == ("::1", "127.0.0.7")
    assert resolver.cached("intranet.corp") == ("127.0.0.6",)  # RESOLVE_HOSTS first
    assert resolver.cached("PINNED.test.") == ("127.0.0.8",)
    assert resolver.cached("fast.test") is None
    only = _async_resolver({"RESOLVE_HOSTS_ONLY": True, "RESOLVE_HOSTS": {"a.test": "127.0.0.1"}})
    assert only.cached("a.test") == ("127.0.0.1",)
    assert only.cached("10.0.0.1") == ("10.0.0.1",)
    with pytest.raises(NameResolutionError, match=r"^nxdomain: b.test is not in RESOLVE_HOSTS"):
        only.cached("b.test")
    assert sum(dns.snapshot().values()) == 0


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_twisted_name_resolver(dns: DNSServer) -> None:
    """IHostnameResolver: every address, filtered by type, from the cache."""
    resolver = _async_resolver({"DNS_NAMESERVERS": [dns.address]})

    class Receiver:
        def __init__(self) -> None:
            self.addresses: list[Any] = []
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resolutionBegan(self, resolution: Any) -> None:
            assert resolution.name == "dual.test"

        def addressResolved(self, address: Any) -> None:
            self.addresses.append(address)

        def resolutionComplete(self) -> None:
            self.done.set_result(None)

    both, v4 = Receiver(), Receiver()
    resolver.resolveHostName(both, "dual.test", 80)
    await both.done
    resolver.resolveHostName(v4, "dual.test", 80, [IPv4Address])
    assert v4.done.done()  # cached: synchronous
    assert both.addresses == [
        IPv6Address("TCP", "::1", 80),
        IPv4Address("TCP", "127.0.0.1", 80),
        IPv4Address("TCP", "127.0.0.5", 80),
    ]
    assert v4.addresses == both.addresses[1:]
    assert asked(dns, "dual.test") == (1, 1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"DNS_NAMESERVERS": ["dns.example"]},
            "DNS_NAMESERVERS: 'dns.example' is not a nameserver",
        ),
        ({"DNS_NAMESERVERS": ["127.0.0.1:99999"]}, "DNS_NAMESERVERS: '127.0.0.1:99999'"),
        ({"DNS_TIMEOUT": "soon"}, "DNS_TIMEOUT must be a number, got 'soon'"),
        ({"DNS_TIMEOUT": 0}, "DNS_TIMEOUT must be a number >= 0.001, got 0"),
        ({"DNS_ATTEMPTS": 0}, "DNS_ATTEMPTS must be between 1 and 5, got 0"),
        ({"DNS_ATTEMPTS": 9}, "DNS_ATTEMPTS must be between 1 and 5, got 9"),
        ({"DNS_CONCURRENCY": 1.5}, "DNS_CONCURRENCY must be an integer, got 1.5"),
        ({"DNSCACHE_SIZE": -1}, "DNSCACHE_SIZE must be >= 0, got -1"),
        ({"DNS_CACHE_MIN_TTL": 100, "DNS_CACHE_MAX_TTL": 50}, "DNS_CACHE_MIN_TTL (100) must not"),
        ({"DNS_NEGATIVE_TTL": "nan"}, "DNS_NEGATIVE_TTL must be a number >= 0, got 'nan'"),
        ({"DNS_FAILURE_TTL": -1}, "DNS_FAILURE_TTL must be a number >= 0, got -1"),
        ({"DNS_HOSTS_FILE": "/nonexistent/hosts"}, "DNS_HOSTS_FILE: cannot read '/nonexistent"),
        ({"RESOLVE_HOSTS": {"a.test": "nowhere"}}, "RESOLVE_HOSTS: 'a.test' maps to 'nowhere'"),
        ({"RESOLVE_HOSTS": {"a.test": []}}, "RESOLVE_HOSTS: 'a.test' maps to no address"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        resolver_from_settings(Settings(settings))
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"HAPPY_EYEBALLS_DELAY": "x"}, "HAPPY_EYEBALLS_DELAY must be a number, got 'x'"),
        ({"DNS_PARK_AFTER": -2}, "DNS_PARK_AFTER must be a number >= -1, got -2"),
        ({"PAGES_ALLOWED_ADDRESSES": ["10.0.0.0/33"]}, "PAGES_ALLOWED_ADDRESSES: '10.0.0.0/33'"),
    ],
)
def test_bad_connection_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        _async_resolver(settings)
    assert str(info.value).startswith(message), str(info.value)


def test_parsers() -> None:
    assert parse_nameserver("127.0.0.1") == "127.0.0.1:53"
    assert parse_nameserver(" 127.0.0.1:5353 ") == "127.0.0.1:5353"
    assert parse_nameserver("::1") == "[::1]:53"
    assert parse_nameserver("[::1]:5353") == "[::1]:5353"
    for bad in ("[::1", "[::1]x", "host:53", "1.2.3.4:0", ""):
        with pytest.raises(ValueError):  # noqa: PT011 (the message is the input)
            parse_nameserver(bad)
    table = parse_hosts_file(
        "127.0.0.1 localhost\n::1 localhost ip6-localhost\nfe80::1%eth0 link\n"
        "not-an-ip name\n#10.0.0.1 commented\n10.0.0.2 Upper.Case. # x\n"
    )
    assert table == {
        "localhost": ("::1", "127.0.0.1"),
        "ip6-localhost": ("::1",),
        "link": ("fe80::1",),
        "upper.case": ("10.0.0.2",),
    }
