"""``scrapy pages-diff``: what changed between two reports, with a CI exit code.

    scrapy pages-diff last-week.csv report.csv                  # changes on stdout
    scrapy pages-diff last-week.csv report.csv -o changes.html  # or .csv/.jsonl/.json

URLs are matched across the two reports (CSV, JSON or JSON lines, gzipped
too, in any order) and each URL whose outcome changed is listed once, with
its kind (``scraper_project.diff``: newly_failing, fixed, status_changed,
redirected_elsewhere, title_changed, added, removed, not_checked, checked).
The counts per kind go to stderr. Exit code: 0, or
:data:`~scraper_project.diff.EXIT_NEWLY_FAILING` (4) when a URL of a
``--fail-on`` kind was found (default ``newly_failing``); 2 for a usage or
input error (missing file, unknown format, not a report). Memory stays
bounded whatever the reports' sizes (an external sort; temporary files in
``TMPDIR``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from scraper_project.diff import (
    CHUNK_ROWS,
    EXIT_NEWLY_FAILING,
    KINDS,
    Change,
    ChangesWriter,
    ReportDiff,
    output_format,
)
from scraper_project.htmlreport import error_class, read_settings
from scraper_project.reportfile import ReportFormatError, atomic_output
from scraper_project.title import clean_text

if TYPE_CHECKING:
    import argparse

    from scraper_project.diff import Record


def _state(record: Record | None) -> str:
    if record is None:
        return "absent"
    if record[2]:
        return error_class(record[2])
    return "-" if record[1] is None else str(record[1])


def describe(change: Change) -> str:
    """One terminal-safe line for a change: kind, URL, what changed."""
    old, new = change.old, change.new
    if change.kind == "redirected_elsewhere" and old and new:
        detail = f"{old[3] or old[0]} -> {new[3] or new[0]}"
    elif change.kind == "title_changed" and old and new:
        detail = f"{old[4]!r} -> {new[4]!r}"
    else:
        detail = f"{_state(old)} -> {_state(new)}"
    return "  ".join(clean_text(part, 0) for part in (change.kind, change.url, detail))


def _fail_on(raw: str) -> frozenset[str]:
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    if kinds == {"none"}:
        return frozenset()
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise UsageError(
            f"--fail-on {raw!r}: unknown kind {', '.join(unknown) or '(empty)'}; "
            f"expected 'none' or a comma-separated list of {', '.join(KINDS)}",
            print_help=False,
        )
    return kinds


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "OLD NEW [-o CHANGES.csv|.jsonl|.json|.html] [--fail-on KINDS]"

    def short_desc(self) -> str:
        return "List the URLs whose outcome changed between two reports"

    def long_desc(self) -> str:
        return (
            "List the URLs whose outcome changed between two reports (CSV, JSON or "
            "JSON lines): newly_failing, fixed, status_changed, redirected_elsewhere, "
            "title_changed, added, removed, not_checked, checked. Counts per kind go "
            f"to stderr. Exit code {EXIT_NEWLY_FAILING} when a URL of a --fail-on kind "
            "(default newly_failing) was found, 2 for a usage or input error, else 0."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            help="write the changes there (.csv, .jsonl, .json, .html)",
        )
        parser.add_argument(
            "--fail-on",
            default="newly_failing",
            metavar="KINDS",
            help=f"exit {EXIT_NEWLY_FAILING} when a change of these kinds is found "
            "(comma-separated; 'none': never; default: %(default)s)",
        )
        parser.add_argument(
            "--chunk-rows",
            type=int,
            default=CHUNK_ROWS,
            metavar="N",
            help="rows sorted in memory at once (default: %(default)s; about 0.5 KB each)",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 2:
            raise UsageError("give two reports: scrapy pages-diff OLD NEW [-o CHANGES]")
        if opts.chunk_rows < 1:
            raise UsageError(f"--chunk-rows must be >= 1, got {opts.chunk_rows}", print_help=False)
        assert self.settings is not None
        old, new = Path(args[0]), Path(args[1])
        diff = ReportDiff(old, new, chunk_rows=opts.chunk_rows)
        try:
            fail_on = _fail_on(opts.fail_on)
            out = Path(opts.output) if opts.output else None
            fmt = output_format(out) if out is not None else ""
            max_rows = read_settings(self.settings)["max_rows"]
            diff.check()  # a missing or non-report file fails before any output
            if out is None:
                written = self._to_stdout(diff)
            else:
                with atomic_output(out) as f:
                    written = self._to_file(diff, f, fmt, max_rows)
        except (ReportFormatError, UsageError) as exc:
            sys.stderr.write(f"scrapy pages-diff: error: {exc}\n")
            self.exitcode = 2
            return
        self._summary(diff, out, written)
        failing = sum(diff.counts[k] for k in fail_on)
        if failing:
            sys.stderr.write(
                f"{failing:,} URLs {'/'.join(sorted(fail_on))}: exit code {EXIT_NEWLY_FAILING}\n"
            )
            self.exitcode = EXIT_NEWLY_FAILING

    @staticmethod
    def _to_stdout(diff: ReportDiff) -> int:
        written = 0
        out = sys.stdout
        for change in diff.changes():
            out.write(describe(change) + "\n")
            written += 1
        out.flush()
        return written

    @staticmethod
    def _to_file(diff: ReportDiff, f: IO[bytes], fmt: str, max_rows: int) -> int:
        meta = {
            "old_source": diff.old.name,
            "new_source": diff.new.name,
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        writer = ChangesWriter(f, fmt, max_rows=max_rows, meta=meta)
        for change in diff.changes():
            writer.add(change)
        writer.finish(
            {
                "kinds": {k: diff.counts[k] for k in KINDS},
                "unchanged": diff.counts["unchanged"],
                "old_rows": diff.old_counts.urls,
                "new_rows": diff.new_counts.urls,
                "old_damaged": diff.old_counts.damaged,
                "new_damaged": diff.new_counts.damaged,
                "old_duplicates": diff.old_counts.duplicates,
                "new_duplicates": diff.new_counts.duplicates,
            }
        )
        return writer.written

    @staticmethod
    def _summary(diff: ReportDiff, out: Path | None, written: int) -> None:
        lines = []
        for name, side in ((diff.old, diff.old_counts), (diff.new, diff.new_counts)):
            extra = ""
            if side.damaged:
                extra += f", {side.damaged:,} damaged rows skipped"
            if side.duplicates:
                extra += f", {side.duplicates:,} repeated URLs (first row compared)"
            lines.append(f"{name}: {side.urls:,} URLs{extra}")
        for kind in (*KINDS, "unchanged"):
            lines.append(f"  {kind:<22}{diff.counts[kind]:>12,}")
        if out is not None:
            lines.append(f"{written:,} changes written to {out}")
        sys.stderr.write("\n".join(lines) + "\n")
