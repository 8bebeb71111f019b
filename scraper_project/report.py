"""Direct access to the report: its feed slots, and a fast path to write rows.

Scrapy writes an item to the feeds once it went through the engine: a trip
that is paced by the reactor (about one item per loop iteration). When the
crawl stops with half a million lines still unread, their ``not_attempted``
rows must be written in seconds, so :class:`ReportWriter` runs them through
the item pipelines and the feed exporters directly.
"""

from __future__ import annotations

import csv
import inspect
import io
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from scrapy.exceptions import DropItem
from scrapy.exporters import CsvItemExporter, JsonLinesItemExporter
from scrapy.extensions.feedexport import FeedExporter
from w3lib.url import file_uri_to_path

from scraper_project.config import usage_error
from scraper_project.exporters import SafeCsvItemExporter, neutralise
from scraper_project.items import FIELDS, new_item
from scraper_project.stats import inc, live_stats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


_CSV_EXPORTERS: Final = (CsvItemExporter, SafeCsvItemExporter)


def _fast_exporter(exporter: Any) -> Callable[[dict[str, Any]], None] | None:
    """A cheaper ``export_item`` for this project's rows (flat dicts of str,
    int and None in report order), writing exactly what Scrapy's CSV and
    JSON-lines exporters write (tested), or ``None`` to use the exporter."""
    fields = list(FIELDS)
    if type(exporter) in _CSV_EXPORTERS and list(exporter.fields_to_export or ()) == fields:
        if exporter._headers_not_written:
            return None  # the first row writes the header: use the exporter
        writerow = exporter.csv_writer.writerow
        safe = isinstance(exporter, SafeCsvItemExporter)

        def csv_row(item: dict[str, Any]) -> None:
            cells = ["" if item[f] is None else item[f] for f in fields]
            if safe:
                cells = [neutralise(c) if isinstance(c, str) else c for c in cells]
            writerow(cells)

        return csv_row
    if type(exporter) is JsonLinesItemExporter and list(exporter.fields_to_export or ()) == fields:
        write, encode, encoding = exporter.file.write, exporter.encoder.encode, exporter.encoding

        def json_line(item: dict[str, Any]) -> None:
            write((encode({f: item[f] for f in fields}) + "\n").encode(encoding or "utf-8"))

        return json_line
    return None


def feed_slots(crawler: Crawler) -> list[Any]:
    """The FeedExporter's slots (one per ``FEEDS`` entry)."""
    for ext in crawler.extensions.middlewares:
        if isinstance(ext, FeedExporter):
            return list(ext.slots)
    return []


def local_feed_path(uri: str) -> Path | None:
    """The local file a feed URI writes, or ``None`` (s3:, stdout:, ...)."""
    if uri.startswith("file://"):
        return Path(file_uri_to_path(uri))
    scheme = urlparse(uri).scheme
    if scheme and len(scheme) > 1:  # s3:, stdout:, ... (one letter: C:\)
        return None
    return Path(uri)


def check_feed_targets(settings: BaseSettings) -> None:
    """Refuse, before the crawl, report files a run would spoil:
    ``UsageError`` for a folder, a file that cannot be written, and an
    append (``-o``) to a JSON array (two arrays in one file) or to a CSV
    file whose header is not the report's."""
    feeds = settings.getdict("FEEDS")
    expected = ",".join(str(f) for f in settings.getlist("FEED_EXPORT_FIELDS") or FIELDS)
    for uri, options in feeds.items():
        path = local_feed_path(str(uri))
        if path is None or "%(" in str(path):
            continue
        if path.is_dir():
            raise usage_error(f"report {str(path)!r} is a folder, not a file")
        if not path.exists() or path.stat().st_size == 0:
            continue
        if not os.access(path, os.W_OK):
            raise usage_error(f"report {str(path)!r} cannot be written (permissions)")
        if (options or {}).get("overwrite"):
            continue
        fmt = (options or {}).get("format") or path.suffix.lstrip(".").lower()
        if fmt in ("json", "html"):
            what = "two arrays" if fmt == "json" else "two pages"
            raise usage_error(
                f"cannot append (-o) to the {fmt.upper()} report {str(path)!r}: the file would "
                f"hold {what}; overwrite it (-O) or append to a .jsonl or .csv report"
            )
        if fmt == "csv":
            with path.open(encoding="utf-8", errors="replace", newline="") as file:
                header = file.readline().rstrip("\r\n")
            if header != expected:
                raise usage_error(
                    f"cannot append (-o) to {str(path)!r}: its first line is not this "
                    f"report's header ({expected}); overwrite it (-O) or use another file"
                )


def keep_existing_reports(crawler: Crawler) -> None:
    """The crawl failed before its first row: leave every report file that
    got no row as it was, instead of storing an empty feed over it (Scrapy
    opens a feed's file only for its first row, or at the end to store an
    empty feed: ``FEED_STORE_EMPTY``)."""
    for slot in feed_slots(crawler):
        if not slot.itemcount:
            slot.store_empty = False


def flush_feeds(crawler: Crawler) -> None:
    """Push what the exporters wrote so far to the OS (a killed process then
    loses nothing of it)."""
    for slot in feed_slots(crawler):
        file = getattr(slot, "file", None)
        if getattr(slot, "_exporting", False) and file is not None and not file.closed:
            try:
                file.flush()
            except (OSError, ValueError):
                logger.debug("cannot flush %s", slot.uri, exc_info=True)


class ReportWriter:
    """Write rows through the item pipelines to the feeds, synchronously."""

    def __init__(self, pipelines: list[Any], slots: list[Any], crawler: Crawler) -> None:
        self.processors: list[Callable[[Any], Any]] = []
        # Rows of a resumed report: a pipeline's process_kept_item where it
        # has one (per-run metrics leave them out), else process_item.
        self.kept_processors: list[Callable[[Any], Any]] = []
        for pipeline in pipelines:
            process = getattr(pipeline, "process_item", None)
            if process is None:
                continue
            if inspect.iscoroutinefunction(process):
                # Not this project's pipelines: such a row skips that one.
                logger.warning("%r is asynchronous: skipped for accounting rows", pipeline)
                continue
            self.processors.append(process)
            self.kept_processors.append(getattr(pipeline, "process_kept_item", process))
        self.counters = [p.count for p in pipelines if callable(getattr(p, "count", None))]
        # count_many(row, n): n rows like row, for the bulk path of a stop.
        self.bulk_counters = [
            p.count_many for p in pipelines if callable(getattr(p, "count_many", None))
        ]
        self.slots = slots
        self.crawler = crawler
        self._fast: dict[int, Callable[[dict[str, Any]], None] | None] = {}

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> ReportWriter:
        try:
            pipelines = list(crawler.engine.scraper.itemproc.middlewares)
        except (RuntimeError, AttributeError):
            pipelines = []
        return cls(pipelines, feed_slots(crawler), crawler)

    def write_not_attempted(self, entries: list[tuple[str, int]], error: str) -> None:
        """``not_attempted`` rows for ``(url, line)`` pairs of lines the spider
        read after the crawl stopped (already normalised and deduplicated).

        The bulk path of a stop: hundreds of thousands of rows that differ
        only in url and line. Rows are built as dicts only for exporters
        without a fast path."""
        template = new_item("", 0, error)
        for slot in self.slots:
            if not getattr(slot, "_exporting", False):
                slot.start_exporting()
            exporter = slot.exporter
            todo = entries
            if type(exporter) in _CSV_EXPORTERS and exporter._headers_not_written and todo:
                # The first row of the file goes through the exporter (it
                # writes the header, or learns there is one); then the fast path.
                url, line = todo[0]
                exporter.export_item({**template, "url": url, "line": line})
                todo = todo[1:]
            if (
                type(exporter) in _CSV_EXPORTERS
                and not exporter._headers_not_written
                and (list(exporter.fields_to_export or ()) == list(FIELDS))
            ):
                values = ["" if template[f] is None else template[f] for f in FIELDS]  # type: ignore[literal-required]
                if isinstance(exporter, SafeCsvItemExporter):
                    values = [neutralise(v) if isinstance(v, str) else v for v in values]
                url_at, line_at = FIELDS.index("url"), FIELDS.index("line")
                # One write of the whole batch: the exporter's stream writes
                # through on every row, which costs more than the CSV itself.
                # Rows differ only in url and line: format the constant cells
                # once; quote through the csv module only URLs that need it.
                dialect = exporter.csv_writer.dialect
                probe = io.StringIO()
                values[url_at], values[line_at] = "\x00URL\x00", 0
                csv.writer(probe, dialect=dialect).writerow(values)
                head, _, rest = probe.getvalue().partition("\x00URL\x00")
                middle = rest[: rest.rindex("0")]  # the cells between url and line
                end = dialect.lineterminator
                special = re.compile(
                    "["
                    + re.escape(f"{dialect.delimiter}{dialect.quotechar or chr(34)}")
                    + "\\n\\r ]"
                ).search
                buffer = io.StringIO()
                writerow = csv.writer(buffer, dialect=dialect).writerow
                write = buffer.write
                simple = url_at == 0 and line_at == len(values) - 1
                for url, line in todo:
                    # Normalised URLs start with "http"; anything else takes
                    # the csv module's path, neutralised.
                    if simple and url.startswith("http") and special(url) is None:
                        write(f"{head}{url}{middle}{line}{end}")
                    else:
                        values[url_at], values[line_at] = neutralise(url), line
                        writerow(values)
                exporter.stream.write(buffer.getvalue())
            else:
                if id(exporter) not in self._fast:
                    self._fast[id(exporter)] = _fast_exporter(exporter)
                export = self._fast[id(exporter)] or exporter.export_item
                for url, line in todo:
                    export({**template, "url": url, "line": line})
            slot.itemcount += len(entries)
        stats = self.crawler.stats
        if stats is not None:
            data = live_stats(stats)
            inc(data, "report/accounted_directly", len(entries))
            if self.counters:  # what ValidationPipeline.count does, in bulk
                inc(data, "report/rows", len(entries))
                inc(data, f"report/error/{error.split(':', 1)[0]}", len(entries))
        for count_many in self.bulk_counters:
            count_many(template, len(entries))

    def write(
        self,
        rows: Iterable[Any],
        *,
        trusted: bool = False,
        kept: bool = False,
        accounted: bool = True,
    ) -> int:
        """Write ``rows``; return how many reached the report.

        ``trusted`` rows were built complete and clean by the spider for URLs
        it has not reported (``not_attempted`` lines): they skip the
        pipelines and are only counted (``ValidationPipeline.count``).
        ``kept`` rows come from the report a crawl resumes
        (:mod:`scraper_project.resume`): they go through each pipeline's
        ``process_kept_item`` where it has one. ``accounted``: count the rows
        in ``report/accounted_directly`` (rows written while stopping).
        """
        written = 0
        stats = self.crawler.stats
        processors = self.kept_processors if kept else self.processors
        if trusted:
            processors = self.counters
        for row in rows:
            item = row
            try:
                for process in processors:
                    result = process(item)
                    if not trusted:
                        item = result
            except DropItem:
                continue
            for slot in self.slots:
                if not getattr(slot, "_exporting", False):
                    slot.start_exporting()
                exporter = slot.exporter
                fast = self._fast.get(id(exporter))
                if fast is None:
                    fast = self._fast[id(exporter)] = _fast_exporter(exporter)
                if fast is None:
                    exporter.export_item(item)
                else:
                    fast(item)
                slot.itemcount += 1
            written += 1
        if stats is not None and accounted:
            stats.inc_value("report/accounted_directly", written)
        return written
