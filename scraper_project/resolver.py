"""The project's resolver, for both download paths (issue #14).

``TWISTED_DNS_RESOLVER = "scraper_project.resolver.AsyncResolver"``. One
object answers every lookup of a crawl:

- the asyncio download handler (``fasthttp``) awaits :meth:`resolve` (or
  takes :meth:`cached` when the name is known: a dict lookup) and connects to
  every address it returns with Happy Eyeballs;
- Twisted (the proxy path, ``handlers.py``, and anything using the reactor's
  resolver) calls :meth:`resolveHostName`, installed as the reactor's
  ``nameResolver`` (``reactor.resolver`` wraps it: first IPv4 address).

Both go through the same :class:`scraper_project.dns.Resolver` (queries on
the asyncio loop, caches, coalescing; see that module) and the same rules:

- ``RESOLVE_HOSTS`` (``{"name": "ip"}`` or ``{"name": ["ip", ...]}``, like
  curl's ``--resolve``) answers first; with ``RESOLVE_HOSTS_ONLY`` every other
  name fails at once (``dns_error: nxdomain``) and no query is ever sent: the
  tests use it to stay offline, users to pin a site to an address;
- then the hosts file (``DNS_HOSTS_FILE``, as glibc reads it first), then
  the nameservers (``DNS_NAMESERVERS``, default: the system's);
- with ``PAGES_BLOCK_PRIVATE_ADDRESSES`` the SSRF guard removes every
  address that is not global unicast (loopback, RFC 1918, link-local such as
  the 169.254.169.254 cloud metadata service, CGNAT, multicast, reserved),
  except those in ``PAGES_ALLOWED_ADDRESSES``; a name left with none fails
  with :class:`BlockedAddressError` (``blocked_address``), IP literals
  included. Every redirect hop connects through here.

:func:`AsyncResolver.for_crawler` is the one place a component gets the
crawl's resolver: the one installed on the reactor, else (another
``TWISTED_DNS_RESOLVER``) one of its own per crawler.
:class:`DNSStatsExtension` puts the ``dns/...`` counters in the crawl's
stats and the lookup latency percentiles at the end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import weakref
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.request import getproxies

from scrapy import signals
from scrapy.exceptions import NotConfigured, UsageError
from scrapy.resolver import HostResolution
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver
from zope.interface import implementer

from scraper_project.config import get_bool, get_dict, get_float, get_int, get_list
from scraper_project.dns import (
    NameResolutionError,
    Resolver,
    parse_hosts_file,
    parse_nameserver,
    v6_first,
)
from scraper_project.observability.latency import percentile

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.base import ReactorBase

__all__ = [
    "AsyncResolver",
    "BlockedAddressError",
    "DNSStatsExtension",
    "NameResolutionError",
    "StaticResolver",
    "is_blocked",
]

logger = logging.getLogger(__name__)

DEFAULT_HOSTS_FILE: Final = "/etc/hosts"
_LITERALS_MAX: Final = 10_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddressError(DNSLookupError):
    """The name resolved only to addresses the SSRF guard refuses; the
    message is the reason (``errors.classify`` reports it as is)."""


def is_blocked(ip: str, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether ``ip`` is not a global unicast address (and not allowed)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return False
    return not address.is_global or address.is_multicast


def _literal(host: str) -> str | None:
    """``host`` as a normalised IP address, if it is one."""
    if not (host[-1:].isdigit() or ":" in host):
        return None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


# -- settings -------------------------------------------------------------------------


# What a crawler without the project's settings gets (Scrapy's own defaults
# for DNS_TIMEOUT, DNSCACHE_*): the values of settings.py.
_DEFAULTS: Final[dict[str, float]] = {
    "DNS_ATTEMPTS": 1,
    "DNS_CONCURRENCY": 100,
    "DNS_CACHE_MIN_TTL": 10.0,
    "DNS_CACHE_MAX_TTL": 3600.0,
    "DNS_NEGATIVE_TTL": 300.0,
    "DNS_FAILURE_TTL": 30.0,
    "HAPPY_EYEBALLS_DELAY": 0.25,
    "DNS_PARK_AFTER": 0.05,
}


def _number(settings: BaseSettings, name: str, *, minimum: float) -> float:
    return get_float(settings, name, minimum=minimum, default=_DEFAULTS.get(name, 0.0))


def _integer(settings: BaseSettings, name: str, *, minimum: int, maximum: int | None = None) -> int:
    default = int(_DEFAULTS.get(name, 0))
    return get_int(settings, name, minimum=minimum, maximum=maximum, default=default)


def _static_hosts(settings: BaseSettings) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    hosts = get_dict(settings, "RESOLVE_HOSTS", example='{"shop.example": "10.0.0.5"}')
    for name, value in hosts.items():
        values = [value] if isinstance(value, str) else value
        addresses: list[str] = []
        for ip in values if isinstance(values, (list, tuple)) else [values]:
            try:
                addresses.append(str(ipaddress.ip_address(ip)))
            except (TypeError, ValueError):
                raise UsageError(
                    f"RESOLVE_HOSTS: {name!r} maps to {ip!r}, which is not an IP address",
                    print_help=False,
                ) from None
        if not addresses:
            raise UsageError(f"RESOLVE_HOSTS: {name!r} maps to no address", print_help=False)
        table[str(name).lower().rstrip(".")] = v6_first(addresses)
    return table


def _hosts_file(settings: BaseSettings) -> dict[str, tuple[str, ...]]:
    path = settings.get("DNS_HOSTS_FILE", DEFAULT_HOSTS_FILE) or ""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return parse_hosts_file(file.read())
    except OSError as exc:
        if path == DEFAULT_HOSTS_FILE:
            return {}  # a system without one
        raise UsageError(
            f"DNS_HOSTS_FILE: cannot read {path!r}: {exc.strerror}", print_help=False
        ) from None


def _allowed(settings: BaseSettings) -> tuple[Network, ...]:
    allowed = []
    for entry in get_list(settings, "PAGES_ALLOWED_ADDRESSES"):
        try:
            allowed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise UsageError(
                f"PAGES_ALLOWED_ADDRESSES: {entry!r} is not an IP address or network",
                print_help=False,
            ) from None
    return tuple(allowed)


def _env_proxies(settings: BaseSettings) -> bool:
    """Whether HttpProxyMiddleware sends http(s) requests through the
    environment's proxies (``http_proxy``, ``https_proxy``)."""
    enabled = get_bool(settings, "HTTPPROXY_ENABLED", True)
    return enabled and bool({"http", "https"} & set(getproxies()))


def resolver_from_settings(settings: BaseSettings) -> Resolver:
    """A :class:`~scraper_project.dns.Resolver` configured by the ``DNS_*``,
    ``DNSCACHE_*`` and ``RESOLVE_HOSTS*`` settings; ``UsageError`` naming the
    first bad one."""
    nameservers = []
    for entry in get_list(settings, "DNS_NAMESERVERS"):
        try:
            nameservers.append(parse_nameserver(entry))
        except ValueError:
            raise UsageError(
                f"DNS_NAMESERVERS: {entry!r} is not a nameserver address "
                f"(expected ip, ip:port or [ipv6]:port)",
                print_help=False,
            ) from None
    timeout = _number(settings, "DNS_TIMEOUT", minimum=0.001)
    attempts = _integer(settings, "DNS_ATTEMPTS", minimum=1, maximum=5)
    concurrency = _integer(settings, "DNS_CONCURRENCY", minimum=1)
    cache_size = _integer(settings, "DNSCACHE_SIZE", minimum=0)
    if not get_bool(settings, "DNSCACHE_ENABLED", True):
        cache_size = 0
    min_ttl = _number(settings, "DNS_CACHE_MIN_TTL", minimum=0)
    max_ttl = _number(settings, "DNS_CACHE_MAX_TTL", minimum=0)
    if min_ttl > max_ttl:
        raise UsageError(
            f"DNS_CACHE_MIN_TTL ({min_ttl:g}) must not be above DNS_CACHE_MAX_TTL ({max_ttl:g})",
            print_help=False,
        )
    static_only = get_bool(settings, "RESOLVE_HOSTS_ONLY")
    static = _static_hosts(settings)
    if not static_only:
        static = {**_hosts_file(settings), **static}
    return Resolver(
        nameservers,
        timeout=timeout,
        attempts=attempts,
        concurrency=concurrency,
        cache_size=cache_size,
        min_ttl=min_ttl,
        max_ttl=max_ttl,
        negative_ttl=_number(settings, "DNS_NEGATIVE_TTL", minimum=0),
        failure_ttl=_number(settings, "DNS_FAILURE_TTL", minimum=0),
        static=static,
        static_only=static_only,
    )


# -- the resolver ------------------------------------------------------------------------

_OWN: weakref.WeakKeyDictionary[Any, AsyncResolver] = weakref.WeakKeyDictionary()


@implementer(IHostnameResolver)
class AsyncResolver:
    """``TWISTED_DNS_RESOLVER``; see the module docstring."""

    def __init__(
        self,
        reactor: ReactorBase,
        resolver: Resolver,
        *,
        block_private: bool = False,
        allowed: tuple[Network, ...] = (),
        happy_eyeballs_delay: float = 0.25,
        park_after: float = 0.05,
        prefetch: bool = True,
    ) -> None:
        self.reactor = reactor
        self.resolver = resolver
        self.block_private = block_private
        self.allowed = allowed
        #: ``HAPPY_EYEBALLS_DELAY``: seconds before the next address is tried
        #: (the asyncio handler's connections).
        self.happy_eyeballs_delay = happy_eyeballs_delay
        #: ``DNS_PARK_AFTER`` (``middlewares.dns``): < 0 = no parking.
        self.park_after = park_after
        #: ``DNS_PREFETCH``: the spider starts lookups of the list's next
        #: batch of lines while it crawls this one (:meth:`prefetch`).
        self.prefetch_enabled = prefetch
        # IP literals seen (a dict lookup the next time; a list of IPs
        # clears it now and then rather than grow).
        self._literals: dict[str, tuple[str, ...]] = {}

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> None:
        """Raise ``UsageError`` naming the first bad resolver setting (``scrapy
        crawl`` runs this before anything starts)."""
        cls._options(settings)
        resolver_from_settings(settings)

    @staticmethod
    def _options(settings: BaseSettings) -> dict[str, Any]:
        return {
            "block_private": get_bool(settings, "PAGES_BLOCK_PRIVATE_ADDRESSES"),
            "allowed": _allowed(settings),
            "happy_eyeballs_delay": _number(settings, "HAPPY_EYEBALLS_DELAY", minimum=0),
            "park_after": _number(settings, "DNS_PARK_AFTER", minimum=-1),
            # Through the environment's proxies, names are the proxy's to resolve.
            "prefetch": get_bool(settings, "DNS_PREFETCH", True) and not _env_proxies(settings),
        }

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> AsyncResolver:
        # Scrapy passes the CrawlerProcess here: settings only.
        settings = crawler.settings
        return cls(reactor, resolver_from_settings(settings), **cls._options(settings))

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> AsyncResolver:
        """The crawl's resolver: the reactor's if it is one of these, else
        one made from the crawler's settings (kept while the crawler lives)."""
        from twisted.internet import reactor

        installed = getattr(reactor, "nameResolver", None)
        if isinstance(installed, AsyncResolver):
            return installed
        own = _OWN.get(crawler)
        if own is None:
            own = _OWN[crawler] = cls.from_crawler(crawler, reactor)
        return own

    def install_on_reactor(self) -> None:
        # As a name resolver Twisted gets every address (IPv6 included);
        # reactor.resolver becomes Twisted's wrapper of it (first IPv4).
        self.reactor.installNameResolver(cast("IHostnameResolver", self))

    # -- for the asyncio handler -------------------------------------------------------

    def cached(self, host: str) -> tuple[str, ...] | None:
        """The addresses to connect to, if known without a query (an IP
        literal, the tables, the cache), else ``None``; raises
        :class:`NameResolutionError` (a cached failure) or
        :class:`BlockedAddressError`."""
        key = host.lower().rstrip(".")
        resolver = self.resolver
        addresses = resolver.cached(key) or self._literals.get(key)
        if addresses is None:
            literal = _literal(key)
            if literal is None:
                if resolver.static_only:
                    raise resolver.refuse(key)
                return None
            addresses = (literal,)
            literals = self._literals
            if len(literals) >= _LITERALS_MAX:
                literals.clear()
            literals[key] = addresses
        return self._guard(host, addresses) if self.block_private else addresses

    def prefetch(self, hosts: Iterable[str]) -> int:
        """Start the lookups of ``hosts`` not known yet, without waiting
        (the spider's look-ahead over the list); return how many started.
        IP literals and the tables' names cost a dict lookup."""
        started = 0
        resolver = self.resolver
        literals = self._literals
        for host in hosts:
            key = host.lower().rstrip(".")
            if key in literals or _literal(key) is not None:
                continue
            started += resolver.prefetch(key)
        return started

    async def resolve(self, host: str) -> tuple[str, ...]:
        """The addresses to connect to (IPv6 first); raises
        :class:`NameResolutionError` or :class:`BlockedAddressError`."""
        addresses = self.cached(host)
        if addresses is not None:
            return addresses
        addresses = await self.resolver.resolve(host.lower().rstrip("."))
        return self._guard(host, addresses) if self.block_private else addresses

    def _guard(self, host: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
        allowed = self.allowed
        kept = tuple(ip for ip in addresses if not is_blocked(ip, allowed))
        if not kept:
            shown = ", ".join(addresses[:4]) + (", ..." if len(addresses) > 4 else "")
            noun = "a non-public address" if len(addresses) == 1 else "non-public addresses only"
            raise BlockedAddressError(
                f"{host} resolves to {shown}, {noun} (PAGES_BLOCK_PRIVATE_ADDRESSES is on)"
            )
        return kept

    # -- for Twisted --------------------------------------------------------------------

    def resolveHostName(
        self,
        resolutionReceiver: Any,  # IResolutionReceiver (zope: no mypy plugin here)
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IPv4Address | IPv6Address]] | None = None,
        transportSemantics: str = "TCP",
    ) -> Any:  # IHostResolution
        """``IHostnameResolver``: every address of the name (that
        ``addressTypes`` accepts), from the same lookups and cache."""
        resolution = HostResolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        types = tuple(addressTypes) if addressTypes else (IPv4Address, IPv6Address)

        def deliver(addresses: Sequence[str]) -> None:
            for ip in addresses:
                kind = IPv6Address if ":" in ip else IPv4Address
                if kind in types:
                    resolutionReceiver.addressResolved(kind("TCP", ip, portNumber))
            resolutionReceiver.resolutionComplete()

        try:
            addresses = self.cached(hostName)
        except (NameResolutionError, BlockedAddressError) as exc:
            logger.debug("Cannot resolve %(host)s: %(error)s", {"host": hostName, "error": exc})
            addresses = ()
        if addresses is not None:
            deliver(addresses)
            return resolution

        def done(task: asyncio.Task[tuple[str, ...]]) -> None:
            found: Sequence[str] = ()
            if not task.cancelled():
                error = task.exception()
                if error is None:
                    found = task.result()
                else:
                    logger.debug(
                        "Cannot resolve %(host)s: %(error)s", {"host": hostName, "error": error}
                    )
            deliver(found)

        task = asyncio.ensure_future(self.resolve(hostName))
        task.add_done_callback(done)
        return resolution

    # -- stats ---------------------------------------------------------------------------

    def attach(self, stats: StatsCollector) -> None:
        """Count this resolver's ``dns/...`` events in ``stats`` too."""
        if stats not in self.resolver.sinks:
            self.resolver.sinks.append(stats)

    def detach(self, stats: StatsCollector) -> None:
        with suppress(ValueError):
            self.resolver.sinks.remove(stats)

    async def close(self) -> None:
        await self.resolver.close()


#: The previous name of :class:`AsyncResolver` (``TWISTED_DNS_RESOLVER``
#: values written for it keep working).
StaticResolver = AsyncResolver


class DNSStatsExtension:
    """``EXTENSIONS``: the ``dns/...`` stats of the crawl's resolver.

    Counters as they happen: ``dns/lookups`` (lookups that sent queries),
    ``dns/queries`` (A and AAAA queries), ``dns/cache_hits``,
    ``dns/negative_hits`` (a cached failure), ``dns/coalesced`` (joined a
    lookup in flight), ``dns/errors/<kind>``; when the spider closes,
    ``dns/latency_ms/p50``, ``p90``, ``p99`` and ``max`` of this crawl's
    lookups (before the summary, which lists them)."""

    def __init__(self, stats: StatsCollector, resolver: AsyncResolver) -> None:
        self.stats = stats
        self.resolver = resolver
        self._seen = resolver.resolver.latency.count

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DNSStatsExtension:
        if crawler.stats is None:
            raise NotConfigured("no stats collector")
        ext = cls(crawler.stats, AsyncResolver.for_crawler(crawler))
        ext.resolver.attach(crawler.stats)
        crawler.signals.connect(ext.spider_closed, signals.spider_closed, weak=False)
        crawler.signals.connect(ext.engine_stopped, signals.engine_stopped, weak=False)
        return ext

    def spider_closed(self) -> None:
        latency = self.resolver.resolver.latency
        if latency.count <= self._seen or not latency.samples:
            return
        # The reservoir is the resolver's (shared by the crawls of a
        # process): its sample, nearly always this crawl's alone.
        ordered = sorted(latency.samples)
        for p in (50, 90, 99):
            self.stats.set_value(f"dns/latency_ms/p{p}", round(percentile(ordered, p), 1))
        self.stats.set_value("dns/latency_ms/max", round(latency.maximum, 1))

    def engine_stopped(self) -> None:
        self.resolver.detach(self.stats)
