"""Name resolution in real crawls, against a local DNS server (issue #14).

``tests/support/dnsserver.py`` serves every kind of name a real list has
(answering after 30 ms, after 800 ms, NXDOMAIN, SERVFAIL, never, no address,
IPv6 only, both families, two addresses of which the first refuses) and
counts the queries it receives; ``tests/support/anyhost.py`` is the web
server all the live names lead to (127.0.0.1, 127.0.0.3 and ::1; nothing on
127.0.0.2). Nothing reaches a real nameserver.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from tests.crawl import crawl, run_cli, settings_args, write_list
from tests.support.anyhost import AnyHostServer
from tests.support.dnsserver import Answer, DNSServer

FAST = 0.03
LIVE: dict[str, Answer] = {
    **{f"fast{i}.test": Answer(a=("127.0.0.1",), delay=FAST) for i in range(4)},
    "v6only.test": Answer(aaaa=("::1",), delay=FAST),
    "dual.test": Answer(a=("127.0.0.1",), aaaa=("::1",), delay=FAST),
    "deadfirst.test": Answer(a=("127.0.0.2", "127.0.0.3"), delay=FAST),
    "slow.test": Answer(a=("127.0.0.1",), aaaa=("::1",), delay=0.8),
}
DEAD: dict[str, tuple[Answer, str]] = {
    "nx.test": (Answer(rcode="NXDOMAIN", delay=FAST), "nxdomain"),
    "servfail.test": (Answer(rcode="SERVFAIL", delay=FAST), "servfail"),
    "silent.test": (Answer(drop=True), "timeout"),
    "empty.test": (Answer(delay=FAST), "no_address"),
}
ZONE: dict[str, Answer] = {**LIVE, **{name: answer for name, (answer, _) in DEAD.items()}}
PATHS = ("/a", "/b", "/c")
DNS_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def dns() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def web() -> Iterator[AnyHostServer]:
    with AnyHostServer() as server:
        yield server


def _urls(port: int, seed: int) -> list[str]:
    urls = [f"http://{name}:{port}{path}" for name in ZONE for path in PATHS]
    random.Random(seed).shuffle(urls)
    return urls


def _settings(dns: DNSServer, **extra: Any) -> dict[str, Any]:
    return {
        "RESOLVE_HOSTS_ONLY": False,
        "RESOLVE_HOSTS": {},
        "DNS_NAMESERVERS": dns.address,
        "DNS_TIMEOUT": DNS_TIMEOUT,
        **extra,
    }


def _host(url: str) -> str:
    return url.split("//", 1)[1].split(":", 1)[0]


def check_rows(rows: list[dict[str, Any]], port: int) -> None:
    """Every live name fetched, every dead one a dns_error of its kind."""
    assert len(rows) == len(ZONE) * len(PATHS)
    for row in rows:
        host = _host(row["url"])
        if host in LIVE:
            assert row["status"] == 200, row
            assert not row["error"], row
            # The page of that name (the server echoes Host and path).
            assert row["title"] == f"{host}:{port} {row['url'].rsplit(str(port), 1)[1]}", row
        else:
            kind = DEAD[host][1]
            assert row["error"].startswith(f"dns_error: {kind}: "), row
            assert host in row["error"], row
        assert not row["error"].startswith("timeout"), row


def check_queries(dns: DNSServer) -> None:
    """One query per (name, type), failures included; nothing else asked."""
    expected = {(name, qtype): 1 for name in ZONE for qtype in ("A", "AAAA")}
    assert dict(dns.snapshot()) == expected


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_every_kind_of_name(dns: DNSServer, web: AnyHostServer, tmp_path: Path) -> None:
    """Every live kind 200, every dead kind its dns_error, no timeout rows,
    one query per (name, type), whatever the order of the list."""
    for seed in (1, 2):
        dns.reset()
        since = len(web.requests)
        urls = _urls(web.port, seed)
        result = await crawl(
            write_list(tmp_path / f"urls-{seed}.txt", urls),
            tmp_path,
            _settings(dns),
            report=f"report-{seed}.jsonl",
        )
        check_rows(result.rows, web.port)
        check_queries(dns)
        # Robots.txt and three pages per name, one lookup: the pages of a
        # live name reuse its connection, those of a dead one hit the
        # negative cache (or share the lookup in flight).
        stats = result.stats
        assert stats["dns/queries"] == 2 * len(ZONE)
        assert stats["dns/lookups"] == len(ZONE)
        assert stats["dns/negative_hits"] + stats.get("dns/coalesced", 0) >= 3 * len(DEAD)
        for _name, (_answer, kind) in DEAD.items():
            assert stats[f"dns/errors/{kind}"] == 1
        assert 0 < stats["dns/latency_ms/p50"] <= stats["dns/latency_ms/max"]
        assert stats["dns/latency_ms/max"] >= DNS_TIMEOUT * 1000 * 0.9  # the silent one

        # Where the connections went: the IPv6-only name over ::1, the dead
        # first address skipped for the second.
        seen = web.requests[since:]
        by_host: dict[str, set[str]] = {}
        for request in seen:
            by_host.setdefault(request.host.rsplit(":", 1)[0], set()).add(request.local)
        assert by_host["v6only.test"] == {"::1"}
        assert by_host["deadfirst.test"] == {"127.0.0.3"}
        assert by_host["fast0.test"] == {"127.0.0.1"}
        assert not {_host(u) for u in urls if _host(u) in DEAD} & by_host.keys()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("park_after", [0.05, -1])
@pytest_twisted.ensureDeferred
async def test_dns_time_is_not_download_time(
    web: AnyHostServer, tmp_path: Path, park_after: float
) -> None:
    """Names that never answer do not make healthy pages slow or time out:
    waiting for DNS is not DOWNLOAD_TIMEOUT (1 s here, half of DNS_TIMEOUT),
    and a healthy page's elapsed_ms has no other host's lookup in it; with
    the requests parked while their lookup runs (DNS_PARK_AFTER) or waiting
    in the download handler (-1)."""
    silent = {f"silent{i}.test": Answer(drop=True) for i in range(8)}
    healthy = {f"fast{i}.test": LIVE[f"fast{i}.test"] for i in range(4)}
    with DNSServer({**silent, **healthy}) as server:
        urls = [f"http://{name}:{web.port}/p" for name in silent]
        urls += [f"http://{name}:{web.port}/q{i}" for name in healthy for i in range(2)]
        random.Random(3).shuffle(urls)
        settings = _settings(
            server, DOWNLOAD_TIMEOUT=1, CONCURRENT_REQUESTS=4, DNS_PARK_AFTER=park_after
        )
        result = await crawl(write_list(tmp_path / "u.txt", urls), tmp_path, settings)
    assert len(result.rows) == len(urls)
    # Parked: each silent name's page (robots.txt follows its lookup), and
    # any healthy one whose 30 ms lookup took more than 50 ms on a busy box.
    parked = result.stats.get("dns/parked", 0)
    assert parked >= len(silent) if park_after >= 0 else parked == 0
    for row in result.rows:
        if _host(row["url"]) in silent:
            assert row["error"].startswith("dns_error: timeout: "), row
        else:
            assert row["status"] == 200, row
            assert row["elapsed_ms"] < 900, row


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_proxy_path_uses_the_same_resolver(
    dns: DNSServer, web: AnyHostServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests through a proxy (the Twisted client): the proxy's name is
    resolved by the project's resolver (one query per type), the target's
    by the proxy; a proxy name that does not exist is a dns_error that says
    so (Twisted alone says "DNS lookup failed")."""
    dns.reset()
    monkeypatch.setenv("http_proxy", f"http://fast0.test:{web.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    since = len(web.requests)
    urls = [f"http://target{i}.example:8080/x" for i in range(3)]
    result = await crawl(write_list(tmp_path / "u.txt", urls), tmp_path, _settings(dns))
    assert [row["status"] for row in result.rows] == [200] * 3, result.rows
    targets = {r.target for r in web.requests[since:]}
    assert {f"http://target{i}.example:8080/x" for i in range(3)} <= targets
    assert dict(dns.snapshot()) == {("fast0.test", "A"): 1, ("fast0.test", "AAAA"): 1}

    monkeypatch.setenv("http_proxy", f"http://nx.test:{web.port}")
    result = await crawl(
        write_list(tmp_path / "v.txt", urls[:1]), tmp_path, _settings(dns), report="v.jsonl"
    )
    (row,) = result.rows
    assert row["error"].startswith("dns_error: nxdomain: nx.test does not exist"), row


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_ssrf_guard_filters_every_address(
    dns: DNSServer, web: AnyHostServer, tmp_path: Path
) -> None:
    """With the guard on, a name's blocked addresses are dropped and the
    others used; a name with only blocked ones is a blocked_address row."""
    zone = {
        "mixed.test": Answer(a=("169.254.169.254", "127.0.0.1")),
        "internal.test": Answer(a=("10.1.2.3",), aaaa=("fd00::1",)),
    }
    with DNSServer(zone) as guard_dns:
        urls = [f"http://mixed.test:{web.port}/m", f"http://internal.test:{web.port}/i"]
        settings = _settings(
            guard_dns,
            PAGES_BLOCK_PRIVATE_ADDRESSES=True,
            PAGES_ALLOWED_ADDRESSES=["127.0.0.1/32"],
        )
        result = await crawl(write_list(tmp_path / "u.txt", urls), tmp_path, settings)
    rows = {_host(r["url"]): r for r in result.rows}
    assert rows["mixed.test"]["status"] == 200, rows
    error = rows["internal.test"]["error"]
    assert error.startswith("blocked_address: internal.test resolves to fd00::1, 10.1.2.3"), error


@pytest.mark.timeout(120)
def test_cli_crawl_and_summary(dns: DNSServer, web: AnyHostServer, tmp_path: Path) -> None:
    """``scrapy crawl`` (the resolver Scrapy installs on the reactor): the
    same rows, one query per (name, type), the DNS line of the summary."""
    dns.reset()
    urls = write_list(tmp_path / "urls.txt", _urls(web.port, 4))
    out = tmp_path / "report.jsonl"
    stats_file = tmp_path / "stats.json"
    args = ["crawl", "pages", "-a", f"urls={urls}", "-O", str(out)]
    args += settings_args({**_settings(dns), "PAGES_STATS_FILE": str(stats_file)})
    proc = run_cli(args, timeout=100)
    log = proc.stderr.decode()
    assert proc.returncode == 0, log[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    check_rows(rows, web.port)
    check_queries(dns)
    stats = json.loads(stats_file.read_text())
    assert stats["dns/queries"] == 2 * len(ZONE)
    assert f"Summary: DNS: {len(ZONE)} lookups ({2 * len(ZONE)} queries)" in log, log[-3000:]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("prefetch", [True, False])
@pytest_twisted.ensureDeferred
async def test_lookups_run_ahead_of_the_requests(
    web: AnyHostServer, tmp_path: Path, prefetch: bool
) -> None:
    """DNS_PREFETCH: the names of the list's next lines are asked while the
    lines before them are crawled, so a dead name near the end of the list
    times out during the crawl, not after it. Here 1,500 pages on a host
    (two batches of the list reader) then, last, a name that never answers:
    its query leaves before the last page of the first batch is fetched
    (without the look-ahead: when its own line's request is made)."""
    zone = {"site.test": LIVE["fast0.test"], "silent.test": Answer(drop=True)}
    timeout = 3.0
    with DNSServer(zone) as server:
        since = len(web.requests)
        urls = [f"http://site.test:{web.port}/p{i}" for i in range(1500)]
        urls.append(f"http://silent.test:{web.port}/last")
        settings = _settings(
            server, DNS_TIMEOUT=timeout, DNS_PREFETCH=prefetch, ROBOTSTXT_OBEY=False
        )
        result = await crawl(write_list(tmp_path / "u.txt", urls), tmp_path, settings)
        asked = server.first_asked[("silent.test", "A")]
    assert len(result.rows) == len(urls)
    assert result.rows[-1]["error"].startswith("dns_error: timeout: "), result.rows[-1]
    pages = sorted(r.time for r in web.requests[since:] if r.target.startswith("/p"))
    assert len(pages) == 1500
    if prefetch:
        assert result.stats["dns/prefetched"] >= 2  # both names, before their requests
        assert asked < pages[999]  # asked while the first batch was crawled
    else:
        assert "dns/prefetched" not in result.stats
        assert asked > pages[-1] - 0.5  # asked when its line's request came
