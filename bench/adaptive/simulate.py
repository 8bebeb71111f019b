"""Simulate the adaptive law against model servers, with an injected clock.

    python bench/adaptive/simulate.py --limit 5 --server gcra --burst 2 --urls 600
    python bench/adaptive/simulate.py --sweep      # every case of the acceptance

A discrete-event model of one crawl of one host: the client paces requests
with the project's TokenBucket driven by AdaptiveRate (the code under test,
not a copy), sends each at its token time plus a random dispatch delay, and
the server (GCRA with a burst, or a fixed-window counter) answers at once:
200, or 429 with Retry-After (whole seconds), which pauses the host and
retries the URL. What it prints: the share of 429s and the request rate over
the last half of the run (server arrival times), as the acceptance measures
them. No sleeping: the whole run is simulated in well under a second.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any

from scraper_project.ratelimit import INF, TokenBucket
from scraper_project.ratelimit._adaptive import AdaptiveConfig, AdaptiveRate


class GCRA:
    def __init__(self, rate: float, burst: int) -> None:
        self.t = 1.0 / rate
        self.tau = (burst - 1) * self.t
        self.tat = 0.0

    def __call__(self, now: float) -> float | None:
        """None: accepted; else seconds until a request would be."""
        if now < self.tat - self.tau - 1e-12:
            return self.tat - self.tau - now
        self.tat = max(self.tat, now) + self.t
        return None


class Window:
    def __init__(self, rate: float, length: float = 1.0) -> None:
        self.quota = round(rate * length)
        self.length = length
        self.start = 0.0
        self.count = 0

    def __call__(self, now: float) -> float | None:
        start = math.floor(now / self.length) * self.length
        if start != self.start:
            self.start, self.count = start, 0
        if self.count >= self.quota:
            return start + self.length - now
        self.count += 1
        return None


@dataclass
class Result:
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, status)
    rates: list[tuple[float, float]] = field(default_factory=list)  # (time, client rate)

    def share_429(self) -> float:
        return sum(1 for _, s in self.arrivals if s == 429) / len(self.arrivals)

    def last_half_rate(self, status: int | None = None) -> float:
        t0, t1 = self.arrivals[0][0], self.arrivals[-1][0]
        mid = (t0 + t1) / 2
        n = sum(1 for t, s in self.arrivals if t >= mid and (status is None or s == status))
        return n / (t1 - mid)


def simulate(  # noqa: PLR0917 (a model's knobs)
    limit: float,
    server: str,
    burst: int,
    urls: int,
    jitter: float,
    seed: int,
    config: AdaptiveConfig,
    horizon: float = 0.25,
    latency: float = 0.002,
) -> Result:
    rnd = random.Random(seed)
    limiter = GCRA(limit, burst) if server == "gcra" else Window(limit)
    now = 0.0
    law = AdaptiveRate(config, INF, now)
    clock = lambda: now  # noqa: E731
    bucket = TokenBucket(INF, 1, clock=clock)
    result = Result()
    pending = urls  # URLs not yet sent (retries go back here)
    done = 0
    inflight = 0
    concurrency = 8
    events: list[tuple[float, int, str, tuple[Any, ...]]] = []
    seq = 0

    def push(t: float, kind: str, data: tuple[Any, ...]) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    push(0.0, "pull", (0, 0.0, False))
    while done < urls and events:
        t, _, kind, data = heapq.heappop(events)
        now = max(now, t)
        if kind == "pull":
            # The engine pulls while it has room: reserve within the horizon.
            while pending and inflight < concurrency:
                r = bucket.reserve_at(now, max_wait=horizon)
                if not r.ok:
                    push(now + r.delay - horizon, "pull", data)
                    break
                pending -= 1
                inflight += 1
                send = r.time_to_act + rnd.expovariate(1 / jitter) if jitter else r.time_to_act
                push(send, "send", (law.epoch, law.rate, r.delay > 0))
            continue
        if kind == "send":
            refused = limiter(now)
            result.arrivals.append((now, 200 if refused is None else 429))
            if refused is None:
                push(now + latency, "answer", data)
            else:
                retry_after = max(1, math.ceil(refused - 1e-9))
                push(now + latency, "refused", (data[0], data[1], data[2], retry_after))
            continue
        inflight -= 1
        epoch, sent_rate, bound = data[:3]
        if kind == "answer":
            done += 1
            law.clean(now, 1, 1 if bound else 0)
        else:
            law.throttle(now, epoch, sent_rate)
            bucket.block_until_at(now, now + data[3])
            law.pause(now, now + data[3])
            pending += 1
        if bucket.rate != law.rate:
            bucket.set_rate_at(now, law.rate)
        result.rates.append((now, law.rate))
        push(now, "pull", (0, 0.0, False))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=5)
    parser.add_argument("--server", choices=["gcra", "window"], default="gcra")
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--urls", type=int, default=600)
    parser.add_argument("--jitter", type=float, default=0.003, help="mean dispatch delay, s")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    config = AdaptiveConfig()
    cases = (
        [
            (n, s, b)
            for n in (5, 50)
            for s, b in (("gcra", 1), ("gcra", max(2, math.ceil(n / 10) + 1)), ("window", 1))
        ]
        if args.sweep
        else [(args.limit, args.server, args.burst)]
    )
    for limit, server, burst in cases:
        for seed in range(args.seeds):
            res = simulate(limit, server, burst, args.urls, args.jitter, seed, config)
            half = res.last_half_rate()
            print(
                f"N={limit:5g} {server:6} burst={burst:2d} seed={seed}: "
                f"429 share {res.share_429():6.2%}  last-half rate {half:6.2f} "
                f"({half / limit - 1:+6.1%})  duration {res.arrivals[-1][0]:6.1f}s"
            )


if __name__ == "__main__":
    main()


def trace(res: Result, step: float = 1.0) -> None:
    """Per second: requests, 429s, and the client's rate at its end."""
    end = res.arrivals[-1][0]
    i = j = 0
    t = 0.0
    rate = INF
    while t < end:
        n = n429 = 0
        while i < len(res.arrivals) and res.arrivals[i][0] < t + step:
            n += 1
            n429 += res.arrivals[i][1] == 429
            i += 1
        while j < len(res.rates) and res.rates[j][0] < t + step:
            rate = res.rates[j][1]
            j += 1
        print(f"  t={t:6.1f}  requests {n:4d}  429 {n429:3d}  rate {rate:8.2f}")
        t += step
