"""``scrapy pages-report``: the HTML report of a finished report.

    scrapy pages-report report.csv -o report.html
    scrapy pages-report merged.jsonl -o report.html -s PAGES_HTML_MAX_ROWS=0

Reads a CSV, JSON or JSON-lines report of this project (gzipped too; the
merged report of ``scrapy cluster merge`` included) in one pass and writes
the same page as ``scrapy crawl pages -O report.html``. Damaged rows (cut
short by a killed crawl) are skipped and counted. The output appears only
once complete: a failed run leaves an existing file untouched. A missing,
unknown or non-report input is a one-line error, exit code 2.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from scraper_project.htmlreport import export_rows, read_settings
from scraper_project.reportfile import ReportFormatError, atomic_output, read_report

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "REPORT -o OUT.html"

    def short_desc(self) -> str:
        return "Write the HTML report of a CSV, JSON or JSON-lines report"

    def long_desc(self) -> str:
        return (
            "Write the HTML report (one self-contained page: totals, charts, latency, "
            "hosts, a filterable table of the rows) of a finished CSV, JSON or "
            "JSON-lines report, e.g. scrapy pages-report report.csv -o report.html. "
            "PAGES_HTML_MAX_ROWS and PAGES_HTML_MAX_HOSTS (-s) apply."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", metavar="FILE", help="the HTML file to write")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give one report to read: scrapy pages-report REPORT -o OUT.html")
        if not opts.output:
            raise UsageError("give the HTML file to write: -o OUT.html")
        assert self.settings is not None
        source, out = Path(args[0]), Path(opts.output)
        try:
            if out.suffix.lower() not in {".html", ".htm"}:
                raise ReportFormatError(f"{out}: the output must be an .html file")
            read_settings(self.settings)  # a bad value stops before any work
            rows = read_report(source)
            # A missing or non-report file fails here, before any output.
            first = list(itertools.islice(rows, 1))
            with atomic_output(out) as f:
                exporter = export_rows(
                    f, itertools.chain(first, rows), self.settings, source=source.name
                )
        except UsageError as exc:
            sys.stderr.write(f"scrapy pages-report: error: {exc}\n")
            self.exitcode = 2
            return
        summary = exporter.summary
        damaged = f", {exporter.damaged:,} damaged rows skipped" if exporter.damaged else ""
        sys.stderr.write(
            f"{out}: {summary.rows:,} rows ({summary.outcomes['error']:,} errors, "
            f"{summary.outcomes['4xx'] + summary.outcomes['5xx']:,} 4xx/5xx){damaged}\n"
        )
