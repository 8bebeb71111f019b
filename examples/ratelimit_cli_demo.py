"""Demo: process the lines of a file at a limited rate, printing timestamps.

Each line stands for one API call; the calls are paced by a token bucket::

    python examples/ratelimit_cli_demo.py requests.txt --rate 5 --burst 2
    seq 10 | python examples/ratelimit_cli_demo.py - --rate 2 --burst 3

prints, for each line, the time it was let through (seconds since start)::

      0.000s  1
      0.000s  2
      0.000s  3
      0.500s  4
      ...

``--simulate`` uses a fake clock to print the schedule at once, without
waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from scraper_project.ratelimit import TokenBucket
from scraper_project.ratelimit.testing import FakeClock


async def process(
    lines: Iterable[str],
    bucket: TokenBucket,
    out: TextIO,
) -> int:
    """Let each line through the bucket and print it with its time; count them."""
    start = bucket.clock()
    done = 0
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        await bucket.wait()
        print(f"{bucket.clock() - start:7.3f}s  {line}", file=out)  # the "API call"
        done += 1
    return done


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", help="file of requests, one per line ('-': stdin)")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    parser.add_argument("--burst", type=int, default=1, help="calls at once")
    parser.add_argument("--simulate", action="store_true", help="fake clock: no real waiting")
    args = parser.parse_args(argv)

    if args.simulate:
        fake = FakeClock()
        bucket = TokenBucket(args.rate, args.burst, clock=fake, sleep=fake.sleep)
    else:
        bucket = TokenBucket(args.rate, args.burst, clock=time.monotonic)

    if args.file == "-":
        lines: Iterable[str] = sys.stdin.readlines()
    else:
        with open(args.file, encoding="utf-8") as f:
            lines = f.readlines()
    done = asyncio.run(process(lines, bucket, out))
    print(f"{done} calls", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
