"""Redirects to a URL of ``PAGES_SKIP`` are not followed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin

from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached
from w3lib.url import safe_url_string

from scraper_project.config import get_bool
from scraper_project.skip import SKIP_REDIRECT_KEY, SkipRules
from scraper_project.stats import inc, live_stats
from scraper_project.urls import InvalidURL, normalize_url

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

__all__ = ["SkipRedirectMiddleware"]

# The statuses Scrapy's RedirectMiddleware follows.
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class SkipRedirectMiddleware:
    """``DOWNLOADER_MIDDLEWARES``, just outside the redirect middleware (600),
    so that its ``process_response`` sees a redirect first.

    A redirect of a list URL whose target (normalised, as a list line would
    be) matches ``PAGES_SKIP`` is not followed: the redirect middleware gets
    ``dont_redirect`` for it, and the URL's row is the redirect response
    itself (its status, final URL, title) with ``error = skipped: <pattern>
    (redirect to <target>)``. The skipped URL is never requested. Counted in
    ``skip/redirects``. Not configured (no cost at all) without patterns or
    with ``REDIRECT_ENABLED=False``.
    """

    def __init__(self, rules: SkipRules, stats: StatsCollector, url_max_length: int) -> None:
        self.rules = rules
        self.counts = live_stats(stats)
        self.url_max_length = url_max_length

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> SkipRules | None:
        return SkipRules.from_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SkipRedirectMiddleware:
        rules = cls.check_settings(crawler.settings)
        if rules is None or not get_bool(crawler.settings, "REDIRECT_ENABLED", True):
            raise NotConfigured  # no message: off is the default
        assert crawler.stats is not None
        max_length = crawler.settings.getint("PAGES_URL_MAX_LENGTH")
        return cls(rules, crawler.stats, max_length)

    def process_response(self, request: Request, response: Response) -> Any:
        if response.status not in _REDIRECTS:
            return response
        meta = request.meta
        location = response.headers.get(b"Location")
        if (
            not location
            or "line" not in meta  # not a list URL (robots.txt)
            or meta.get("dont_redirect")
            or meta.get("handle_httpstatus_all")
            or response.status in meta.get("handle_httpstatus_list", ())
        ):
            return response
        # The target as RedirectMiddleware computes it, then as a list line.
        target = safe_url_string(location)
        if location.startswith(b"//"):
            target = f"{urlparse_cached(request).scheme}://{target.lstrip('/')}"
        try:
            url = normalize_url(urljoin(request.url, target), self.url_max_length)
        except InvalidURL:
            return response  # not followed anyway, or an invalid_url row
        pattern = self.rules.match(url)
        if pattern is not None:
            meta["dont_redirect"] = True
            meta[SKIP_REDIRECT_KEY] = (pattern, url)
            inc(self.counts, "skip/redirects")
        return response
