"""Convergence curves of the adaptive rate, measured at the server.

    python bench/adaptive/curves.py --limit 5 --urls 600 --out notes/adaptive-5
    python bench/adaptive/curves.py --limit 50 --urls 600 --out notes/adaptive-50

Starts one demo site per limiter kind (``python -m scraper_project.demo
serve --rate-limit N``: a token bucket with a burst of a fifth of a second's
worth, a fixed 1 s window, each with bare 429s and with the RateLimit
fields; ``--kinds`` picks), crawls ``--urls`` pages of each with
``scrapy crawl pages`` (rate unset, concurrency 16, retries on) from the
repository, one crawl per kind, and reads each site's request log. Writes
``OUT.csv`` (kind, second, requests, 429s) and ``OUT.svg`` (requests per
second against time, one line per kind, the limit dashed), and prints per
kind: the 429 share and the rate over the last half of the run, as the
acceptance test measures them. Every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KINDS = {
    "strict": ["--rate-burst", "{burst}", "--no-rate-headers"],
    "window": ["--rate-algorithm", "window", "--no-rate-headers"],
    "strict+fields": ["--rate-burst", "{burst}"],
    "window+fields": ["--rate-algorithm", "window"],
}
COLOURS = {
    "strict": "#1f77b4",
    "window": "#d62728",
    "strict+fields": "#2ca02c",
    "window+fields": "#9467bd",
}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_site(limit: float, kind: str) -> tuple[subprocess.Popen[str], str]:
    burst = str(max(2, math.ceil(limit / 5)))
    args = [a.format(burst=burst) for a in KINDS[kind]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scraper_project.demo", "serve", "--rate-limit", str(limit), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"demo site did not start: {url!r}")
    return proc, url


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def crawl(url: str, urls: int, work: Path, timeout: float) -> list[dict[str, Any]]:
    port = url.rsplit(":", 1)[1]
    listing = work / f"{port}.txt"
    listing.write_text("".join(f"http://site.test:{port}/page/{i}\n" for i in range(urls)))
    settings = {
        "ROBOTSTXT_OBEY": False,
        "CONCURRENT_REQUESTS": 16,
        "RESOLVE_HOSTS": json.dumps({"site.test": "127.0.0.1"}),
        "RESOLVE_HOSTS_ONLY": True,
        "LOG_LEVEL": "INFO",
        "RATELIMIT_ADAPTIVE_LOG": True,
    }
    args = [f"{k}={v}" for k, v in settings.items()]
    command = [sys.executable, "-m", "scrapy", "crawl", "pages", "-a", f"urls={listing}"]
    command += ["-O", str(work / f"{port}.csv")]
    for arg in args:
        command += ["-s", arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "SCRAPER_"))}
    with (work / f"{port}.log").open("wb") as log:
        subprocess.run(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=env,
            check=True,
        )
    with _OPENER.open(f"{url}/__requests?since=0", timeout=30) as response:
        records: list[dict[str, Any]] = json.load(response)
    return [r for r in records if r["path"].startswith("/page/")]


def figures(records: list[dict[str, Any]], limit: float) -> dict[str, float]:
    times = sorted(r["monotonic"] for r in records)
    refused = sum(1 for r in records if r["status"] == 429)
    start, end = times[0], times[-1]
    middle = (start + end) / 2
    late = [t for t in times if t >= middle]
    rate = (len(late) - 1) / (end - middle)
    return {
        "requests": len(times),
        "seconds": end - start,
        "share_429": refused / len(times),
        "last_half_rate": rate,
        "error": rate / limit - 1,
    }


def per_second(records: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    start = min(r["monotonic"] for r in records)
    total = Counter(int(r["monotonic"] - start) for r in records)
    refused = Counter(int(r["monotonic"] - start) for r in records if r["status"] == 429)
    return [(s, total[s], refused[s]) for s in range(max(total) + 1)]


def svg(series: dict[str, list[tuple[int, int, int]]], limit: float, title: str) -> str:
    width, height, pad = 720, 360, 48
    seconds = max(len(points) for points in series.values())
    top = max(max(n for _, n, _ in points) for points in series.values())
    top = max(top, limit * 1.5)

    def x(s: float) -> float:
        return pad + (width - 2 * pad) * s / max(seconds - 1, 1)

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * v / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="20">{title}</text>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{pad}" y2="{pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{y(limit):.1f}" x2="{width - pad}" y2="{y(limit):.1f}" '
        'stroke="grey" stroke-dasharray="6,4"/>',
        f'<text x="{width - pad + 4}" y="{y(limit) + 4:.1f}">N</text>',
        f'<text x="{width / 2 - 40}" y="{height - 12}">seconds</text>',
        f'<text x="6" y="{pad - 8}">requests/s</text>',
    ]
    for tick in range(0, seconds, max(1, seconds // 10)):
        parts.append(f'<text x="{x(tick) - 6:.1f}" y="{y(0) + 16:.1f}">{tick}</text>')
    for value in (0, limit, round(top)):
        parts.append(f'<text x="{pad - 30}" y="{y(value) + 4:.1f}">{value:g}</text>')
    for i, (kind, points) in enumerate(series.items()):
        line = " ".join(f"{x(s):.1f},{y(n):.1f}" for s, n, _ in points)
        colour = COLOURS[kind]
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}"/>')
        for s, _, refused in points:
            if refused:
                parts.append(
                    f'<circle cx="{x(s):.1f}" cy="{y(refused):.1f}" r="2" fill="{colour}"/>'
                )
        parts.append(f'<text x="{pad + 10 + 150 * i}" y="38" fill="{colour}">{kind}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=5)
    parser.add_argument("--urls", type=int, default=600)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", required=True, help="path prefix of the .csv and .svg")
    args = parser.parse_args()
    series: dict[str, list[tuple[int, int, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-adaptive-") as tmp:
        for kind in args.kinds.split(","):
            proc, url = start_site(args.limit, kind)
            try:
                load = os.getloadavg()[0]
                started = time.monotonic()
                records = crawl(url, args.urls, Path(tmp), args.timeout)
            finally:
                stop(proc)
            found = figures(records, args.limit)
            print(
                f"{kind:14} N={args.limit:g}: {found['requests']} requests in "
                f"{found['seconds']:.1f} s (crawl {time.monotonic() - started:.1f} s), "
                f"429 share {found['share_429']:.1%}, last-half rate "
                f"{found['last_half_rate']:.2f}/s ({found['error']:+.1%}); load {load:.1f}",
                flush=True,
            )
            series[kind] = per_second(records)
    out = Path(args.out)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "second", "requests", "429"])
        for kind, points in series.items():
            writer.writerows((kind, *p) for p in points)
    title = f"Requests per second at the server, limit N = {args.limit:g}/s (dots: 429s)"
    out.with_suffix(".svg").write_text(svg(series, args.limit, title))
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.svg')}")


if __name__ == "__main__":
    main()
