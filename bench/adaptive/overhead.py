"""What adaptive mode costs against a server that enforces nothing.

    python bench/adaptive/overhead.py [--pages 5000] [--rounds 6] [--json out.json]

The throughput scenario of bench/speed/run.py (same pages, same nginx or
fallback server, same measurement of each process: wall time, CPU, peak
RSS, and a check that every row is a 200 with a title), with two variants of
the project crawl alternated in one run: ``RATELIMIT_ADAPTIVE=True`` and
``False``, the rate unset (the default a user gets). Reports pages/s (whole
process and server window) and CPU ms per page for each, and the median of
the per-round ratios (adaptive / plain): the cost is ``1 - ratio``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "speed"))

import run as speed  # noqa: E402  (bench/speed/run.py, beside this folder)

VARIANTS = {
    "adaptive": ("-s", "RATELIMIT_ADAPTIVE=True"),
    "plain": ("-s", "RATELIMIT_ADAPTIVE=False"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    results: dict[str, Any] = {"env": speed.describe_env(), "args": vars(args)}
    runs: dict[str, list[speed.Run]] = {name: [] for name in VARIANTS}
    with speed.workdir(False) as tmp:
        site = tmp / "site"
        speed.generate_site(site, args.pages, args.seed)
        nginx = speed.find_nginx()
        server: speed.Server = (
            speed.NginxServer.start(nginx, site, tmp / "nginx")
            if nginx
            else speed.PythonServer.start(site)
        )
        try:
            urls_file = tmp / "urls.txt"
            urls = speed.write_urls(urls_file, server.base, args.pages)
            print(f"server: {server.kind} on {server.base}; {args.pages} pages", flush=True)
            names = list(VARIANTS)
            common: dict[str, Any] = {
                "urls_file": urls_file,
                "urls": urls,
                "concurrency": args.concurrency,
                "work": tmp,
                "timeout": args.timeout,
            }
            for rnd in range(-args.warmup, args.rounds):
                for name in speed.rotation(rnd, tuple(names)):
                    run, _ = speed.run_tool("project", rnd, server, extra=VARIANTS[name], **common)
                    print(
                        f"  {'warm-up' if rnd < 0 else f'round {rnd + 1}'} {name:8} "
                        f"wall {run.wall_s:6.2f}s cpu {run.cpu_s:6.2f}s "
                        f"{args.pages / run.wall_s:6.0f} pages/s "
                        f"window {run.server_window_s or 0:5.2f}s "
                        f"load {run.extra['loadavg_1m_before']:.2f}",
                        flush=True,
                    )
                    if rnd >= 0:
                        runs[name].append(run)
        finally:
            server.stop()
    table = {}
    for name, measured in runs.items():
        table[name] = {
            "pages_per_s": statistics.median(args.pages / r.wall_s for r in measured),
            "window_pages_per_s": statistics.median(
                args.pages / r.server_window_s for r in measured if r.server_window_s
            ),
            "cpu_ms_per_page": statistics.median(1000 * r.cpu_s / args.pages for r in measured),
        }
    ratios = [b.wall_s / a.wall_s for a, b in zip(runs["adaptive"], runs["plain"], strict=True)]
    window_ratios = [
        (b.server_window_s or 0) / a.server_window_s
        for a, b in zip(runs["adaptive"], runs["plain"], strict=True)
        if a.server_window_s
    ]
    cpu_ratios = [a.cpu_s / b.cpu_s for a, b in zip(runs["adaptive"], runs["plain"], strict=True)]
    summary = {
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratio_range": [min(ratios), max(ratios)],
        "window_ratio": statistics.median(window_ratios) if window_ratios else None,
        "cpu_ratio": statistics.median(cpu_ratios),
    }
    print()
    print("| variant | pages/s (process) | pages/s (server window) | CPU ms/page |")
    print("|---|---|---|---|")
    for name, row in table.items():
        print(
            f"| {name} | {row['pages_per_s']:.0f} | {row['window_pages_per_s']:.0f} "
            f"| {row['cpu_ms_per_page']:.3f} |"
        )
    print(
        f"\nadaptive / plain, median of per-round ratios: throughput "
        f"{summary['throughput_ratio']:.3f} ({min(ratios):.3f}-{max(ratios):.3f}), "
        f"server window {summary['window_ratio'] or 0:.3f}, CPU {summary['cpu_ratio']:.3f}"
    )
    results.update(
        table=table, summary=summary, runs={k: [vars(r) for r in v] for k, v in runs.items()}
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
