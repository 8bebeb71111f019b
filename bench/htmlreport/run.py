"""The HTML report on 1,000,000 rows: memory, time, size, and a browser.

    python bench/htmlreport/run.py [--rows 1000000] [--crawl-lines 1000000 --crawl-seconds 20]
                                   [--browser] [--uncapped] [--json out.json]

1. Per-row cost of the exporter, in process, beside the CSV exporter
   (``-O report.csv``, the reference): 200,000 typed rows each, best of 3.
2. ``scrapy pages-report report.csv -o report.html`` on a generated
   ``--rows`` report (bench/diff/gen.py): wall and CPU time, peak RSS
   (VmHWM), file sizes; beside it ``scrapy pages-report`` is compared with
   nothing but Python's start-up and Scrapy's import (``scrapy version``).
3. ``--crawl-lines``: a real ``scrapy crawl pages`` of that many lines of
   the demo site with a deadline, once with ``-O report.csv`` and once with
   ``-O report.html``: the rows not fetched by the deadline are written as
   ``not_attempted`` through the same feed exporters, so the report holds a
   row for every line; peak RSS of each (VmHWM).
4. ``--browser``: headless Chromium opens the 1,000,000-row page from disk
   (Playwright, the system ``chromium``): seconds until drawn, JS heap;
   ``--uncapped`` also builds and opens the page with every row kept
   (``PAGES_HTML_MAX_ROWS=0``).

Loopback only; each process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "diff"))

from gen import generate_in_child  # noqa: E402
from measure import measure  # noqa: E402

from scraper_project.exporters import SafeCsvItemExporter  # noqa: E402
from scraper_project.htmlreport import HtmlItemExporter  # noqa: E402
from scraper_project.items import FIELDS  # noqa: E402
from scraper_project.reportfile import read_report  # noqa: E402


def run(command: list[str], timeout: float = 3600) -> dict[str, Any]:
    """``measure`` (bench/diff/measure.py), failing on a non-zero exit."""
    result = measure(command, timeout)
    if result["code"] != 0:
        raise RuntimeError(f"exit {result['code']}: {' '.join(command)}\n{result['stderr']}")
    return {k: result[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb")}


def per_row_cost(rows: list[dict[str, Any]]) -> dict[str, float]:
    """µs per row of export_item, CSV exporter vs HTML exporter (best of 3)."""
    result = {}
    for name, cls in (("csv", SafeCsvItemExporter), ("html", HtmlItemExporter)):
        best = float("inf")
        for _ in range(3):
            exporter = cls(io.BytesIO(), fields_to_export=list(FIELDS))
            exporter.start_exporting()
            start = time.perf_counter()
            for row in rows:
                exporter.export_item(row)
            exporter.finish_exporting()
            best = min(best, time.perf_counter() - start)
        result[f"{name}_us_per_row"] = round(best / len(rows) * 1e6, 2)
    return result


def crawl(lines: int, seconds: float, report: Path) -> dict[str, Any]:
    from tests.support.servers import demo_site

    with demo_site() as site:
        urls = report.parent / "urls.txt"
        if not urls.exists():
            with urls.open("w") as out:
                for i in range(lines):
                    out.write(f"{site.url}/page/{i}\n")
        else:  # same list, this site's port
            text = urls.read_text()
            old = text.split("/page/", 1)[0]
            urls.write_text(text.replace(old, site.url))
        figures = run(
            [sys.executable, "-m", "scrapy", "crawl", "pages", "-a", f"urls={urls}",
             "-a", f"timeout={seconds}", "-O", str(report), "-s", "LOG_LEVEL=WARNING"],
        )  # fmt: skip
    figures["mb"] = round(report.stat().st_size / 1e6, 1)
    figures["rows"] = report_rows(report)
    return figures


def report_rows(report: Path) -> int:
    """Rows in a CSV report, or the row count in an HTML report's summary."""
    if report.suffix == ".csv":
        with report.open("rb") as f:
            return sum(1 for _ in f) - 1
    with report.open("rb") as f:
        f.seek(max(0, report.stat().st_size - 1_000_000))
        tail = f.read().decode("utf-8", "replace")
    summary = tail.rsplit('id="report-summary">', 1)[1].split("</script>", 1)[0]
    return int(json.loads(summary)["rows"])


def open_in_browser(page: Path) -> dict[str, Any]:
    from tests.support.browser import Browser

    browser = Browser()
    try:
        start = time.perf_counter()
        tab = browser.open(page, viewport=(1280, 900))
        drawn = time.perf_counter() - start
        heap = tab.eval("performance.memory ? performance.memory.usedJSHeapSize : null")
        start = time.perf_counter()
        tab.fill("#f-text", "article-99")
        filtered = time.perf_counter() - start - 0.4  # fill() waits 0.4 s for the debounce
        shown = tab.count()
        tab.close()
    finally:
        browser.close()
    return {
        "seconds_to_drawn": round(drawn, 1),
        "js_heap_mb": round(heap / 1e6) if heap else None,
        "text_filter_seconds": round(filtered, 2),
        "rows_matching_filter": shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--crawl-lines", type=int, default=0)
    parser.add_argument("--crawl-seconds", type=float, default=20)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--uncapped", action="store_true")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    result: dict[str, Any] = {"rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="htmlbench-") as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = work / "old.csv"
        if not source.exists():
            generate_in_child(args.rows, work)
        sample = []
        for row in read_report(source):
            if row is not None:
                sample.append(dict(row))
            if len(sample) >= 200_000:
                break
        random.Random(1).shuffle(sample)
        result["exporter"] = per_row_cost(sample)
        del sample
        print(json.dumps(result["exporter"]), file=sys.stderr)

        page = work / "report.html"
        result["scrapy_version"] = run([sys.executable, "-m", "scrapy", "version"])
        result["pages_report"] = run(
            [sys.executable, "-m", "scrapy", "pages-report", str(source), "-o", str(page)]
        )
        result["pages_report"]["csv_mb"] = round(source.stat().st_size / 1e6)
        result["pages_report"]["html_mb"] = round(page.stat().st_size / 1e6, 1)
        print(json.dumps(result["pages_report"]), file=sys.stderr)
        if args.uncapped:
            full = work / "report-all.html"
            result["pages_report_uncapped"] = run(
                [sys.executable, "-m", "scrapy", "pages-report", str(source), "-o", str(full),
                 "-s", "PAGES_HTML_MAX_ROWS=0"],
            )  # fmt: skip
            result["pages_report_uncapped"]["html_mb"] = round(full.stat().st_size / 1e6, 1)
        if args.browser:
            result["browser"] = open_in_browser(page)
            print(json.dumps(result["browser"]), file=sys.stderr)
            if args.uncapped:
                result["browser_uncapped"] = open_in_browser(work / "report-all.html")
        if args.crawl_lines:
            crawl_dir = work / "crawl"
            crawl_dir.mkdir(exist_ok=True)
            for fmt in ("csv", "html"):
                figures = crawl(args.crawl_lines, args.crawl_seconds, crawl_dir / f"report.{fmt}")
                result[f"crawl_{fmt}"] = figures
                print(fmt, json.dumps(figures), file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
