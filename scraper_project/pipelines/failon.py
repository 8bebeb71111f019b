"""``PAGES_FAIL_ON``: a crawl whose rows show broken links ends with exit code 4.

For CI, in the spirit of lychee and linkinator::

    scrapy crawl pages -a urls=urls.txt -O report.csv -s PAGES_FAIL_ON=error,4xx,5xx

A comma-separated list of conditions; a row matches when it meets one of
them and none of the excluded ones (``-`` first):

- ``error``: any error (the ``error`` column is not empty), except
  ``skipped`` (a URL left out on purpose by ``PAGES_SKIP``: name
  ``skipped`` to fail on those too);
- an error class: ``dns_error``, ``timeout``, ... (``scrapy crawl -h``);
- a status class: ``4xx``, ``5xx``, ... (rows with an HTTP answer);
- a status: ``404``, ``503``, ...;
- ``-robots_forbidden``, ``-404``, ...: not these.

Example: ``error,4xx,5xx,-robots_forbidden,-429``. When the crawl finishes and
a row matched, its finish reason is ``fail_on`` (what a Scrapyd job shows)
and ``scrapy crawl`` exits with code 4 (:mod:`scraper_project.outcome`), after
one line saying what matched: ``Exit code 4: 12 rows match
PAGES_FAIL_ON=error,4xx (error: 9, 4xx: 3)``. Stats: ``fail_on/rows``,
``fail_on/<condition>`` and that line, ``fail_on/summary``.
Off (no per-row cost) when the setting is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, NotConfigured

from scraper_project.config import did_you_mean, get_list, usage_error
from scraper_project.errors import ERROR_CLASSES
from scraper_project.outcome import FAIL_ON_REASON
from scraper_project.stats import inc, live_stats

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

__all__ = ["FailOn", "FailOnPipeline"]

_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True)
class _Condition:
    label: str  # as written: "error", "dns_error", "4xx", "404"
    kind: str  # "error", "class", "status_class", "status"
    value: str | int = ""

    def met(self, error_class: str, status: int | None) -> bool:
        kind = self.kind
        if kind == "error":
            return bool(error_class) and error_class != "skipped"
        if kind == "class":
            return error_class == self.value
        if status is None:
            return False
        if kind == "status_class":
            return status // 100 == self.value
        return status == self.value


def _condition(token: str, name: str = "PAGES_FAIL_ON") -> _Condition:
    text = token.strip().lower()
    if text == "error":
        return _Condition("error", "error")
    if text in ERROR_CLASSES:
        return _Condition(text, "class", text)
    if text in _STATUS_CLASSES:
        return _Condition(text, "status_class", int(text[0]))
    if text.isdigit() and 100 <= int(text) <= 599:
        return _Condition(text, "status", int(text))
    hint = did_you_mean(text, ("error", *ERROR_CLASSES, *_STATUS_CLASSES))
    raise usage_error(
        f"{name}: unknown condition {token!r}{hint}; expected error, an error class "
        f"(dns_error, timeout, ...), a status class (4xx) or a status (404), "
        f"optionally with - first to exclude it"
    )


@dataclass(frozen=True)
class FailOn:
    """The parsed ``PAGES_FAIL_ON`` conditions."""

    text: str
    include: tuple[_Condition, ...]
    exclude: tuple[_Condition, ...]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> FailOn | None:
        """Parse ``PAGES_FAIL_ON`` (``UsageError`` naming a bad condition);
        ``None`` when it is empty."""
        tokens = get_list(settings, "PAGES_FAIL_ON")
        return cls.parse(tokens, "PAGES_FAIL_ON") if tokens else None

    @classmethod
    def parse(cls, tokens: list[str], name: str) -> FailOn:
        """Conditions in this syntax from elsewhere (``-a retry_errors=``);
        ``name`` is what a ``UsageError`` names."""
        include = tuple(_condition(t, name) for t in tokens if not t.startswith("-"))
        exclude = tuple(_condition(t[1:], name) for t in tokens if t.startswith("-"))
        if not include:
            raise usage_error(
                f"{name} must name at least one condition to match, got {','.join(tokens)!r}"
            )
        return cls(",".join(tokens), include, exclude)

    def match(self, row: Any) -> str | None:
        """The label of the first condition ``row`` meets, or ``None``."""
        error = row["error"]
        error_class = error.split(":", 1)[0] if error else ""
        status = row["status"]
        for condition in self.exclude:
            if condition.met(error_class, status):
                return None
        for condition in self.include:
            if condition.met(error_class, status):
                return condition.label
        return None


class FailOnPipeline:
    """``ITEM_PIPELINES`` (after deduplication); see the module docstring."""

    def __init__(self, rules: FailOn, stats: StatsCollector) -> None:
        self.rules = rules
        self.counts = live_stats(stats)
        self.matched = 0
        self.stop_reason: str | None = None

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> FailOn | None:
        return FailOn.from_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailOnPipeline:
        rules = cls.check_settings(crawler.settings)
        if rules is None:
            raise NotConfigured  # off: no per-row cost, no message
        assert crawler.stats is not None
        pipeline = cls(rules, crawler.stats)
        pipeline.crawler = crawler
        crawler.signals.connect(pipeline.spider_idle, signals.spider_idle, weak=False)
        crawler.signals.connect(pipeline.spider_closed, signals.spider_closed, weak=False)
        return pipeline

    crawler: Crawler

    def process_item(self, item: Any) -> Any:
        self.count(item)
        return item

    def count(self, item: Any, rows: int = 1) -> None:
        """Count ``rows`` rows like ``item`` (also called for rows written
        straight to the report while a crawl stops)."""
        label = self.rules.match(item)
        if label is not None:
            self.matched += rows
            inc(self.counts, "fail_on/rows", rows)
            inc(self.counts, f"fail_on/{label}", rows)

    count_many = count

    def spider_idle(self) -> None:
        """The crawl is done: close it as ``fail_on`` if a row matched (a
        stopping crawl keeps its own reason)."""
        if self.matched and getattr(self.crawler.spider, "stop_reason", None) is None:
            raise CloseSpider(FAIL_ON_REASON)

    def spider_closed(self, reason: str) -> None:
        if not self.matched:
            return
        by_label = ", ".join(
            f"{c.label}: {self.counts.get(f'fail_on/{c.label}', 0)}"
            for c in self.rules.include
            if self.counts.get(f"fail_on/{c.label}")
        )
        text = (
            f"{self.matched} row{'s' if self.matched != 1 else ''} match "
            f"PAGES_FAIL_ON={self.rules.text} ({by_label})"
        )
        self.counts["fail_on/summary"] = text  # the last log line says it (outcome.summary)
