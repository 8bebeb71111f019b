"""Look names up before their requests take a download slot.

A name whose nameserver never answers keeps its lookup waiting for the whole
``DNS_TIMEOUT``; done inside the download handler, that wait holds one of the
``CONCURRENT_REQUESTS`` slots (two with robots.txt: the page request waits
for it), and a list with many dead names crawls its live ones with fewer
slots. This middleware (first in the chain, before robots.txt) starts the
lookup of a request's host; if the answer is not there within
``DNS_PARK_AFTER`` seconds (most are: a cached or nearby resolver answers in
milliseconds), it *parks* the request in the
:class:`~scraper_project.scheduler.DelayingScheduler`, as the rate limiter
does, holding no slot, and looks again a little later (every
:data:`POLL_MIN` to :data:`POLL_MAX` seconds) until the lookup has ended.
Then the request goes on; the handler takes the answer from the cache (a
failure too: ``dns_error`` at once).

Not for requests that cannot be parked (robots.txt, fetched through
``engine.download()``), nor IP literals, names already known, or requests
through a proxy. ``DNS_PARK_AFTER = -1`` turns it off (lookups then happen
in the handler only), and so does a crawl without a DNS cache. Stats: ``dns/parked`` (requests parked at least once).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import TYPE_CHECKING, Final
from urllib.request import getproxies, proxy_bypass

from scrapy.exceptions import NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached

from scraper_project.resolver import AsyncResolver, BlockedAddressError, NameResolutionError
from scraper_project.scheduler import NOT_BEFORE_KEY

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

__all__ = ["DNSPrefetchMiddleware"]

POLL_MIN: Final = 0.02
POLL_MAX: Final = 0.25
_POLL_KEY: Final = "pages_dns_poll"


class DNSPrefetchMiddleware:
    """``DOWNLOADER_MIDDLEWARES``: see the module docstring."""

    def __init__(
        self,
        resolver: AsyncResolver,
        stats: StatsCollector,
        park_after: float,
        proxied_schemes: frozenset[str] = frozenset(),
    ) -> None:
        self.resolver = resolver
        self.stats = stats
        self.park_after = park_after
        # Schemes HttpProxyMiddleware will send through a proxy (the
        # environment's *_proxy): their names are the proxy's to resolve.
        self.proxied_schemes = proxied_schemes
        # Lookups started here, by name, until they end.
        self._lookups: dict[str, asyncio.Future[object]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DNSPrefetchMiddleware:
        # DNS_PARK_AFTER is read and checked with the resolver's settings.
        resolver = AsyncResolver.for_crawler(crawler)
        if resolver.park_after < 0:
            raise NotConfigured("DNS_PARK_AFTER < 0")
        if resolver.resolver.cache_size <= 0:
            # The answer would not be there for the handler: it would ask again.
            raise NotConfigured("no DNS cache (DNSCACHE_ENABLED / DNSCACHE_SIZE)")
        assert crawler.stats is not None
        proxied: frozenset[str] = frozenset()
        if crawler.settings.getbool("HTTPPROXY_ENABLED"):
            proxied = frozenset(getproxies()) & {"http", "https"}
        return cls(resolver, crawler.stats, resolver.park_after, proxied)

    async def process_request(self, request: Request) -> Request | None:
        meta = request.meta
        if request.callback is NO_CALLBACK or meta.get("proxy"):
            return None
        parsed = urlparse_cached(request)
        host = parsed.hostname
        if not host:
            return None
        if (
            self.proxied_schemes
            and "proxy" not in meta
            and parsed.scheme in self.proxied_schemes
            and not proxy_bypass(host)
        ):
            return None
        lookup = self._lookups.get(host)
        if lookup is None:
            if _POLL_KEY in meta:  # parked here, and its lookup has ended
                del meta[_POLL_KEY]
                return None
            try:
                if self.resolver.cached(host) is not None:
                    return None
            except (NameResolutionError, BlockedAddressError):
                return None  # a cached failure: the handler reports it at once
            lookup = self._lookups[host] = asyncio.ensure_future(self.resolver.resolve(host))
            lookup.add_done_callback(lambda done: self._ended(host, done))
            if self.park_after > 0:
                await asyncio.wait((lookup,), timeout=self.park_after)
        if lookup.done():
            meta.pop(_POLL_KEY, None)
            return None
        poll = meta.get(_POLL_KEY)
        if poll is None:
            self.stats.inc_value("dns/parked")
            poll = POLL_MIN
        meta[_POLL_KEY] = min(poll * 2, POLL_MAX)
        meta[NOT_BEFORE_KEY] = monotonic() + poll
        return request  # re-scheduled: the scheduler parks it

    def _ended(self, host: str, lookup: asyncio.Future[object]) -> None:
        if self._lookups.get(host) is lookup:
            del self._lookups[host]
        if not lookup.cancelled():
            lookup.exception()  # the handler reports it; not "never retrieved"
