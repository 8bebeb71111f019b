"""The end of a crawl: a short human summary, and the final stats as a JSON file.

:class:`SummaryExtension` logs, at INFO, when the spider closes: rows and
throughput, counts by status class and by error class, latency percentiles
(from :class:`~scraper_project.observability.pipeline.ObservabilityPipeline`),
the rates learnt for the most throttled domains (``ratelimit/learnt/*``)
and where the report was written (the ``FEEDS`` URIs, passwords hidden).
Each line also carries its numbers as structured fields.

With ``PAGES_STATS_FILE`` it writes the final stats (the same dict as the
"Dumping Scrapy stats" line, taken after the engine stopped, so it is
complete) as a JSON object: datetimes as ISO 8601 strings, keys sorted. The
file is written to a temporary name and renamed, so a reader never sees half
of it.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from scrapy import signals

from scraper_project.observability.config import ObservabilitySettings
from scraper_project.outcome import INPUT_ERROR_REASON
from scraper_project.report import feed_slots

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

__all__ = ["SummaryExtension", "format_bytes", "redact_uri", "stats_to_json"]

logger = logging.getLogger(__name__)


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def redact_uri(uri: str) -> str:
    """``uri`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def stats_to_json(stats: dict[str, Any]) -> str:
    """The stats as a JSON object (datetimes as ISO strings, keys sorted)."""
    return json.dumps(stats, default=_json_default, indent=2, sort_keys=True, ensure_ascii=False)


class _PathParams(dict[str, Any]):
    """``%(name)s``, ``%(time)s``, then any spider attribute."""

    def __init__(self, spider: Spider | None, when: datetime) -> None:
        super().__init__(
            name=getattr(spider, "name", "crawl"),
            time=when.replace(microsecond=0, tzinfo=None).isoformat().replace(":", "-"),
        )
        self.spider = spider

    def __missing__(self, key: str) -> Any:
        try:
            return getattr(self.spider, key)
        except AttributeError:
            raise KeyError(key) from None


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}


class SummaryExtension(ObservabilitySettings):
    """``EXTENSIONS``: the final summary and ``PAGES_STATS_FILE``."""

    def __init__(self, crawler: Crawler, stats: StatsCollector, stats_file: str) -> None:
        self.crawler = crawler
        self.stats = stats
        self.stats_file = stats_file
        self.report_uris: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SummaryExtension:
        assert crawler.stats is not None
        config = cls.check_settings(crawler.settings)
        ext = cls(crawler, crawler.stats, config.stats_file)
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signals.spider_closed)
        if config.stats_file:
            crawler.signals.connect(ext.engine_stopped, signals.engine_stopped)
        return ext

    def spider_opened(self) -> None:
        uris = [str(getattr(slot, "uri", "")) for slot in feed_slots(self.crawler)]
        if not uris:
            uris = [str(uri) for uri in self.crawler.settings.getdict("FEEDS")]
        self.report_uris = [redact_uri(uri) for uri in uris if uri]

    def spider_closed(self, reason: str) -> None:
        for message, args in self.summary(self.stats.get_stats(), reason):
            logger.info(message, args, extra={"event": "summary", **args})

    def summary(self, stats: dict[str, Any], reason: str) -> list[tuple[str, dict[str, Any]]]:
        """The summary lines, as (message, fields) pairs."""
        rows = int(stats.get("report/rows", 0))
        ok = int(stats.get("report/ok", 0))
        start = stats.get("start_time")
        seconds = 0.0
        if isinstance(start, datetime):
            seconds = max((datetime.now(tz=start.tzinfo) - start).total_seconds(), 0.0)
        # Rows kept from a resumed report were not made in this run.
        fresh = rows - int(stats.get("resume/kept", 0))
        rate = fresh / seconds if seconds > 0 else 0.0
        lines: list[tuple[str, dict[str, Any]]] = [
            (
                "Summary (%(reason)s): %(rows)d rows in %(seconds).1f s (%(rate).1f rows/s), "
                "%(ok)d with an HTTP response, %(errors)d with an error, %(size)s",
                {
                    "reason": reason,
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rate": round(rate, 2),
                    "ok": ok,
                    "errors": rows - ok,
                    "size": format_bytes(stats.get("report/bytes", 0)),
                },
            )
        ]
        statuses = _prefixed(stats, "report/status/")
        if statuses:
            text = ", ".join(f"{k}: {v}" for k, v in statuses.items())
            lines.append(("Summary: by status: %(statuses)s", {"statuses": text}))
        errors = _prefixed(stats, "report/error/")
        if errors:
            ranked = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
            text = ", ".join(f"{k}: {v}" for k, v in ranked)
            lines.append(("Summary: by error: %(errors)s", {"errors": text}))
        if "report/latency_ms/max" in stats:
            lines.append(
                (
                    "Summary: latency p50 %(p50)s ms, p90 %(p90)s ms, p99 %(p99)s ms, "
                    "max %(max)s ms; %(pages_per_second)s pages/s",
                    {
                        "p50": stats.get("report/latency_ms/p50"),
                        "p90": stats.get("report/latency_ms/p90"),
                        "p99": stats.get("report/latency_ms/p99"),
                        "max": stats.get("report/latency_ms/max"),
                        "pages_per_second": stats.get("report/pages_per_second", 0),
                    },
                )
            )
        learnt = _prefixed(stats, "ratelimit/learnt/")
        if learnt:
            ranked = sorted(learnt.items(), key=lambda kv: (kv[1], kv[0]))
            text = ", ".join(f"{k} {v:g}/s" for k, v in ranked)
            lines.append(("Summary: learnt rates: %(learnt)s", {"learnt": text}))
        if "dns/lookups" in stats or "dns/cache_hits" in stats:
            lines.append(_dns_line(stats))
        lines += _workflow_lines(stats)
        if self.report_uris and not rows and reason == INPUT_ERROR_REASON:
            # report.keep_existing_reports: nothing is stored over them.
            lines.append(
                (
                    "Summary: no report written, %(report)s left as it was",
                    {"report": ", ".join(self.report_uris)},
                )
            )
        elif self.report_uris:
            lines.append(
                ("Summary: report written to %(report)s", {"report": ", ".join(self.report_uris)})
            )
        return lines

    def engine_stopped(self) -> None:
        when = self.stats.get_value("start_time")
        if not isinstance(when, datetime):
            when = datetime.now(tz=UTC)
        try:
            path = Path(self.stats_file % _PathParams(self.crawler.spider, when))
        except (KeyError, ValueError, TypeError) as exc:
            logger.error(
                "PAGES_STATS_FILE %(path)r: cannot fill in %(error)s",
                {"path": self.stats_file, "error": exc},
            )
            return
        try:
            write_atomically(path, stats_to_json(self.stats.get_stats()) + "\n")
        except OSError as exc:
            logger.error(
                "Cannot write the stats file %(path)s: %(error)s",
                {"path": str(path), "error": exc},
                extra={"stats_file": str(path)},
            )
            return
        logger.info(
            "Stats written to %(path)s", {"path": str(path)}, extra={"stats_file": str(path)}
        )


def _dns_line(stats: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Name resolution (``resolver.DNSStatsExtension``'s stats) in one line."""
    errors = _prefixed(stats, "dns/errors/")
    fields = {
        "lookups": int(stats.get("dns/lookups", 0)),
        "queries": int(stats.get("dns/queries", 0)),
        "cache_hits": int(stats.get("dns/cache_hits", 0)),
        "negative_hits": int(stats.get("dns/negative_hits", 0)),
        "coalesced": int(stats.get("dns/coalesced", 0)),
        "errors": ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none",
        "p50": stats.get("dns/latency_ms/p50", "-"),
        "p90": stats.get("dns/latency_ms/p90", "-"),
        "p99": stats.get("dns/latency_ms/p99", "-"),
        "max": stats.get("dns/latency_ms/max", "-"),
    }
    return (
        "Summary: DNS: %(lookups)d lookups (%(queries)d queries), %(cache_hits)d cache hits, "
        "%(negative_hits)d negative hits, %(coalesced)d shared; errors: %(errors)s; "
        "lookup latency p50 %(p50)s ms, p90 %(p90)s ms, p99 %(p99)s ms, max %(max)s ms",
        fields,
    )


def _workflow_lines(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The summary lines of skip rules and of a resumed report."""
    lines: list[tuple[str, dict[str, Any]]] = []
    if stats.get("input/skipped") or stats.get("skip/redirects"):
        patterns = _prefixed(stats, "input/skipped/")
        ranked = sorted(patterns.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append(
            (
                "Summary: %(skipped)d lines skipped by PAGES_SKIP (%(patterns)s), "
                "%(redirects)d redirects to skipped URLs not followed",
                {
                    "skipped": stats.get("input/skipped", 0),
                    "patterns": ", ".join(f"{k}: {v}" for k, v in ranked) or "none",
                    "redirects": stats.get("skip/redirects", 0),
                },
            )
        )
    if "resume/report" in stats:
        reasons = _prefixed(stats, "resume/recrawled/")
        message = (
            "Summary: resumed from %(report)s: %(kept)d rows kept, %(recrawled)d URLs crawled again"
        )
        args: dict[str, Any] = {
            "report": stats["resume/report"],
            "kept": stats.get("resume/kept", 0),
            "recrawled": stats.get("resume/recrawled", 0),
            "new": stats.get("resume/new", 0),
            "damaged": stats.get("resume/damaged_rows", 0),
            "not_in_list": stats.get("resume/not_in_list", 0),
        }
        if reasons:
            message += " (%(reasons)s)"
            args["reasons"] = ", ".join(f"{k}: {v}" for k, v in reasons.items())
        message += ", %(new)d URLs it had no row for"
        if args["damaged"]:
            message += "; %(damaged)d damaged rows ignored"
        if args["not_in_list"]:
            message += "; %(not_in_list)d kept rows are of URLs not in the list"
        lines.append((message, args))
    return lines


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
