"""Name resolution on the asyncio loop: c-ares queries, caches, coalescing.

:class:`Resolver` answers "which addresses does this host name have?" for
the download handlers (``resolver.AsyncResolver`` is its Scrapy and Twisted
face: settings, the SSRF guard, stats). It imports nothing from Twisted.

- **Queries.** A and AAAA are asked at once, with c-ares (pycares) driven by
  the asyncio loop itself (its sockets watched with ``add_reader``): no
  thread, no pool. Every address of both answers is kept, IPv6 first (RFC
  6724's default preference; the handler interleaves the families for Happy
  Eyeballs), with the answers' TTLs.
- **Short-lived c-ares channels.** Once a channel has seen 3 answers, c-ares
  1.34 gives every new query of it a timeout of 5x the server's average
  latency (250 ms at least; ``ares_metrics.c``, not adjustable through
  pycares) and resends on timeout: after a few 30 ms answers, a nameserver
  that takes 800 ms is asked again and again and the name fails within
  ~0.5 s. So a channel takes new queries only until it has seen 3 answers;
  then the next lookups open a new one, and it closes when its last query
  ends. Every query is thus sent with the timeout given (``timeout`` /
  ``attempts``), c-ares never resends (``tries=1``: this module does, for
  ``attempts`` > 1), and c-ares's own query cache dies with its channel
  (ours is bounded; c-ares's is not). A channel per lookup would cost
  ~0.3 ms more per lookup (notes/dns.md).
- **RFC 8305 resolution delay.** When A answers first, AAAA gets
  :data:`RESOLUTION_DELAY` more before the lookup completes with what it
  has; the late AAAA still lands in the cache.
- **Caches** (one LRU of ``cache_size`` names): addresses for their TTL,
  within ``min_ttl``/``max_ttl``; NXDOMAIN and NODATA for ``negative_ttl``
  (RFC 2308; pycares does not hand over the SOA of a negative answer, so the
  zone's own negative TTL is not known); SERVFAIL, refusals and timeouts for
  ``failure_ttl``. A and AAAA expire separately: only the stale type is asked
  again. A cached name costs a dict lookup.
- **Coalescing.** Concurrent lookups of one name share one query per type.
- **Bounded.** At most ``concurrency`` lookups are in flight; the others wait
  for a place before their budget starts.

A name that cannot be resolved raises :class:`NameResolutionError` whose
``kind`` is ``nxdomain``, ``servfail``, ``timeout`` or ``no_address``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

import pycares
from scrapy.exceptions import CannotResolveHostError

from scraper_project.observability.latency import LatencyReservoir

__all__ = [
    "KINDS",
    "NO_ADDRESS",
    "NXDOMAIN",
    "RESOLUTION_DELAY",
    "SERVFAIL",
    "TIMEOUT",
    "NameResolutionError",
    "Resolver",
    "parse_hosts_file",
    "parse_nameserver",
    "system_nameservers",
    "v6_first",
]

logger = logging.getLogger(__name__)

NXDOMAIN: Final = "nxdomain"
SERVFAIL: Final = "servfail"
TIMEOUT: Final = "timeout"
NO_ADDRESS: Final = "no_address"
KINDS: Final = (NXDOMAIN, SERVFAIL, TIMEOUT, NO_ADDRESS)

#: RFC 8305 section 3: how long to wait for AAAA once A has answered.
RESOLUTION_DELAY: Final = 0.05

_A: Final = pycares.QUERY_TYPE_A
_AAAA: Final = pycares.QUERY_TYPE_AAAA
_BAD: Final = pycares.ARES_SOCKET_BAD
_NODATA: Final = frozenset((pycares.errno.ARES_ENODATA,))
_NOTFOUND: Final = frozenset((pycares.errno.ARES_ENOTFOUND, pycares.errno.ARES_EBADNAME))
_CODES: Final = {
    pycares.errno.ARES_ESERVFAIL: "SERVFAIL",
    pycares.errno.ARES_EREFUSED: "REFUSED",
    pycares.errno.ARES_ENOTIMP: "NOTIMP",
    pycares.errno.ARES_EFORMERR: "FORMERR",
    pycares.errno.ARES_EBADRESP: "a malformed answer",
    pycares.errno.ARES_ECONNREFUSED: "the nameserver refused the connection",
}


class NameResolutionError(CannotResolveHostError):
    """``host`` cannot be resolved; ``kind`` is one of :data:`KINDS`."""

    def __init__(self, host: str, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.host = host
        self.kind = kind
        self.reason = reason

    def copy(self) -> NameResolutionError:
        """A fresh exception with the same meaning (a cached one is raised
        many times; each raise gets its own traceback)."""
        return NameResolutionError(self.host, self.kind, self.reason)


class _Failed:
    """One record type's failure: its kind and what the nameserver said."""

    __slots__ = ("code", "kind")

    def __init__(self, kind: str, code: str) -> None:
        self.kind = kind
        self.code = code


# One record type's answer: its addresses (empty: NODATA), a failure, or
# None (never asked, or still on its way).
_Outcome = tuple[str, ...] | _Failed | None


class StatsSink(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


class _Entry:
    """A cached name: the outcome of each record type and until when it
    holds; ``addresses``/``error`` combine them, valid until ``expires``."""

    __slots__ = ("a", "a_until", "aaaa", "aaaa_until", "addresses", "error", "expires")

    def __init__(self) -> None:
        self.a: _Outcome = None
        self.aaaa: _Outcome = None
        self.a_until = 0.0
        self.aaaa_until = 0.0
        self.addresses: tuple[str, ...] = ()
        self.error: NameResolutionError | None = None
        self.expires = 0.0


def parse_nameserver(text: str) -> str:
    """``ip``, ``ip:port``, ``[ipv6]:port`` or ``ipv6`` -> c-ares's form
    (``ip:port`` / ``[ipv6]:port``); ``ValueError`` if it is none of these."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(text)
        if rest:
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    address = ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(text)
    if address.version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def system_nameservers() -> list[str]:
    """The nameservers of the system's resolver configuration, as c-ares
    reads them (``/etc/resolv.conf``; ``127.0.0.1:53`` if it lists none)."""
    channel = pycares.Channel(sock_state_cb=_ignore_sockets)
    try:
        servers: list[str] = channel.servers
    finally:
        channel.close()
    return servers


def _ignore_sockets(fd: int, readable: bool, writable: bool) -> None:
    """A channel only read for its configuration opens no socket."""


def parse_hosts_file(text: str) -> dict[str, tuple[str, ...]]:
    """``/etc/hosts`` lines (``address name [aliases...]``, ``#`` comments)
    -> ``{name: addresses}``, in file order; lines that do not start with an
    IP address are skipped, as glibc does."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0].split("%", 1)[0]))
        except ValueError:
            continue
        for name in fields[1:]:
            addresses = table.setdefault(name.lower().rstrip("."), [])
            if address not in addresses:
                addresses.append(address)
    return {name: v6_first(addresses) for name, addresses in table.items()}


def v6_first(addresses: Iterable[str]) -> tuple[str, ...]:
    """IPv6 addresses first (RFC 6724's default), each family in its order."""
    listed = list(addresses)
    return tuple([a for a in listed if ":" in a] + [a for a in listed if ":" not in a])


# c-ares's MIN_COUNT_FOR_AVERAGE: answers after which it adapts timeouts.
_FRESH_ANSWERS: Final = 3
# Outcomes that c-ares counts as answers (NOERROR, NXDOMAIN).
_COUNTED: Final = frozenset((None, pycares.errno.ARES_ENODATA, pycares.errno.ARES_ENOTFOUND))


class _Channel:
    """A c-ares channel whose sockets the asyncio loop watches. It takes
    queries until ``retired`` (c-ares has seen enough answers to start
    adapting its timeouts) and closes when the last of them ends."""

    __slots__ = (
        "__weakref__",
        "answers",
        "channel",
        "closed",
        "loop",
        "pending",
        "readers",
        "retired",
        "timer",
        "writers",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, servers: Sequence[str], timeout: float
    ) -> None:
        self.loop = loop
        self.closed = False
        self.retired = False
        self.answers = 0
        self.pending = 0
        self.readers: set[int] = set()
        self.writers: set[int] = set()
        self.timer: asyncio.TimerHandle | None = None
        # No resolv.conf, no nsswitch/host.conf: every option is given here,
        # so RES_OPTIONS or the system's file cannot change the budget.
        self.channel = pycares.Channel(
            servers=list(servers),
            timeout=timeout,
            tries=1,
            lookups="b",
            resolvconf_path=os.devnull,
            sock_state_cb=self._sockets,
        )

    def ask(self, host: str, qtype: int) -> asyncio.Future[tuple[Any, int | None]]:
        future: asyncio.Future[tuple[Any, int | None]] = self.loop.create_future()

        def done(result: Any, errno: int | None) -> None:
            # Also called by c-ares's closing thread (cancelled): ignored.
            if self.closed:
                return
            self.pending -= 1
            if errno in _COUNTED:
                self.answers += 1
                if self.answers >= _FRESH_ANSWERS:
                    self.retired = True
            if not future.done():
                future.set_result((result, errno))
            if self.retired and not self.pending:
                # Not from inside c-ares's processing: next time round.
                self.loop.call_soon(self.close)

        self.pending += 1
        try:
            self.channel.query(host, qtype, callback=done)
        except (pycares.AresError, ValueError, UnicodeError) as exc:
            self.pending -= 1
            if not future.done():
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                future.set_result((None, code if code is not None else pycares.errno.ARES_EBADNAME))
        self._arm()
        return future

    def _sockets(self, fd: int, readable: bool, writable: bool) -> None:
        if self.closed:  # c-ares's closing thread: never touch the loop from it
            return
        loop = self.loop
        self._watch(
            self.readers,
            fd,
            readable,
            add=loop.add_reader,
            remove=loop.remove_reader,
            fds=(fd, _BAD),
        )
        self._watch(
            self.writers,
            fd,
            writable,
            add=loop.add_writer,
            remove=loop.remove_writer,
            fds=(_BAD, fd),
        )

    def _watch(
        self,
        watched: set[int],
        fd: int,
        wanted: bool,
        *,
        add: Callable[..., object],
        remove: Callable[[int], object],
        fds: tuple[int, int],
    ) -> None:
        if wanted and fd not in watched:
            watched.add(fd)
            add(fd, self._process, *fds)
        elif not wanted and fd in watched:
            watched.discard(fd)
            remove(fd)

    def _process(self, read_fd: int, write_fd: int) -> None:
        if not self.closed:
            self.channel.process_fd(read_fd, write_fd)

    def _arm(self) -> None:
        """Wake c-ares when its next try times out (resends, its timeouts)."""
        if self.closed:
            return
        if self.timer is not None:
            self.timer.cancel()
        delay = self.channel.timeout()  # type: ignore[no-untyped-call]  # pycares: unannotated
        self.timer = self.loop.call_later(max(delay, 0.001) if delay else 0.05, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if not self.closed:
            self.channel.process_fd(_BAD, _BAD)
            self._arm()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for fd in self.readers:
            self.loop.remove_reader(fd)
        for fd in self.writers:
            self.loop.remove_writer(fd)
        self.readers.clear()
        self.writers.clear()
        # Destroyed by pycares's closing thread; queries still pending are
        # cancelled there (their callbacks see ``closed`` and do nothing).
        self.channel.close()


class Resolver:
    """Host name -> addresses; see the module docstring.

    ``nameservers``: ``ip[:port]`` / ``[ipv6]:port`` (empty: the system's).
    ``timeout``: seconds a lookup may take, from its first query to its last
    answer. ``attempts``: queries per record type and nameserver within that
    budget (more than one resends after silence, for lossy links).
    ``concurrency``: lookups in flight at most. ``cache_size``: names kept
    (0: no cache, lookups are still coalesced). ``static``: names answered
    without a query (``RESOLVE_HOSTS``, the hosts file), checked first;
    ``static_only``: every other name fails at once (``nxdomain``).
    ``clock``: monotonic seconds, for the cache (injected in tests).
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout: float = 5.0,
        attempts: int = 1,
        concurrency: int = 100,
        cache_size: int = 10_000,
        min_ttl: float = 10.0,
        max_ttl: float = 3600.0,
        negative_ttl: float = 300.0,
        failure_ttl: float = 30.0,
        static: Mapping[str, tuple[str, ...]] | None = None,
        static_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        latency_samples: int = 10_000,
    ) -> None:
        self._nameservers = [parse_nameserver(s) for s in nameservers]
        self.timeout = timeout
        self.attempts = attempts
        self.concurrency = concurrency
        self.cache_size = cache_size
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.negative_ttl = min(negative_ttl, max_ttl)
        self.failure_ttl = failure_ttl
        self.static: dict[str, tuple[str, ...]] = dict(static or {})
        self.static_only = static_only
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[tuple[str, ...]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._current: _Channel | None = None
        self._channels: weakref.WeakSet[_Channel] = weakref.WeakSet()
        self._closed = False
        #: Lookup latencies in ms (first query to the answer used).
        self.latency = LatencyReservoir(latency_samples)
        #: Where the ``dns/...`` counters go (the crawlers' stats).
        self.sinks: list[StatsSink] = []

    @property
    def nameservers(self) -> list[str]:
        if not self._nameservers:
            self._nameservers = system_nameservers()
        return self._nameservers

    def __len__(self) -> int:
        """Names in the cache."""
        return len(self._cache)

    def _inc(self, key: str, count: int = 1) -> None:
        for sink in self.sinks:
            sink.inc_value(key, count)

    # -- the lookups ---------------------------------------------------------------

    def cached(self, host: str) -> tuple[str, ...] | None:
        """The addresses of ``host`` without a query (table or cache), or
        ``None``; raises :class:`NameResolutionError` for a cached failure.
        ``host``: lower case, no trailing dot. A dict lookup or two."""
        static = self.static.get(host)
        if static is not None:
            return static
        entry = self._cache.get(host)
        if entry is not None and entry.expires > self._clock():
            self._cache.move_to_end(host)
            if entry.error is not None:
                self._inc("dns/negative_hits")
                raise entry.error.copy()
            self._inc("dns/cache_hits")
            return entry.addresses
        return None

    def prefetch(self, host: str) -> bool:
        """Start looking ``host`` up unless it is known or on its way; do not
        wait for it (a look-ahead: the request for it comes later). Return
        whether a lookup was started. Counts no cache hit. ``host``: lower
        case, no trailing dot."""
        if self.static_only or self._closed or host in self.static or host in self._inflight:
            return False
        entry = self._cache.get(host)
        if entry is not None and entry.expires > self._clock():
            return False
        self._start(host)
        self._inc("dns/prefetched")
        return True

    def refuse(self, host: str) -> NameResolutionError:
        """The error of a name that may not be queried (``static_only``)."""
        return NameResolutionError(
            host, NXDOMAIN, f"{host} is not in RESOLVE_HOSTS (RESOLVE_HOSTS_ONLY)"
        )

    async def resolve(self, host: str) -> tuple[str, ...]:
        """The addresses of ``host``, IPv6 first; :class:`NameResolutionError`
        if it has none. ``host``: lower case, no trailing dot."""
        addresses = self.cached(host)
        if addresses is not None:
            return addresses
        if self.static_only:
            raise self.refuse(host)
        waiter = self._inflight.get(host)
        if waiter is None:
            waiter = self._start(host)
        else:
            self._inc("dns/coalesced")
        # shield(): a waiter that is cancelled does not cancel the lookup the
        # others are waiting for.
        return await asyncio.shield(waiter)

    def _start(self, host: str) -> asyncio.Future[tuple[str, ...]]:
        if self._closed:
            raise RuntimeError("the resolver is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[str, ...]] = loop.create_future()
        # A waiter nobody awaits any more must not log "exception never retrieved".
        waiter.add_done_callback(_consume)
        self._inflight[host] = waiter
        entry = self._cache.get(host)
        now = self._clock()
        want_a = entry is None or entry.a_until <= now
        want_aaaa = entry is None or entry.aaaa_until <= now
        task = loop.create_task(self._lookup(host, want_a, want_aaaa, waiter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return waiter

    async def _lookup(
        self,
        host: str,
        want_a: bool,
        want_aaaa: bool,
        waiter: asyncio.Future[tuple[str, ...]],
    ) -> None:
        try:
            async with self._semaphore:
                await self._query(host, want_a, want_aaaa, waiter)
        except BaseException as exc:
            if not waiter.done():
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            if self._inflight.get(host) is waiter:
                del self._inflight[host]
            if not isinstance(exc, Exception):
                raise

    def _channel(self) -> _Channel:
        """The channel that takes new queries (a new one once it retired)."""
        channel = self._current
        if channel is None or channel.retired or channel.closed:
            servers = self.nameservers
            # Each try of each server gets its share of the budget.
            per_try = self.timeout / (len(servers) * self.attempts)
            loop = asyncio.get_running_loop()
            channel = self._current = _Channel(loop, servers, max(per_try, 0.001))
            self._channels.add(channel)
        return channel

    async def _query(
        self,
        host: str,
        want_a: bool,
        want_aaaa: bool,
        waiter: asyncio.Future[tuple[str, ...]],
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.timeout
        futures: dict[int, asyncio.Future[tuple[Any, int | None]]] = {}
        tries: dict[int, int] = {}
        outcomes: dict[int, tuple[_Outcome, float | None]] = {}
        self._inc("dns/lookups")
        for qtype, wanted in ((_A, want_a), (_AAAA, want_aaaa)):
            if wanted:
                futures[qtype] = self._channel().ask(host, qtype)
                tries[qtype] = 1
        self._inc("dns/queries", len(futures))
        pending: set[asyncio.Future[Any]] = {f for f in futures.values() if not f.done()}
        # When addresses were there to connect to: A answered with some (RFC
        # 8305: AAAA then gets RESOLUTION_DELAY more), or the type not asked
        # again has some in the cache (the stale one is refreshed meanwhile).
        a_answered: float | None = None
        entry = self._cache.get(host)
        if entry is not None and (
            (not want_a and isinstance(entry.a, tuple) and entry.a)
            or (not want_aaaa and isinstance(entry.aaaa, tuple) and entry.aaaa)
        ):
            a_answered = started - RESOLUTION_DELAY
        partial = False
        while True:
            for qtype, future in list(futures.items()):
                if qtype in outcomes or not future.done():
                    continue
                result, errno = future.result()
                if (
                    errno == pycares.errno.ARES_ETIMEOUT
                    and tries[qtype] < self.attempts
                    and loop.time() < deadline
                ):
                    # Silence: once more (DNS_ATTEMPTS), on a fresh channel.
                    tries[qtype] += 1
                    futures[qtype] = retry = self._channel().ask(host, qtype)
                    pending.add(retry)
                    self._inc("dns/queries")
                    continue
                outcome = outcomes[qtype] = _outcome(result, errno, qtype)
                if (
                    qtype == _A
                    and a_answered is None
                    and isinstance(outcome[0], tuple)
                    and outcome[0]
                ):
                    a_answered = loop.time()
            pending = {f for f in pending if not f.done()}
            now = loop.time()
            if pending and now >= deadline:
                for qtype in futures:
                    outcomes.setdefault(qtype, (_Failed(TIMEOUT, ""), None))
                pending = set()
            if not waiter.done():
                early = a_answered is not None and now >= a_answered + RESOLUTION_DELAY
                if not pending or early:
                    self.latency.add((now - started) * 1000)
                    partial = bool(pending)
                    self._store(host, outcomes, waiter, deadline - now)
            if not pending:
                break
            wait = deadline - now
            if not waiter.done() and a_answered is not None:
                wait = min(wait, a_answered + RESOLUTION_DELAY - now)
            await asyncio.wait(pending, timeout=max(wait, 0), return_when=asyncio.FIRST_COMPLETED)
        if partial:  # AAAA came after the lookup completed: cache it too
            self._store(host, outcomes, None, 0)

    def _store(
        self,
        host: str,
        outcomes: dict[int, tuple[_Outcome, float | None]],
        waiter: asyncio.Future[tuple[str, ...]] | None,
        remaining: float,
    ) -> None:
        """Put what was learnt in the cache; complete the waiter, if any.
        ``remaining``: seconds the lookup may still take (a type still on its
        way is not asked again meanwhile)."""
        now = self._clock()
        entry = self._cache.get(host)
        if entry is None:
            entry = _Entry()
        for qtype, (outcome, ttl) in outcomes.items():
            until = now + self._lifetime(outcome, ttl)
            if qtype == _A:
                entry.a, entry.a_until = outcome, until
            else:
                entry.aaaa, entry.aaaa_until = outcome, until
        if waiter is not None:
            if _A not in outcomes and entry.a_until <= now:
                entry.a, entry.a_until = None, now + remaining
            if _AAAA not in outcomes and entry.aaaa_until <= now:
                entry.aaaa, entry.aaaa_until = None, now + remaining
        addresses, error = _combine(host, entry.a, entry.aaaa, self.timeout)
        entry.addresses = addresses
        entry.error = error
        entry.expires = min(entry.a_until, entry.aaaa_until)
        if self.cache_size > 0:
            cache = self._cache
            cache[host] = entry
            cache.move_to_end(host)
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        if waiter is None:
            return
        if self._inflight.get(host) is waiter:
            del self._inflight[host]
        if waiter.done():
            return
        if error is not None:
            self._inc(f"dns/errors/{error.kind}")
            waiter.set_exception(error.copy())
        else:
            waiter.set_result(addresses)

    def _lifetime(self, outcome: _Outcome, ttl: float | None) -> float:
        """Seconds an outcome is kept: its TTL within the bounds for
        addresses, the negative TTL for NXDOMAIN/NODATA, else the short one."""
        if isinstance(outcome, tuple):
            if outcome and ttl is not None:
                return min(max(ttl, self.min_ttl), self.max_ttl)
            return self.negative_ttl
        if outcome is not None and outcome.kind == NXDOMAIN:
            return self.negative_ttl
        return self.failure_ttl

    async def close(self) -> None:
        """Stop the lookups in flight (their waiters are cancelled)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in list(self._channels):
            channel.close()
        self._current = None

    def clear(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _outcome(result: Any, errno: int | None, qtype: int) -> tuple[_Outcome, float | None]:
    """(outcome, TTL) of one c-ares answer; the TTL of the addresses is the
    smallest of the answer's records (CNAMEs included), None for a failure."""
    if errno is None:
        addresses: list[str] = []
        ttl: int | None = None
        for record in result.answer:
            ttl = record.ttl if ttl is None else min(ttl, record.ttl)
            if record.type == qtype:
                addresses.append(record.data.addr)
        return tuple(addresses), (float(ttl) if ttl is not None else None)
    if errno in _NODATA:
        return (), None
    if errno in _NOTFOUND:
        return _Failed(NXDOMAIN, "NXDOMAIN"), None
    if errno == pycares.errno.ARES_ETIMEOUT:
        return _Failed(TIMEOUT, ""), None
    code = _CODES.get(errno) or str(pycares.errno.strerror(errno))
    return _Failed(SERVFAIL, code), None


def _combine(
    host: str, a: _Outcome, aaaa: _Outcome, timeout: float
) -> tuple[tuple[str, ...], NameResolutionError | None]:
    addresses = (aaaa if isinstance(aaaa, tuple) else ()) + (a if isinstance(a, tuple) else ())
    if addresses:
        return addresses, None
    failures = [o for o in (a, aaaa) if isinstance(o, _Failed)]
    kinds = {f.kind for f in failures}
    if NXDOMAIN in kinds:
        return (), NameResolutionError(host, NXDOMAIN, f"{host} does not exist (NXDOMAIN)")
    if SERVFAIL in kinds:
        code = next(f.code for f in failures if f.kind == SERVFAIL)
        return (), NameResolutionError(
            host, SERVFAIL, f"the nameserver could not resolve {host} ({code})"
        )
    if TIMEOUT in kinds:
        return (), NameResolutionError(
            host, TIMEOUT, f"no answer for {host} within {timeout:g} s (DNS_TIMEOUT)"
        )
    return (), NameResolutionError(host, NO_ADDRESS, f"{host} has no IPv4 or IPv6 address")
