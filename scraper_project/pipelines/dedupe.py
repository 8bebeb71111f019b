"""One row per distinct URL, whoever produced the rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from scraper_project.dedupe import FingerprintSet, fingerprint

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


class DeduplicationPipeline:
    """Drop a second row for a URL that already has one.

    The spider fetches each distinct URL once, so in a healthy crawl this
    drops nothing; it guards the report's promise against every other way a
    row could be produced twice (a redirect-chain edge case, a row emitted
    by accounting at shutdown for a URL that finished at the same moment, a
    re-queued URL in the distributed mode). ``invalid_url`` rows are one per
    input line and are never merged. Drops count as ``report/duplicates_dropped``.
    """

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.seen = FingerprintSet()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DeduplicationPipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        error: str = item["error"]
        if error.startswith("invalid_url"):
            return item
        if not self.seen.add(fingerprint(item["url"])):
            self.stats.inc_value("report/duplicates_dropped")
            raise DropItem(f"duplicate row for {item['url']} (line {item['line']})")
        return item
