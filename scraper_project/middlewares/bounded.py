"""Scrapy's robots.txt and cookies middlewares with bounded per-host memory.

Stock Scrapy keeps one robots.txt parser per host and every cookie of every
host for the whole crawl. A list of a million homepages, each on its own
host, would hold a million parsers (1-30 KB each) and a million hosts'
cookies. These subclasses keep the most recently used ones:

- ``ROBOTSTXT_MAX_HOSTS`` (default 10,000): robots.txt parsers kept. An
  evicted host's robots.txt is fetched again if the host comes back
  (``robotstxt/evicted`` counts evictions). Fetches in progress are never
  evicted. Also fixed here: in Scrapy 2.19 the third and later requests
  waiting for the same robots.txt got no rules at all (they were let
  through); each waiter now gets the parser.
- ``COOKIES_MAX_DOMAINS`` (default 10,000): cookie domains kept (a domain is
  what a cookie is stored under: ``www.example.com`` or ``.example.com``).
  The least recently used domain's cookies are dropped: for that site it is
  as if a new session began (``cookies/evicted_domains``).

``0`` means no limit (Scrapy's behaviour). Everything else is Scrapy's:
same settings, meta keys, signals and stats.
"""

from __future__ import annotations

import http.cookiejar
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Self

from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import NotConfigured, UsageError
from scrapy.http.cookies import WrappedRequest, potential_domain_matches
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from scraper_project.config import get_bool

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.http.cookies import CookieJar
    from scrapy.robotstxt import RobotParser
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

__all__ = ["BoundedCookiesMiddleware", "BoundedRobotsTxtMiddleware", "count_setting"]

_MISSING: Any = object()


def count_setting(settings: BaseSettings, name: str) -> int:
    """An integer setting >= 0 (0: no limit); ``UsageError`` naming it if not."""
    raw = settings.get(name)
    try:
        value = int(raw)
        if value < 0 or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(
            f"{name} must be an integer >= 0 (0 = no limit), got {raw!r}", print_help=False
        ) from None
    return value


def _cookiejar_names(request: Request) -> tuple[str, str]:
    """http.cookiejar's request host and effective request host names."""
    # A module function of http.cookiejar (not in typeshed): the names it files by.
    names: tuple[str, str] = http.cookiejar.eff_request_host(WrappedRequest(request))  # type: ignore[attr-defined]
    return names


def _stored(jar: CookieJar) -> dict[str, Any]:
    """The cookies of a Scrapy jar by domain: http.cookiejar's private dict,
    which Scrapy's own ``CookieJar.add_cookie_header`` reads too."""
    cookies: dict[str, Any] = jar.jar._cookies  # type: ignore[attr-defined]
    return cookies


class BoundedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """``RobotsTxtMiddleware`` keeping at most ``ROBOTSTXT_MAX_HOSTS`` parsers."""

    def __init__(self, crawler: Crawler) -> None:
        self.check_settings(crawler.settings)
        super().__init__(crawler)
        self.max_hosts = count_setting(crawler.settings, "ROBOTSTXT_MAX_HOSTS")
        # netloc -> parser (None: no usable robots.txt) or the Deferred of a
        # fetch in progress; least recently used first.
        self._parsers: OrderedDict[str, RobotParser | Deferred[RobotParser | None] | None] = (
            OrderedDict()
        )

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> None:
        """``ROBOTSTXT_OBEY`` and ``ROBOTSTXT_MAX_HOSTS`` (``UsageError``)."""
        get_bool(settings, "ROBOTSTXT_OBEY")
        count_setting(settings, "ROBOTSTXT_MAX_HOSTS")

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parsers = self._parsers
        netloc = urlparse_cached(request).netloc
        entry = parsers.get(netloc, _MISSING)
        if entry is _MISSING:
            try:
                return await super().robot_parser(request)  # fetches it
            finally:
                if self.max_hosts and len(parsers) > self.max_hosts:
                    self._trim()
        parsers.move_to_end(netloc)
        if isinstance(entry, Deferred):
            # Scrapy 2.19 awaits the shared Deferred itself, and asFuture()
            # leaves None as its result: from the third waiter on, requests
            # got None, i.e. no robots.txt rules. Each waiter gets its own.
            waiter: Deferred[RobotParser | None] = Deferred()

            def relay(parser: RobotParser | None) -> RobotParser | None:
                waiter.callback(parser)
                return parser

            entry.addCallback(relay)
            return await maybe_deferred_to_future(waiter)
        parser: RobotParser | None = entry
        return parser

    def _trim(self) -> None:
        """Drop the least recently used parsers beyond the limit. Fetches in
        progress stay (Scrapy looks their Deferred up again when they end), so
        the dict may hold more while more fetches than that are running."""
        parsers = self._parsers
        excess = len(parsers) - self.max_hosts
        doomed: list[str] = []
        for netloc, parser in parsers.items():
            if len(doomed) >= excess:
                break
            if not isinstance(parser, Deferred):
                doomed.append(netloc)
        for netloc in doomed:
            del parsers[netloc]
        if doomed:
            self._stats.inc_value("robotstxt/evicted", len(doomed))


class BoundedCookiesMiddleware(CookiesMiddleware):
    """``CookiesMiddleware`` keeping at most ``COOKIES_MAX_DOMAINS`` domains."""

    stats: StatsCollector

    def __init__(self, debug: bool = False, max_domains: int = 0) -> None:
        super().__init__(debug)
        self.max_domains = max_domains
        # (cookiejar meta key, cookie domain), least recently used first.
        self._domains: OrderedDict[tuple[Any, str], None] = OrderedDict()

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> bool:
        """``COOKIES_*`` (``UsageError``); return whether cookies are on."""
        get_bool(settings, "COOKIES_DEBUG")
        count_setting(settings, "COOKIES_MAX_DOMAINS")
        return get_bool(settings, "COOKIES_ENABLED")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not cls.check_settings(crawler.settings):
            raise NotConfigured
        mw = cls(
            crawler.settings.getbool("COOKIES_DEBUG"),
            count_setting(crawler.settings, "COOKIES_MAX_DOMAINS"),
        )
        mw.crawler = crawler
        assert crawler.stats is not None
        mw.stats = crawler.stats
        return mw

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        super().process_request(request)
        if request.cookies and self.max_domains:  # Request(cookies=...) fill the jar too
            self._touch(request)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        super().process_response(request, response)
        if self.max_domains:
            self._touch(request)
        return response

    def _touch(self, request: Request) -> None:
        """Mark the domains whose cookies ``request``'s host uses as just used;
        drop the least recently used ones beyond the limit."""
        if request.meta.get("dont_merge_cookies", False):
            return
        jar_key = request.meta.get("cookiejar")
        stored = _stored(self.jars[jar_key])
        if not stored:
            return
        host = urlparse_cached(request).hostname
        if not host:
            return
        host = host.lower()
        if "." in host and ":" not in host:
            matches = potential_domain_matches(host)
        else:
            # Dotless and IPv6 hosts: http.cookiejar files their cookies
            # under its own effective host names ("intranet.local", "[::1].local").
            matches = [host, *_cookiejar_names(request)]
            matches += [f".{name}" for name in matches]
        domains = self._domains
        for domain in matches:
            if domain in stored:
                key = (jar_key, domain)
                if key in domains:
                    domains.move_to_end(key)
                else:
                    domains[key] = None
        if len(domains) > self.max_domains:
            self._evict()
        if len(stored) > 2 * self.max_domains:
            self._sweep(jar_key, stored)

    def _sweep(self, jar_key: Any, stored: dict[str, Any]) -> None:
        """Drop the domains of a jar that no request's host led to (a storage
        rule of http.cookiejar not foreseen in ``_touch``): the bound holds."""
        domains = self._domains
        stray = [domain for domain in stored if (jar_key, domain) not in domains]
        for domain in stray:
            del stored[domain]
        self.stats.inc_value("cookies/evicted_domains", len(stray))

    def _evict(self) -> None:
        domains = self._domains
        while len(domains) > self.max_domains:
            (jar_key, domain), _ = domains.popitem(last=False)
            jar = self.jars.get(jar_key)
            if jar is not None and domain in _stored(jar):
                jar.jar.clear(domain)
                self.stats.inc_value("cookies/evicted_domains")
