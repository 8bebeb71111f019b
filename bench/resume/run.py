"""Resume on 1,000,000 lines: the cost of reading the old report, memory.

    python bench/resume/run.py [--lines 1000000] [--seconds 20] [--json out.json]

Against the demo site (loopback), each ``scrapy crawl`` measured by
bench/diff/measure.py (wall and CPU seconds, peak RSS from VmHWM):

1. ``plain``: a deadline-cut crawl of the list, ``-O report.csv``: the
   reference (what a time-boxed run costs without resume). Its report holds
   a row for every line, most of them ``not_attempted``.
2. ``resume``: the next run, ``-a resume=report.csv -O report.csv`` (into
   itself), same deadline: the finished rows are kept, the not_attempted
   ones crawled.
3. ``all kept``: a report of the whole list with every row finished
   (generated in a child process), resumed: every row kept, nothing fetched,
   the list read to its end. The cost of streaming 1,000,000 kept rows.

``resume/seconds`` (a stat) is the time spent reading the old report and
writing its kept rows. Each process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "diff"))

from measure import measure  # noqa: E402

GENERATE = """
import csv, sys
from scraper_project.items import FIELDS
base, lines, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(FIELDS)
    for i in range(lines):
        url = f"{base}/page/{i}"
        w.writerow([url, url, 200, 2048 + i % 8192, f"Page {i}", "text/html; charset=utf-8",
                    "", 1, 2 + i % 50, 0, i + 1])
"""


def crawl(args: list[str], stats: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "scrapy", "crawl", "pages", *args,
        "-s", "LOG_LEVEL=WARNING", "-s", "PAGES_LOG_DUPLICATES=False",
        "-s", f"PAGES_STATS_FILE={stats}",
    ]  # fmt: skip
    result = measure(command, 3600)
    if result["code"] not in (0, 3):
        raise RuntimeError(f"exit {result['code']}: {' '.join(command)}\n{result['stderr']}")
    data = json.loads(stats.read_text())
    figures = {k: result[k] for k in ("code", "seconds", "cpu_seconds", "peak_rss_mb")}
    figures["rows"] = data.get("report/rows")
    figures["fetched"] = data.get("report/rows", 0) - data.get("report/error/not_attempted", 0)
    for key in ("resume/kept", "resume/recrawled", "resume/seconds"):
        if key in data:
            figures[key] = data[key]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from tests.support.servers import demo_site

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_dir, demo_site() as site:
        tmp = Path(tmp_dir)
        urls = tmp / "urls.txt"
        with urls.open("w") as out:
            for i in range(args.lines):
                out.write(f"{site.url}/page/{i}\n")
        report = tmp / "report.csv"
        deadline = ["-a", f"timeout={args.seconds}"]
        results["plain"] = crawl(
            ["-a", f"urls={urls}", "-O", str(report), *deadline], tmp / "s1.json"
        )
        results["resume"] = crawl(
            ["-a", f"urls={urls}", "-a", f"resume={report}", "-O", str(report), *deadline],
            tmp / "s2.json",
        )
        kept = tmp / "kept.csv"
        subprocess.run(
            [sys.executable, "-c", GENERATE, site.url, str(args.lines), str(kept)],
            cwd=REPO,
            check=True,
        )
        results["all kept"] = crawl(
            ["-a", f"urls={urls}", "-a", f"resume={kept}", "-O", str(tmp / "out.csv")],
            tmp / "s3.json",
        )
    for name, figures in results.items():
        print(f"{name:>9}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
