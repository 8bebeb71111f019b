"""Schema guard for report rows, and the report's counters."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from scraper_project.config import get_int
from scraper_project.errors import MAX_ERROR_LENGTH
from scraper_project.items import FIELDS, new_item
from scraper_project.stats import inc, live_stats
from scraper_project.title import MAX_TITLE_LENGTH, clean_text

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_TEXT_FIELDS = ("url", "final_url", "title", "content_type", "error")
_INT_FIELDS = ("status", "length", "attempts", "elapsed_ms", "redirects", "line")
_FIELD_SET = frozenset(FIELDS)


class ValidationPipeline:
    """Make every row complete, typed and safe before it is exported.

    Rows from the spider already are; this is the single place that
    guarantees it for every producer (the spider's callbacks and errbacks,
    cancellation accounting, other plugins' items): missing fields get their
    defaults, text fields become one clean bounded line (no control or bidi
    characters), numbers are ints. A row without a ``url`` cannot be
    reported and is dropped with an error.

    It also counts rows: ``report/rows``, ``report/ok`` (an HTTP answer),
    ``report/status/<Nxx>`` and ``report/error/<class>``.
    """

    def __init__(self, stats: StatsCollector, title_max: int, error_max: int) -> None:
        self.stats = stats
        self.counts = live_stats(stats)
        self.limits = {"title": title_max, "error": error_max, "content_type": 200}

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> tuple[int, int]:
        """``PAGES_TITLE_MAX_LENGTH`` and ``PAGES_ERROR_MAX_LENGTH`` (``UsageError``)."""
        return (
            get_int(settings, "PAGES_TITLE_MAX_LENGTH", minimum=0, default=MAX_TITLE_LENGTH),
            get_int(settings, "PAGES_ERROR_MAX_LENGTH", minimum=0, default=MAX_ERROR_LENGTH),
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        assert crawler.stats is not None
        return cls(crawler.stats, *cls.check_settings(crawler.settings))

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, dict) or not item.get("url"):
            raise DropItem(f"not a report row: {item!r:.200}")
        if item.keys() != _FIELD_SET:
            row = dict(new_item(item["url"], 0))
            row.update((k, v) for k, v in item.items() if k in row)
            item.clear()
            item.update(row)
        limits = self.limits
        for name in _TEXT_FIELDS:
            value = item[name]
            if not value:
                continue
            if type(value) is not str:
                value = str(value)
            # clean_text returns clean input as is after one C-level check.
            item[name] = clean_text(value, limits.get(name, 0))
        for name in _INT_FIELDS:
            value = item[name]
            if value is not None and type(value) is not int:
                try:
                    item[name] = int(value)
                except (TypeError, ValueError):
                    item[name] = None
        self.count(item)
        return item

    def count(self, item: Any) -> None:
        """Count a row in the ``report/*`` stats."""
        counts = self.counts
        counts["report/rows"] = counts.get("report/rows", 0) + 1
        error = item["error"]
        if error:
            inc(counts, f"report/error/{error.split(':', 1)[0]}")
        status = item["status"]
        if status is not None:
            inc(counts, f"report/status/{status // 100}xx")
            if not error:
                inc(counts, "report/ok")
