"""The HTML report: one self-contained page, written as the rows come.

``-O report.html`` (``FEED_EXPORTERS["html"]``), ``FEEDS`` and Scrapyd's
feeds use :class:`HtmlItemExporter`; ``scrapy pages-report`` and ``scrapy
pages-diff -o changes.html`` drive the same writer. The file is laid out so
that it can be written front to back in bounded memory and still show its
totals first:

1. the page (``htmlreport.html``: markup, CSS and the script that draws
   everything), with a Content-Security-Policy that allows only that script
   and style (by hash) and no network request at all;
2. ``<script type="application/json" id="report-meta">``: what the rows'
   columns are and where the report came from;
3. the rows, as JSON arrays, in chunks of :data:`CHUNK_ROWS` per
   ``<script type="application/json" class="rows">`` block, one row a line;
4. ``<script type="application/json" id="report-summary">``: totals, status
   and error classes, latency percentiles and the per-host table, computed
   incrementally (:class:`ReportSummary`) and written last.

The page's script draws the summary at the top. A file cut short (a killed
crawl) has no summary block, perhaps a torn last chunk: the page then keeps
every complete row, computes the figures from them and says so.

Untrusted text (titles, URLs, error details) only ever appears inside JSON
in those blocks, with ``<``, ``>`` and ``&`` escaped as ``\\u003c`` etc., so
neither ``</script>`` nor ``<!--`` can end or change a block; the script puts
it in the page with ``textContent``, never as markup. The CSP is a second
wall: an injected inline script would not run.

What a browser can hold: the rendered table is paged (100 rows a page), and
the rows kept in the file are capped (``PAGES_HTML_MAX_ROWS`` failing rows
and as many others); the totals, charts and host table always count every
row, and the page says how many rows the table lacks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import re
from datetime import UTC, datetime
from importlib import resources
from typing import IO, TYPE_CHECKING, Any, Final

from itemadapter import ItemAdapter
from scrapy.exceptions import UsageError
from scrapy.exporters import BaseItemExporter

from scraper_project.config import get_int
from scraper_project.items import FIELDS
from scraper_project.observability.latency import LatencyReservoir, percentile

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

__all__ = [
    "CHUNK_ROWS",
    "UNCHECKED_CLASSES",
    "HtmlItemExporter",
    "HtmlPageWriter",
    "ReportSummary",
    "RowCap",
    "error_class",
    "export_rows",
    "host_of",
    "is_failing",
    "read_settings",
]

#: Rows per JSON block: small enough that a torn file loses little, big
#: enough that the blocks' markup costs nothing.
CHUNK_ROWS: Final = 1000
#: Error classes that mean "not checked" rather than "broken": the crawl
#: stopped first, or PAGES_SKIP left the URL out.
UNCHECKED_CLASSES: Final = frozenset({"not_attempted", "cancelled", "skipped"})
#: Latencies kept for the report's percentiles (exact up to that many rows).
LATENCY_SAMPLES: Final = 100_000
INVALID_HOST: Final = "(invalid URL)"
OTHER_HOSTS: Final = "(other hosts)"
MAX_ERROR_CLASSES: Final = 64
MAX_STATUSES: Final = 200

_HOST_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#]*)")
# JSON inside <script>: nothing that could end the block or open a comment.
_SCRIPT_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def script_json(value: Any) -> bytes:
    """``value`` as JSON that is safe inside a ``<script>`` block, UTF-8.

    A lone surrogate (an undecodable byte of a report read back) becomes its
    ``\\udcXX`` JSON escape rather than an encoding error.
    """
    text = _ENCODER.encode(value)
    for old, new in _SCRIPT_ESCAPES:
        if old in text:
            text = text.replace(old, new)
    return text.encode("utf-8", "backslashreplace")


def host_of(url: str) -> str:
    """The host (and port) of ``url``, lower-cased, without credentials."""
    match = _HOST_RE.match(url)
    if match is None or not match.group(1):
        return INVALID_HOST
    return match.group(1).lower()


def error_class(error: str) -> str:
    """The class part of an ``error`` cell (``"timeout: ..."`` -> ``timeout``)."""
    return error.split(":", 1)[0].strip()[:40] if error else ""


def is_failing(status: int | None, error: str) -> bool:
    """Whether a row is a failure: an error other than "not checked", or a
    status of 400 or more."""
    if error:
        return error_class(error) not in UNCHECKED_CLASSES
    return status is not None and status >= 400


def _bucket(ms: int) -> int:
    """Latency histogram bucket: exact below 64 ms, then 32 buckets per
    doubling (5 significant bits: a value within 3.2% of the truth)."""
    if ms < 64:
        return max(ms, 0)
    shift = ms.bit_length() - 6
    return (shift << 5) + (ms >> shift)


def _bucket_value(bucket: int) -> int:
    """The middle of a bucket's range, in ms."""
    if bucket < 64:
        return bucket
    shift = (bucket >> 5) - 1
    low = (bucket - (shift << 5)) << shift
    return low + ((1 << shift) - 1) // 2


def _median(histogram: dict[int, int], count: int) -> int | None:
    if count == 0:
        return None
    rank = (count + 1) // 2  # nearest-rank p50
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return _bucket_value(bucket)
    return None  # pragma: no cover (the counts add up to count)


class _Host:
    """Per-host counters; the latency as a sparse histogram."""

    __slots__ = ("errors", "histogram", "latencies", "n4xx", "n5xx", "n429", "ok", "robots", "urls")

    def __init__(self) -> None:
        self.urls = self.ok = self.n4xx = self.n5xx = self.errors = 0
        self.n429 = self.robots = self.latencies = 0
        self.histogram: dict[int, int] = {}

    def as_list(self, host: str) -> list[Any]:
        return [
            host,
            self.urls,
            self.ok,
            self.n4xx,
            self.n5xx,
            self.errors,
            self.n429,
            self.robots,
            _median(self.histogram, self.latencies),
        ]


#: Columns of the summary's ``hosts`` lists.
HOST_COLUMNS: Final = (
    "host",
    "urls",
    "ok",
    "4xx",
    "5xx",
    "errors",
    "429",
    "robots_forbidden",
    "median_ms",
)


class ReportSummary:
    """What the report's top shows, computed one row at a time in bounded
    memory: counts by outcome, status and error class, latency percentiles
    (a :class:`LatencyReservoir`), and per-host counters for the first
    ``max_hosts`` hosts (later hosts' rows are counted under
    ``(other hosts)``)."""

    def __init__(self, max_hosts: int = 10_000, latency_samples: int = LATENCY_SAMPLES) -> None:
        self.max_hosts = max_hosts
        self.rows = 0
        self.bytes = 0
        self.outcomes: dict[str, int] = dict.fromkeys(
            ("2xx", "3xx", "4xx", "5xx", "other", "error", "unchecked"), 0
        )
        self.status_classes: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.error_classes: dict[str, int] = {}
        # Seeded: the same report gives the same file.
        self.latency = LatencyReservoir(latency_samples, rng=random.Random(0))
        self.hosts: dict[str, _Host] = {}
        self.other = _Host()

    def add(
        self, url: str, status: int | None, error: str, elapsed: int | None, length: Any
    ) -> None:
        """Count one row."""
        self.rows += 1
        if isinstance(length, int):
            self.bytes += length
        cls = ""
        if error:
            cls = error_class(error)
            if cls not in self.error_classes and len(self.error_classes) >= MAX_ERROR_CLASSES:
                cls = "other"
            self.error_classes[cls] = self.error_classes.get(cls, 0) + 1
        if status is None:
            scls = "none"
        else:
            scls = f"{status // 100}xx" if 100 <= status < 600 else "other"
            if status in self.statuses or len(self.statuses) < MAX_STATUSES:
                self.statuses[status] = self.statuses.get(status, 0) + 1
        self.status_classes[scls] = self.status_classes.get(scls, 0) + 1
        if cls:
            outcome = "unchecked" if cls in UNCHECKED_CLASSES else "error"
        else:
            outcome = scls if scls in ("2xx", "3xx", "4xx", "5xx") else "other"
        self.outcomes[outcome] += 1
        if elapsed is not None:
            self.latency.add(elapsed)

        name = INVALID_HOST if cls == "invalid_url" else host_of(url)
        host = self.hosts.get(name)
        if host is None:
            if len(self.hosts) < self.max_hosts:
                host = self.hosts[name] = _Host()
            else:
                host = self.other
        host.urls += 1
        if outcome in ("2xx", "3xx"):
            host.ok += 1
        elif outcome == "4xx":
            host.n4xx += 1
            if status == 429:
                host.n429 += 1
        elif outcome == "5xx":
            host.n5xx += 1
        elif cls == "robots_forbidden":
            host.robots += 1
        elif outcome == "error":
            host.errors += 1
        if elapsed is not None:
            host.latencies += 1
            bucket = _bucket(elapsed)
            host.histogram[bucket] = host.histogram.get(bucket, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """The summary block's content."""
        samples = self.latency
        latency: dict[str, Any] = {"count": samples.count, "sampled": len(samples.samples)}
        if samples.count:
            ordered = sorted(samples.samples)
            for p in (50, 90, 99):
                latency[f"p{p}"] = round(percentile(ordered, p))
            latency["max"] = round(samples.maximum)
        hosts = sorted(self.hosts.items(), key=lambda kv: (-kv[1].urls, kv[0]))
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "outcomes": self.outcomes,
            "status_classes": self.status_classes,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "error_classes": dict(sorted(self.error_classes.items(), key=lambda kv: -kv[1])),
            "latency": latency,
            "host_columns": list(HOST_COLUMNS),
            "hosts": [h.as_list(name) for name, h in hosts],
            "max_hosts": self.max_hosts,
            "other_hosts": self.other.as_list(OTHER_HOSTS) if self.other.urls else None,
        }


def _template() -> tuple[bytes, bytes]:
    """The page before the data, with its CSP filled in, and its end."""
    text = resources.files("scraper_project").joinpath("htmlreport.html").read_text("utf-8")

    def digest(tag: str) -> str:
        match = re.search(f"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
        assert match is not None, tag
        raw = hashlib.sha256(match.group(1).encode("utf-8")).digest()
        return "'sha256-" + base64.b64encode(raw).decode("ascii") + "'"

    # No default source at all: no fetch, image, font, frame or form can
    # reach the network, and only this file's own script and style apply.
    policy = (
        f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    text = text.replace(
        "<!--CSP-->", f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    )
    head, tail = text.split("<!--DATA-->", 1)
    return head.encode("utf-8"), tail.encode("utf-8")


class HtmlPageWriter:
    """Writes one page: the template, a meta block, rows in chunks, then a
    summary block. ``kind`` tells the page's script what it draws
    (``report`` or ``diff``); ``fields`` names the rows' columns."""

    _template: tuple[bytes, bytes] | None = None

    def __init__(self, file: IO[bytes], kind: str, fields: Sequence[str], meta: Mapping[str, Any]):
        self.file = file
        self.meta = {"kind": kind, "fields": list(fields), **meta}
        self.rows = 0
        self._in_chunk = 0

    def start(self) -> None:
        if HtmlPageWriter._template is None:
            HtmlPageWriter._template = _template()
        self.file.write(HtmlPageWriter._template[0])
        self.file.write(b'<script type="application/json" id="report-meta">')
        self.file.write(script_json(self.meta))
        self.file.write(b"</script>\n")

    def add(self, values: list[Any]) -> None:
        """Write one row (its values in ``fields`` order)."""
        write = self.file.write
        if self._in_chunk == 0:
            write(b'<script type="application/json" class="rows">[\n')
        else:
            write(b",\n")
        write(script_json(values))
        self.rows += 1
        self._in_chunk += 1
        if self._in_chunk >= CHUNK_ROWS:
            write(b"\n]</script>\n")
            self._in_chunk = 0

    def finish(self, summary: Mapping[str, Any]) -> None:
        if self._in_chunk:
            self.file.write(b"\n]</script>\n")
            self._in_chunk = 0
        self.file.write(b'<script type="application/json" id="report-summary">')
        self.file.write(script_json(summary))
        self.file.write(b"</script>\n")
        self.file.write(HtmlPageWriter._template[1] if HtmlPageWriter._template else b"")


class RowCap:
    """Which rows a page keeps for its table: the first ``max_rows`` failing
    ones and the first ``max_rows`` others (``0``: all); counts the rest."""

    __slots__ = ("dropped", "kept_failing", "kept_other", "max_rows")

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.kept_failing = self.kept_other = self.dropped = 0

    def keep(self, failing: bool) -> bool:
        """Whether to keep the next row (``failing``: is it a failure)."""
        cap = self.max_rows
        if failing:
            if cap and self.kept_failing >= cap:
                self.dropped += 1
                return False
            self.kept_failing += 1
        else:
            if cap and self.kept_other >= cap:
                self.dropped += 1
                return False
            self.kept_other += 1
        return True


def read_settings(settings: BaseSettings) -> dict[str, int]:
    """``max_rows`` and ``max_hosts`` from ``PAGES_HTML_MAX_ROWS`` and
    ``PAGES_HTML_MAX_HOSTS``, validated (a bad value is a UsageError)."""
    return {
        "max_rows": get_int(settings, "PAGES_HTML_MAX_ROWS", minimum=0, default=50_000),
        "max_hosts": get_int(settings, "PAGES_HTML_MAX_HOSTS", minimum=0, default=10_000),
    }


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class HtmlItemExporter(BaseItemExporter):
    """A feed exporter writing the HTML report (module docstring).

    ``max_rows``: failing rows kept in the file for the table, and as many
    other rows (0: every row). Rows beyond are counted, not kept.

    ``max_hosts``: hosts with their own line in the host table (0: all);
    later hosts' rows are counted under ``(other hosts)``.

    ``source``: what the report is of, shown under its heading.
    """

    def __init__(
        self,
        file: IO[bytes],
        *,
        max_rows: int = 50_000,
        max_hosts: int = 10_000,
        source: str = "",
        damaged: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dont_fail=True, **kwargs)
        self.file = file
        fields = list(self.fields_to_export or FIELDS)
        missing = [f for f in ("url", "status", "error") if f not in fields]
        if missing:
            raise UsageError(
                f"the html report needs the fields {', '.join(missing)} (FEED_EXPORT_FIELDS)",
                print_help=False,
            )
        self.fields = fields
        self.max_rows = max_rows
        self.cap = RowCap(max_rows)
        self.summary = ReportSummary(max_hosts or 1 << 62)
        self.source = source
        #: Damaged rows of the source, skipped (pages-report says how many).
        self.damaged = damaged
        self.page = HtmlPageWriter(file, "report", fields, {})

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> None:
        """Raise ``UsageError`` for a bad ``PAGES_HTML_*`` value (``scrapy
        crawl`` runs this before anything starts)."""
        read_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler, file: IO[bytes], **kwargs: Any) -> HtmlItemExporter:
        options = read_settings(crawler.settings)
        spider = crawler.spider
        name = spider.name if spider is not None else "pages"
        started = crawler.stats.get_value("start_time") if crawler.stats else None
        when = started.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(started, datetime) else ""
        source = f"scrapy crawl {name}" + (f", started {when}" if when else "")
        return cls(file, source=source, **options, **kwargs)

    def start_exporting(self) -> None:
        try:
            appending = self.file.tell() > 0
        except (AttributeError, OSError, ValueError):  # e.g. a post-processing wrapper
            appending = False
        if appending:
            logger.warning(
                "Appending to an HTML report that already has content: the page will "
                "show the rows of both runs under the first run's totals; use -O "
                "(overwrite) for an HTML report",
                extra={"file": getattr(self.file, "name", None)},
            )
        self.page.meta.update(
            source=self.source,
            generated=_utc_now(),
            max_rows=self.max_rows,
            chunk_rows=CHUNK_ROWS,
        )
        self.page.start()

    def export_item(self, item: Any) -> None:
        get = item.get if isinstance(item, dict) else ItemAdapter(item).get
        values = [get(f) for f in self.fields]
        status = get("status")
        error = get("error") or ""
        url = get("url") or ""
        elapsed = get("elapsed_ms")
        self.summary.add(
            url,
            status if isinstance(status, int) else None,
            error,
            elapsed if isinstance(elapsed, int) else None,
            get("length"),
        )
        if self.cap.keep(is_failing(status if isinstance(status, int) else None, error)):
            self.page.add(values)

    def finish_exporting(self) -> None:
        summary = self.summary.as_dict()
        summary.update(
            kept_rows=self.page.rows,
            dropped_rows=self.cap.dropped,
            damaged_rows=self.damaged,
            finished=_utc_now(),
        )
        self.page.finish(summary)


def export_rows(
    file: IO[bytes],
    rows: Iterable[Mapping[str, Any] | None],
    settings: BaseSettings,
    source: str,
) -> HtmlItemExporter:
    """Write the HTML report of ``rows`` to ``file`` (``scrapy pages-report``);
    a ``None`` in ``rows`` is a damaged row of the source, counted."""
    exporter = HtmlItemExporter(file, source=source, **read_settings(settings))
    exporter.start_exporting()
    for row in rows:
        if row is None:
            exporter.damaged += 1
        else:
            exporter.export_item(row)
    exporter.finish_exporting()
    return exporter
