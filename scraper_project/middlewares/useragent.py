"""User-Agent rotation through scrapy-fake-useragent, with a fixed-UA switch.

fake-useragent 2.x filters its whole data set (about 7,000 entries) on every
``UserAgent().random``: 3 to 11 ms of CPU per request, more than the rest of
the crawl's per-page cost together. :class:`WeightedUserAgentProvider` does
that filtering once and then draws by the same weights in microseconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy_fake_useragent.middleware import RandomUserAgentMiddleware

from scraper_project.config import did_you_mean, get_bool, get_list, usage_error

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
    def check_settings(cls, settings: BaseSettings) -> bool:
        """Validate ``PAGES_ROTATE_USER_AGENT`` and ``FAKE_USERAGENT_BROWSERS``
        (``UsageError`` naming a bad one); return whether rotation is on."""
        browsers(settings)
        return get_bool(settings, "PAGES_ROTATE_USER_AGENT")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RotatingUserAgentMiddleware:
        settings = crawler.settings
        if not cls.check_settings(settings):
            raise NotConfigured  # off on purpose: no warning
        if (settings.getpriority("USER_AGENT") or 0) > SETTINGS_PRIORITIES["project"]:
            raise NotConfigured("USER_AGENT set for this run: sending it unchanged")
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if b"User-Agent" not in request.headers:
            request.headers[b"User-Agent"] = self._ua_provider.get_random_ua()


class WeightedUserAgentProvider:
    """scrapy-fake-useragent provider: fake-useragent's data, filtered once.

    Not a subclass of its ``BaseProvider``: that module imports Faker (about
    10 MB and 50 ms at start-up) for providers this project does not use. A
    provider only needs ``get_random_ua()``.

    Draws user agents with fake-useragent's own popularity weights. Settings:
    ``FAKEUSERAGENT_FALLBACK`` (used if the data cannot be loaded) and
    ``FAKE_USERAGENT_BROWSERS`` (optional list, e.g. ``["Chrome", "Firefox"]``).
    """

    def __init__(self, settings: BaseSettings) -> None:
        fallback = settings.get("FAKEUSERAGENT_FALLBACK") or settings.get("USER_AGENT")
        try:
            self._pool, weights = stream_pool(browsers(settings) or None)
        except Exception:  # any data problem: fall back to one UA
            logger.warning("fake-useragent data unavailable; sending %r", fallback)
            self._pool, weights = [], []
        self._cum_weights = list(itertools.accumulate(weights))
        self._fallback = fallback

    def get_random_ua(self) -> str:
        if not self._pool:
            return str(self._fallback)
        return random.choices(self._pool, cum_weights=self._cum_weights)[0]


# fake-useragent 2.x's default filters (FakeUserAgent.__init__): the data
# file is streamed with them instead of loaded whole, which holds all 6,900
# entries as dicts (13 MB of peak memory); tests/test_useragent.py checks the
# pool equals fake_useragent's own filtering.
_BROWSERS = frozenset(
    {
        "Google", "Chrome", "Firefox", "Edge", "Opera", "Safari", "Android",
        "Yandex Browser", "Samsung Internet", "Opera Mobile", "Mobile Safari",
        "Firefox Mobile", "Firefox iOS", "Chrome Mobile", "Chrome Mobile iOS",
        "Mobile Safari UI/WKWebView", "Edge Mobile", "DuckDuckGo Mobile",
        "MiuiBrowser", "Whale", "Twitter", "Facebook", "Amazon Silk",
    }
)  # fmt: skip
_OS = frozenset({"Windows", "Linux", "Ubuntu", "Chrome OS", "Mac OS X", "Android", "iOS"})
_PLATFORMS = frozenset({"desktop", "mobile", "tablet"})


def browsers(settings: BaseSettings) -> list[str]:
    """``FAKE_USERAGENT_BROWSERS``, each a browser name of fake-useragent's
    data (any case); ``UsageError`` naming an unknown one."""
    by_name = {name.lower(): name for name in _BROWSERS}
    names = []
    for given in get_list(settings, "FAKE_USERAGENT_BROWSERS"):
        name = by_name.get(given.lower())
        if name is None:
            hint = did_you_mean(given, _BROWSERS) or f" (known: {', '.join(sorted(_BROWSERS))})"
            raise usage_error(f"FAKE_USERAGENT_BROWSERS: unknown browser {given!r}{hint}")
        names.append(name)
    return names


def stream_pool(browsers: list[str] | None = None) -> tuple[list[str], list[float]]:
    """User agents and weights of fake-useragent's data, as its default
    filters (and ``browsers``, if given) select them, read line by line."""
    from fake_useragent.utils import find_browser_json_path

    wanted = _BROWSERS if not browsers else _BROWSERS & set(browsers)
    pool: list[str] = []
    weights: list[float] = []
    with find_browser_json_path().open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            entry = json.loads(line)
            if (
                entry["browser"] in wanted
                and entry["os"] in _OS
                and entry["type"] in _PLATFORMS
                and entry["browser_version_major_minor"] >= 0.0
                and entry["percent"] >= 0.0
            ):
                pool.append(entry["useragent"])
                weights.append(max(float(entry.get("percent", 0)), 1e-6))
    if not pool:
        raise ValueError("no user agent matches")
    return pool, weights
