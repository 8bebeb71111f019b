"""What changed between two reports, per URL, in bounded memory.

``scrapy pages-diff old.csv new.csv [-o changes.csv|.jsonl|.json|.html]``.

Rows are matched by ``url``. Reports are not in URL order (a crawl writes a
row when its URL finishes), so each one is put in URL order with an
external merge sort: runs of ``chunk_rows`` rows are sorted in memory and
spilled to a temporary file (marshal, in batches), then the runs are merged
with :func:`heapq.merge`. The two sorted streams are then walked side by
side. Memory is one run while reading plus one batch per run while merging,
whatever the reports' sizes; the temporary files hold about the reports'
size and are deleted at the end. A URL repeated in one report (the workers'
reports of a cluster, unmerged) is compared by its first row.

A row's outcome is *ok* (a status below 400, no error), *failing* (an error
other than "not checked", or a status of 400 or more) or *unchecked*
(``not_attempted``, ``cancelled``: the crawl stopped before knowing;
``skipped``: left out by ``PAGES_SKIP``). Each
URL gets at most one kind of change, the first that applies:

==========================  ==============================================
``newly_failing``           failing now; ok, unchecked or absent before
``fixed``                   ok now, failing before
``status_changed``          failing before and now, with another status or
                            error class; or ok before and now, another status
``redirected_elsewhere``    ok before and now, same status, the final URL
                            (after redirects) differs
``title_changed``           ok, same status and final URL, another title
``added``                   only in the new report (and not failing)
``removed``                 only in the old report
``not_checked``             unchecked now, checked before
``checked``                 ok now, unchecked before
==========================  ==============================================
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import marshal
import tempfile
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from scraper_project.exporters import neutralise
from scraper_project.htmlreport import UNCHECKED_CLASSES, HtmlPageWriter, RowCap, error_class
from scraper_project.reportfile import (
    ReportFormatError,
    cell_int,
    cell_text,
    read_columns,
    read_report,
    report_format,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DIFF_FIELDS",
    "EXIT_NEWLY_FAILING",
    "KINDS",
    "Change",
    "ChangesWriter",
    "ReportDiff",
    "change_kind",
    "outcome",
    "output_format",
]

#: Exit code of ``scrapy pages-diff`` when a URL of a ``--fail-on`` kind
#: (by default ``newly_failing``) is found: not 1 (an uncaught exception)
#: nor 2 (a usage or input error).
EXIT_NEWLY_FAILING: Final = 4

KINDS: Final = (
    "newly_failing",
    "fixed",
    "status_changed",
    "redirected_elsewhere",
    "title_changed",
    "added",
    "removed",
    "not_checked",
    "checked",
)
#: Columns of the changes file.
DIFF_FIELDS: Final = (
    "kind",
    "url",
    "old_status",
    "new_status",
    "old_error",
    "new_error",
    "old_final_url",
    "new_final_url",
    "old_title",
    "new_title",
    "old_line",
    "new_line",
)
#: Rows sorted in memory at once (about 0.5 KB each).
CHUNK_ROWS: Final = 100_000
_BATCH: Final = 2_000  # records per marshal write/read of a run

# (url, status, error, final_url or "" when it is url, title, line)
Record = tuple[str, int | None, str, str, str, int]
_URL = itemgetter(0)
_COLUMNS: Final = ("url", "status", "error", "final_url", "title", "line")


def outcome(status: int | None, error: str) -> str:
    """``ok``, ``failing`` or ``unchecked`` (module docstring)."""
    if error:
        return "unchecked" if error_class(error) in UNCHECKED_CLASSES else "failing"
    if status is None:
        return "unchecked"
    return "failing" if status >= 400 else "ok"


def change_kind(old: Record | None, new: Record | None) -> str | None:
    """The kind of change from ``old`` to ``new`` (either may be missing),
    or ``None`` when nothing that matters changed."""
    if old is None:
        assert new is not None
        return "newly_failing" if outcome(new[1], new[2]) == "failing" else "added"
    if new is None:
        return "removed"
    before, now = outcome(old[1], old[2]), outcome(new[1], new[2])
    if now == "failing":
        if before != "failing":
            return "newly_failing"
        if old[1] != new[1] or error_class(old[2]) != error_class(new[2]):
            return "status_changed"
        return None
    if now == "unchecked":
        return None if before == "unchecked" else "not_checked"
    if before == "failing":
        return "fixed"
    if before == "unchecked":
        return "checked"
    if old[1] != new[1]:
        return "status_changed"
    if (old[3] or old[0]) != (new[3] or new[0]):
        return "redirected_elsewhere"
    if old[4] != new[4]:
        return "title_changed"
    return None


@dataclass
class Change:
    """One URL whose outcome changed."""

    kind: str
    old: Record | None
    new: Record | None

    @property
    def url(self) -> str:
        side = self.old or self.new
        assert side is not None
        return side[0]

    def as_row(self) -> dict[str, Any]:
        """The changes file's row (:data:`DIFF_FIELDS`)."""
        old, new = self.old, self.new
        return {
            "kind": self.kind,
            "url": self.url,
            "old_status": old[1] if old else None,
            "new_status": new[1] if new else None,
            "old_error": old[2] if old else "",
            "new_error": new[2] if new else "",
            "old_final_url": (old[3] or old[0]) if old else "",
            "new_final_url": (new[3] or new[0]) if new else "",
            "old_title": old[4] if old else "",
            "new_title": new[4] if new else "",
            "old_line": old[5] if old else None,
            "new_line": new[5] if new else None,
        }


@dataclass
class SideCounts:
    """What was read of one report."""

    rows: int = 0  # rows read (damaged ones excluded)
    urls: int = 0  # distinct URLs
    damaged: int = 0
    duplicates: int = 0


@dataclass
class ReportDiff:
    """Diff ``old`` and ``new`` (paths of reports): iterate :meth:`changes`,
    then read :attr:`counts` (per kind, plus ``unchanged``).

    ``chunk_rows``: rows sorted in memory at once; more spill to ``tmp_dir``
    (default: the system's temporary folder).
    """

    old: Path
    new: Path
    chunk_rows: int = CHUNK_ROWS
    tmp_dir: Path | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*KINDS, "unchanged"), 0))
    old_counts: SideCounts = field(default_factory=SideCounts)
    new_counts: SideCounts = field(default_factory=SideCounts)

    def check(self) -> None:
        """Raise ReportFormatError now if either file is not a readable report."""
        for path in (self.old, self.new):
            next(iter(read_report(path)), None)

    def changes(self) -> Iterator[Change]:
        with tempfile.TemporaryDirectory(prefix="pages-diff-", dir=self.tmp_dir) as tmp:
            workdir = Path(tmp)
            olds = self._unique(
                self._sorted(self.old, workdir / "old", self.old_counts), self.old_counts
            )
            news = self._unique(
                self._sorted(self.new, workdir / "new", self.new_counts), self.new_counts
            )
            counts = self.counts
            o, n = next(olds, None), next(news, None)
            while o is not None or n is not None:
                if n is None or (o is not None and o[0] < n[0]):
                    before, now = o, None
                    o = next(olds, None)
                elif o is None or n[0] < o[0]:
                    before, now = None, n
                    n = next(news, None)
                else:
                    before, now = o, n
                    o, n = next(olds, None), next(news, None)
                kind = change_kind(before, now)
                if kind is None:
                    counts["unchanged"] += 1
                else:
                    counts[kind] += 1
                    yield Change(kind, before, now)

    @staticmethod
    def _records(path: Path, counts: SideCounts) -> Iterator[Record]:
        # Only the columns compared are read and converted: the cost of a
        # diff is mostly reading.
        from_csv = report_format(path) == "csv"
        for cells in read_columns(path, _COLUMNS):
            try:
                if cells is None:
                    raise ValueError
                url = cell_text(cells[0], from_csv)
                final = cell_text(cells[3], from_csv)
                record = (
                    url,
                    cell_int(cells[1]),
                    cell_text(cells[2], from_csv),
                    "" if final == url else final,
                    cell_text(cells[4], from_csv),
                    cell_int(cells[5]) or 0,
                )
            except (TypeError, ValueError):
                counts.damaged += 1
                continue
            counts.rows += 1
            yield record

    def _sorted(self, path: Path, prefix: Path, counts: SideCounts) -> Iterator[Record]:
        """The records of ``path`` in URL order (stable: the file's order
        among rows of one URL)."""
        runs: list[Path] = []
        chunk: list[Record] = []
        for record in self._records(path, counts):
            chunk.append(record)
            if len(chunk) >= self.chunk_rows:
                chunk.sort(key=_URL)
                runs.append(_spill(chunk, Path(f"{prefix}-{len(runs)}")))
                chunk = []
        chunk.sort(key=_URL)
        if not runs:
            return iter(chunk)
        # The last run stays in memory; heapq.merge breaks ties by input order.
        return heapq.merge(*(_read_run(run) for run in runs), chunk, key=_URL)

    @staticmethod
    def _unique(records: Iterator[Record], counts: SideCounts) -> Iterator[Record]:
        last = None
        for record in records:
            if record[0] == last:
                counts.duplicates += 1
                continue
            last = record[0]
            counts.urls += 1
            yield record


def _spill(records: list[Record], path: Path) -> Path:
    # Length-prefixed marshal blobs: marshal.load() on a file reads it in
    # many small calls, loads() of one read is several times faster.
    with path.open("wb") as f:
        for start in range(0, len(records), _BATCH):
            blob = marshal.dumps(records[start : start + _BATCH])
            f.write(len(blob).to_bytes(4, "little"))
            f.write(blob)
    return path


def _read_run(path: Path) -> Iterator[Record]:
    with path.open("rb") as f:
        while size := f.read(4):
            batch: list[Record] = marshal.loads(f.read(int.from_bytes(size, "little")))
            yield from batch
    path.unlink()


_OUTPUT_FORMATS: Final = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonlines",
    ".jl": "jsonlines",
    ".ndjson": "jsonlines",
    ".html": "html",
    ".htm": "html",
}


def output_format(path: Path) -> str:
    """The changes file's format, by its suffix; a UsageError if unknown."""
    fmt = _OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ReportFormatError(f"{path}: unknown output format (use .csv, .json, .jsonl or .html)")
    return fmt


class ChangesWriter:
    """Writes the changes, streaming, to ``file`` (binary) in ``fmt``.

    ``max_rows`` (HTML only): ``newly_failing`` changes kept for the page's
    table, and as many others (0: all); every change is counted.

    ``meta``: shown by the HTML page (``old_source``, ``new_source``).
    """

    def __init__(
        self, file: IO[bytes], fmt: str, *, max_rows: int = 0, meta: dict[str, Any] | None = None
    ) -> None:
        self.fmt = fmt
        self.file = file
        self.written = 0
        self.cap = RowCap(max_rows)
        self.page: HtmlPageWriter | None = None
        self.text: io.TextIOWrapper | None = None
        self.csv: Any = None
        if fmt == "html":
            self.page = HtmlPageWriter(
                file, "diff", DIFF_FIELDS, {**(meta or {}), "max_rows": max_rows}
            )
            self.page.start()
        else:
            self.text = io.TextIOWrapper(
                file, encoding="utf-8", errors="surrogateescape", newline="", write_through=False
            )
            if fmt == "csv":
                self.csv = csv.writer(self.text)
                self.csv.writerow(DIFF_FIELDS)
            elif fmt == "json":
                self.text.write("[")

    def add(self, change: Change) -> None:
        row = change.as_row()
        if self.page is not None:
            if self.cap.keep(change.kind == "newly_failing"):
                self.page.add([row[f] for f in DIFF_FIELDS])
        elif self.csv is not None:
            self.csv.writerow(
                [
                    "" if v is None else (neutralise(v) if isinstance(v, str) else v)
                    for v in row.values()
                ]
            )
        else:
            assert self.text is not None
            text = json.dumps(row, ensure_ascii=False)
            if self.fmt == "json":
                self.text.write(("\n" if self.written == 0 else ",\n") + text)
            else:
                self.text.write(text + "\n")
        self.written += 1

    def finish(self, summary: dict[str, Any]) -> None:
        if self.page is not None:
            self.page.finish(
                {**summary, "kept_rows": self.page.rows, "dropped_rows": self.cap.dropped}
            )
            return
        assert self.text is not None
        if self.fmt == "json":
            self.text.write("\n]\n" if self.written else "]\n")
        self.text.flush()
        self.text.detach()
