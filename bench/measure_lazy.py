"""Measure how a huge URL list is read: time to the first fetch, peak RSS.

    python bench/measure_lazy.py --lines 1000000 --seconds 60

Writes a list of N distinct URLs of the demo site, starts the demo site,
runs ``scrapy crawl pages`` on it with a deadline, and reports:

- first_fetch_s: from starting the crawl process to the first page request
  the server saw (Scrapy's start-up included);
- peak_rss_mb: the crawl process's peak resident memory (VmHWM), sampled
  until it exits;
- pages, rows, elapsed: what the run got through.

Loopback only; every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.servers import demo_site  # noqa: E402


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="crawl deadline")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, demo_site() as site:
        urls = Path(tmp) / "urls.txt"
        with urls.open("w") as out:
            for i in range(args.lines):
                out.write(f"{site.url}/page/{i}\n")
        report = Path(tmp) / "report.csv"
        stats_file = Path(tmp) / "stats.json"
        start = time.time()
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "scrapy", "crawl", "pages",
                "-a", f"urls={urls}", "-a", f"timeout={args.seconds}",
                "-O", str(report),
                "-s", f"CONCURRENT_REQUESTS={args.concurrency}",
                "-s", "LOG_LEVEL=WARNING",
            ],
            cwd=REPO,
        )  # fmt: skip
        peak = 0
        first_fetch = None
        while proc.poll() is None:
            peak = max(peak, vm_hwm_kb(proc.pid))
            if first_fetch is None:
                seen = site.requests()
                pages = [r for r in seen if r["path"].startswith("/page/")]
                if pages:
                    first_fetch = min(r["time"] for r in pages) - start
            time.sleep(0.1)
        elapsed = time.time() - start
        rows = sum(1 for _ in report.open()) - 1 if report.exists() else 0
        result = {
            "lines": args.lines,
            "deadline_s": args.seconds,
            "first_fetch_s": round(first_fetch, 3) if first_fetch is not None else None,
            "peak_rss_mb": round(peak / 1024, 1),
            "rows": rows,
            "elapsed_s": round(elapsed, 1),
            "exit_code": proc.returncode,
        }
        print(json.dumps(result))
        stats_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
