"""User-Agent rotation through scrapy-fake-useragent, with a fixed-UA switch.

fake-useragent 2.x filters its whole data set (about 7,000 entries) on every
``UserAgent().random``: 3 to 11 ms of CPU per request, more than the rest of
the crawl's per-page cost together. :class:`WeightedUserAgentProvider` does
that filtering once and then draws by the same weights in microseconds.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import TYPE_CHECKING, Any

import fake_useragent
from scrapy.exceptions import NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy_fake_useragent.middleware import RandomUserAgentMiddleware
from scrapy_fake_useragent.providers import BaseProvider

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


class RotatingUserAgentMiddleware(RandomUserAgentMiddleware):  # type: ignore[misc]
    """Give each request a real-world User-Agent (bundled data, works offline).

    Disabled, so that Scrapy's ``UserAgentMiddleware`` sends ``USER_AGENT``,
    when ``PAGES_ROTATE_USER_AGENT`` is false or when ``USER_AGENT`` was set
    for this run (``-s USER_AGENT=...``, ``-d setting=...`` on Scrapyd).
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RotatingUserAgentMiddleware:
        settings = crawler.settings
        if not settings.getbool("PAGES_ROTATE_USER_AGENT"):
            raise NotConfigured  # off on purpose: no warning
        if (settings.getpriority("USER_AGENT") or 0) > SETTINGS_PRIORITIES["project"]:
            raise NotConfigured("USER_AGENT set for this run: sending it unchanged")
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if b"User-Agent" not in request.headers:
            request.headers[b"User-Agent"] = self._ua_provider.get_random_ua()


class WeightedUserAgentProvider(BaseProvider):  # type: ignore[misc]
    """scrapy-fake-useragent provider: fake-useragent's data, filtered once.

    Draws user agents with fake-useragent's own popularity weights. Settings:
    ``FAKEUSERAGENT_FALLBACK`` (used if the data cannot be loaded) and
    ``FAKE_USERAGENT_BROWSERS`` (optional list, e.g. ``["Chrome", "Firefox"]``).
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        fallback = settings.get("FAKEUSERAGENT_FALLBACK") or settings.get("USER_AGENT")
        browsers = settings.getlist("FAKE_USERAGENT_BROWSERS") or None
        self._pool: list[str] = []
        self._cum_weights: list[float] = []
        try:
            ua = fake_useragent.UserAgent(fallback=fallback)
            data = ua._filter_useragents(browsers)
        except Exception:  # any data problem: fall back to one UA
            logger.warning("fake-useragent data unavailable; sending %r", fallback)
            data = []
        self._pool = [entry["useragent"] for entry in data]
        self._cum_weights = list(
            itertools.accumulate(max(float(entry.get("percent", 0)), 1e-6) for entry in data)
        )
        self._fallback = fallback

    def get_random_ua(self) -> str:
        if not self._pool:
            return str(self._fallback)
        return random.choices(self._pool, cum_weights=self._cum_weights)[0]
