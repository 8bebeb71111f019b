"""Per-row metrics and the one log event per finished URL.

:class:`ObservabilityPipeline` runs after validation and deduplication, so it
sees each row that reaches the report exactly once, including the rows the
spider writes straight to the report when a crawl stops (``ReportWriter``
calls ``process_item``, or ``count`` for rows it trusts).

Per row it keeps the ``elapsed_ms`` in a bounded :class:`LatencyReservoir`
and adds ``length`` to ``report/bytes`` (the live stats dict). When the
spider closes it sets ``report/latency_ms/p50``, ``.../p90``, ``.../p99``,
``.../max`` and ``report/pages_per_second`` (rows of fetched URLs, i.e. with
an ``elapsed_ms``, per second of crawl).

The URL event (``PAGES_URL_LOG_LEVEL``, default ``DEBUG``) is a log line with
the row's fields as structured fields, plus ``event = "url_finished"``,
``error_class`` and ``ratelimit_wait`` (seconds the rate limiter held the
request, from ``response.meta``). Rows with an HTTP response are logged
from the ``item_scraped`` signal, which carries the response; rows without
one (no status) are logged here. When no handler would keep a line at that
level, nothing is connected and no per-row work is done.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.http import Response

from scraper_project.middlewares.ratelimit import WAIT_KEY
from scraper_project.observability.config import ObservabilitySettings
from scraper_project.observability.latency import LatencyReservoir
from scraper_project.stats import live_stats

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

__all__ = ["ObservabilityPipeline", "log_level_enabled"]

logger = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)


def log_level_enabled(log: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` on ``log`` would reach a handler that
    keeps it. ``Logger.isEnabledFor`` alone is not enough under Scrapy,
    which leaves the root logger at ``NOTSET`` and filters by the level of
    its handler (``LOG_LEVEL``)."""
    if not log.isEnabledFor(level):
        return False
    current: logging.Logger | None = log
    found = False
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level:
                return True
        if not current.propagate:
            break
        current = current.parent
    return not found and logging.lastResort is not None and level >= logging.lastResort.level


class ObservabilityPipeline(ObservabilitySettings):
    """``ITEM_PIPELINES``, after the dedup pipeline; see the module docstring."""

    def __init__(
        self,
        stats: StatsCollector,
        latency: LatencyReservoir,
        url_log_level: int | None,
        clock: Any = monotonic,
    ) -> None:
        self.stats = stats
        self.counts = live_stats(stats)
        self.latency = latency
        self.url_log_level = url_log_level
        self.log_urls = False
        self.clock = clock
        self.started: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ObservabilityPipeline:
        assert crawler.stats is not None
        config = cls.check_settings(crawler.settings)
        pipeline = cls(
            crawler.stats, LatencyReservoir(config.latency_samples), config.url_log_level
        )
        pipeline.crawler = crawler
        return pipeline

    crawler: Crawler | None = None

    def open_spider(self) -> None:
        self.started = self.clock()
        level = self.url_log_level
        # Decided once, now that Scrapy's root handler is in place.
        self.log_urls = level is not None and log_level_enabled(logger, level)
        if self.log_urls and self.crawler is not None:
            self.crawler.signals.connect(self.item_scraped, signals.item_scraped)

    def process_item(self, item: Any) -> Any:
        elapsed = item["elapsed_ms"]
        if elapsed is not None:
            self.latency.add(elapsed)
        length = item["length"]
        if length:
            counts = self.counts
            counts["report/bytes"] = counts.get("report/bytes", 0) + length
        if self.log_urls and item["status"] is None:
            self.log_url(item, None)
        return item

    #: ``ReportWriter`` counts trusted rows with ``count``: same work.
    count = process_item

    def process_kept_item(self, item: Any) -> Any:
        """A row of the report a crawl resumes (``ReportWriter``): in the
        report's bytes, but not in this run's latency or pages per second,
        and no URL event (it did not finish now)."""
        length = item["length"]
        if length:
            counts = self.counts
            counts["report/bytes"] = counts.get("report/bytes", 0) + length
        return item

    def item_scraped(self, item: Any, response: Response | Any) -> None:
        """Log the event of a row with an HTTP response (the others were
        logged by :meth:`process_item`)."""
        if item.get("status") is None:
            return
        wait = response.meta.get(WAIT_KEY) if isinstance(response, Response) else None
        self.log_url(item, wait)

    def log_url(self, item: dict[str, Any], ratelimit_wait: float | None) -> None:
        """Log the event of one finished URL (see the module docstring)."""
        error = item["error"]
        error_class = error.split(":", 1)[0] if error else ""
        fields = dict(item)
        fields["event"] = "url_finished"
        fields["error_class"] = error_class
        fields["ratelimit_wait"] = ratelimit_wait
        logger.log(
            self.url_log_level or logging.DEBUG,
            "Finished %(url)s: %(outcome)s",
            {"url": item["url"], "outcome": error_class or item["status"]},
            extra=fields,
        )

    def close_spider(self) -> None:
        """Publish the latency percentiles, maximum and pages per second."""
        counts = self.counts
        latency = self.latency
        values = latency.percentiles(*PERCENTILES)
        for p, value in zip(PERCENTILES, values, strict=False):
            counts[f"report/latency_ms/p{p}"] = round(value)
        if latency.count:
            counts["report/latency_ms/max"] = round(latency.maximum)
        if self.started is not None:
            seconds = self.clock() - self.started
            if seconds > 0:
                counts["report/pages_per_second"] = round(latency.count / seconds, 2)
        counts.setdefault("report/bytes", 0)
