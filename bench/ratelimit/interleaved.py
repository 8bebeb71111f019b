"""Cross-check of the uncontended numbers, robust to a busy machine.

pytest-benchmark runs one benchmark after another, so load from other
processes can favour whichever ran at a quiet moment. This script times the
same single calls in short interleaved slices (CPU time of this thread) and
prints the minimum and median ns/op of each.

Usage: ``python bench/ratelimit/interleaved.py [--slices 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

import aiolimiter

from scraper_project.ratelimit import INF, TokenBucket

SETTINGS = [(10.0, 1), (1000.0, 100), (1e6, 1000), (INF, 1)]
NUMBER = 20_000


def label(rate: float, burst: int) -> str:
    return f"{'inf' if rate == INF else f'{rate:g}'}/{burst}"


async def measure(slices: int) -> dict[str, list[float]]:
    # aiolimiter needs a running loop, hence the coroutine.
    contenders: dict[str, Callable[[], Any]] = {}
    for rate, burst in SETTINGS:
        contenders[f"ours allow {label(rate, burst)}"] = TokenBucket(rate, burst).allow
        if rate != INF:
            limiter = aiolimiter.AsyncLimiter(burst, burst / rate)
            contenders[f"aiolimiter has_capacity {label(rate, burst)}"] = limiter.has_capacity
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(slices):
        for name, fn in contenders.items():
            timer = timeit.Timer(fn, timer=time.thread_time)
            samples[name].append(timer.timeit(NUMBER) / NUMBER * 1e9)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=30)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.slices))
    print(f"{'ns/op':36}{'min':>8}{'median':>8}")
    for name, values in samples.items():
        print(f"{name:36}{min(values):8.0f}{statistics.median(values):8.0f}")


if __name__ == "__main__":
    main()
