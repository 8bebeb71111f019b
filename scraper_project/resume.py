"""Resume an interrupted crawl from its report: ``-a resume=old-report.csv``.

    scrapy crawl pages -a urls=urls.txt -a resume=old.csv -O report.csv
    scrapy crawl pages -a urls=urls.txt -a resume=report.csv -O report.csv -a timeout=600
    scrapy crawl pages -a urls=urls.txt -a resume=old.csv -a retry_errors=timeout,5xx -O new.csv

The new report is one complete report of the list: the old report's rows
that are kept, then a row for every other URL of the list, one row per URL.

**Which rows are kept.** Every complete row of the old report (CSV, JSON
lines or a JSON array, ``.gz`` too; a report cut short by ``kill -9``
included: its torn last row is ignored) except

- ``not_attempted`` and ``cancelled`` rows: their URLs are crawled again;
- rows matching ``-a retry_errors=...`` (``PAGES_FAIL_ON``'s syntax: error
  classes, ``error``, ``5xx``, ``404``, ``-`` to exclude): crawled again;
- ``invalid_url`` and ``skipped`` rows, and rows whose URL matches this
  run's ``PAGES_SKIP``: the list makes those rows again, by this run's rules;
- a second row for a URL (the first one counts).

**Which URLs are crawled.** The list (``-a urls=``) is read as usual: a URL
with a kept row is not fetched again; every other one is, including lines a
killed run never read (its report lacks them). Duplicate and invalid lines
keep their accounting (``input/duplicates``, ``invalid_url`` rows).

**Order.** Kept rows first, in the old report's order, then this run's rows
as they finish, like any crawl. A row never moves once written, so a chain
of resumed runs only appends. (``scrapy cluster merge -o sorted.csv
report.csv`` writes a report sorted by list line.)

**Memory.** Only fingerprints are held: the kept URLs, and the URLs to crawl
again by reason (8 to 16 bytes each, see :mod:`scraper_project.dedupe`);
kept rows are streamed from the old file to the new report.

**Resuming into the same file** (``-a resume=report.csv -O report.csv``,
the natural loop for a list finished in time-boxed runs): the old report is
copied beside it (``.report.csv.resume``) before the new report is opened,
read from the copy, and the copy is deleted once its rows are in the new
report. Appending (``-o``) to the report being resumed is refused (its rows
would be there twice).

Cluster mode has its own resume (a loader restarts after its last queued
line; leases hand unfinished URLs back): ``-a resume`` is refused there.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from scrapy.exceptions import UsageError

from scraper_project.config import usage_error
from scraper_project.dedupe import FingerprintSet, fingerprint
from scraper_project.report import local_feed_path
from scraper_project.reportfile import (
    cells_coercer,
    coerce_row,
    csv_cells,
    read_rows,
    report_format,
)
from scraper_project.urls import InvalidURL, normalize_url

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from scrapy.settings import BaseSettings

    from scraper_project.items import PageItem
    from scraper_project.pipelines.failon import FailOn
    from scraper_project.skip import SkipRules

__all__ = [
    "ALWAYS_RECRAWLED",
    "ResumePlan",
    "ResumeReader",
    "check_resume_file",
    "resumed_feed",
]

logger = logging.getLogger(__name__)

#: Rows whose URL is always crawled again.
ALWAYS_RECRAWLED: Final = frozenset({"not_attempted", "cancelled"})
#: Rows the list makes again, by this run's rules.
FROM_THE_LIST: Final = frozenset({"invalid_url", "skipped"})
#: Kept rows per write to the new report.
BATCH_SIZE: Final = 5000


def check_resume_file(path: str, *, absolute_only: bool = False) -> Path:
    """The report to resume from, checked: a readable report of this
    project (its format and columns). ``UsageError`` saying what is wrong."""
    if absolute_only and not os.path.isabs(path):
        raise usage_error(
            f"resume: {path!r} is not an absolute path: on Scrapyd, relative paths "
            f"resolve in Scrapyd's working directory ({os.getcwd()!r})"
        )
    report = Path(path).expanduser()
    rows = read_rows(report)
    try:
        next(rows, None)  # the format, the header or the first row
    except UsageError as exc:
        raise usage_error(f"resume: {exc}") from None
    finally:
        rows.close()
    return report


def resumed_feed(report: Path, settings: BaseSettings) -> tuple[str, bool] | None:
    """``(uri, overwrite)`` of the ``FEEDS`` entry that writes ``report``
    itself, if one does."""
    for uri, options in settings.getdict("FEEDS").items():
        path = local_feed_path(str(uri))
        if path is None or "%(" in str(path):
            continue
        try:
            same = path.exists() and os.path.samefile(path, report)
        except OSError:
            same = False
        if same:
            return str(uri), bool((options or {}).get("overwrite"))
    return None


def check_resumed_feed(report: Path, settings: BaseSettings) -> None:
    """Refuse an append (``-o``) to the report being resumed."""
    feed = resumed_feed(report, settings)
    if feed is not None and not feed[1]:
        raise usage_error(
            f"cannot append (-o) to {feed[0]!r}, the report being resumed: its rows would "
            f"be there twice; overwrite it (-O {feed[0]}): it is read before it is written"
        )


@dataclass
class ResumePlan:
    """What the old report says, as fingerprints: the URLs whose rows were
    kept, and the URLs to crawl again by reason (``not_attempted``,
    ``cancelled``, or the ``retry_errors`` condition they matched)."""

    kept: FingerprintSet = field(default_factory=FingerprintSet)
    recrawl: dict[str, FingerprintSet] = field(default_factory=dict)

    def recrawl_reason(self, fp: int) -> str | None:
        """Why the URL of fingerprint ``fp`` is crawled again, or ``None``
        if the old report had no row for it."""
        for reason, urls in self.recrawl.items():
            if fp in urls:
                return reason
        return None


class ResumeReader:
    """Read the old report once (:meth:`batches`, in a worker thread): build
    the :class:`ResumePlan` and hand over the kept rows, batch by batch.

    ``retry``: rows matching it are crawled again (``-a retry_errors``).
    ``skip``: this run's skip rules (a kept row must not match them).
    ``url_max_length``: as the list's lines are normalised.
    """

    def __init__(
        self,
        path: Path,
        *,
        retry: FailOn | None = None,
        skip: SkipRules | None = None,
        url_max_length: int = 0,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.path = path
        self.retry = retry
        self.skip = skip
        self.url_max_length = url_max_length
        self.batch_size = batch_size
        self.plan = ResumePlan()
        #: ``resume/<name>`` stats: rows read, kept, damaged, duplicate_rows,
        #: from_list (remade from the list), to_recrawl.
        self.counts: dict[str, int] = dict.fromkeys(
            ("rows", "kept", "damaged_rows", "duplicate_rows", "from_list", "to_recrawl"), 0
        )

    def _records(self) -> Iterator[tuple[Any, Any, Any] | None]:
        """``(url, error, raw)`` of each row as the file has it (``raw``: its
        cells or its dict, for :attr:`_typed`, which only kept rows pay
        for); ``None`` for a damaged row. In a CSV, the last row of a file
        that does not end with a line break was cut by a killed process,
        even where its cells look complete (a line number cut after its
        first digits): it is damaged too."""
        path = self.path
        if report_format(path) != "csv":
            self._typed = partial(coerce_row, from_csv=False)
            for raw in read_rows(path):
                yield None if raw is None else (raw.get("url"), raw.get("error"), raw)
            return
        cells_of = csv_cells(path)
        header = next(cells_of, None)
        if header is None:
            return
        at_url, at_error = header.index("url"), header.index("error")
        self._typed = cells_coercer(header)
        previous = next(cells_of, ())
        for cells in cells_of:  # one row behind: the last one may be torn
            yield None if previous is None else (previous[at_url], previous[at_error], previous)
            previous = cells
        if previous == ():
            return
        if previous is not None and not self._torn():
            yield previous[at_url], previous[at_error], previous
        else:
            yield None

    _typed: Callable[[Any], PageItem | None]

    def _torn(self) -> bool:
        """Whether the file (an uncompressed CSV) ends inside a line."""
        if self.path.suffix.lower() == ".gz":
            return False  # a cut gzip stream is an error of its own
        with self.path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            if not size:
                return False
            f.seek(size - 1)
            return f.read(1) not in (b"\n", b"\r")

    def _recrawl(self, reason: str, fp: int) -> None:
        urls = self.plan.recrawl.get(reason)
        if urls is None:
            urls = self.plan.recrawl[reason] = FingerprintSet()
        if urls.add(fp):
            self.counts["to_recrawl"] += 1

    def batches(self) -> Generator[list[PageItem], None, None]:
        """The kept rows, in the old report's order, ``batch_size`` at a time."""
        counts = self.counts
        kept = self.plan.kept
        retry, skip, max_length = self.retry, self.skip, self.url_max_length
        batch: list[PageItem] = []
        for record in self._records():
            if record is None or not record[0]:
                counts["damaged_rows"] += 1
                continue
            counts["rows"] += 1
            url, error, raw = record
            error_class = error.split(":", 1)[0] if error else ""
            if error_class in FROM_THE_LIST:
                counts["from_list"] += 1
                continue
            if error_class in ALWAYS_RECRAWLED:
                # The URL as written: only the stats (re-crawled or new) use it.
                self._recrawl(error_class, fingerprint(url))
                continue
            row = self._typed(raw)
            try:
                # As the list's line is normalised now (the same, unless the
                # report comes from another version or was edited).
                url = normalize_url(row["url"], max_length) if row is not None else ""
            except InvalidURL:
                url = ""
            if row is None or not url:
                counts["damaged_rows"] += 1
                continue
            fp = fingerprint(url)
            if fp in kept:
                counts["duplicate_rows"] += 1
                continue
            if skip is not None and skip.match(url) is not None:
                counts["from_list"] += 1
                continue
            reason = retry.match(row) if retry is not None else None
            if reason is not None:
                self._recrawl(reason, fp)
                continue
            kept.add(fp)
            row["url"] = url
            batch.append(row)
            if len(batch) >= self.batch_size:
                counts["kept"] += len(batch)
                yield batch
                batch = []
        if batch:
            counts["kept"] += len(batch)
            yield batch


def copy_aside(report: Path) -> Path:
    """Copy ``report`` beside itself (``.NAME.resume``), for a run that
    resumes from the file it overwrites; return the copy's path."""
    copy = report.with_name(f".{report.name}.resume")
    shutil.copyfile(report, copy)
    return copy
