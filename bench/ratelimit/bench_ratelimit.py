"""Cost of one non-blocking rate-limit check: ours against aiolimiter,
pyrate-limiter and limits, uncontended and with 4 threads contending.

Each library is asked the same question, "may I make a request now?", with the
same sustained rate wherever its model allows (the competitors' notions of burst
differ: see ``report.py``). The real clock is used throughout, so at low rates
most calls are refusals and at high rates most are grants; both paths count.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiolimiter
import limits
import pyrate_limiter as pyrate
import pytest
from limits import storage, strategies

from scraper_project.ratelimit import INF, TokenBucket

SETTINGS = [(10.0, 1), (1000.0, 100), (1e6, 1000), (INF, 1)]
FINITE = [s for s in SETTINGS if s[0] != INF]
THREADS = 4
CALLS = 40_000  # per contended round, split across the threads


def label(setting: tuple[float, int]) -> str:
    rate, burst = setting
    return f"{'inf' if rate == INF else f'{rate:g}'}/{burst}"


def ids(settings: list[tuple[float, int]]) -> list[str]:
    return [label(s) for s in settings]


# -- the contenders: each returns a zero-argument-ish callable -------------------


def ours_allow(rate: float, burst: int) -> Callable[[], bool]:
    return TokenBucket(rate, burst).allow


def ours_reserve(rate: float, burst: int) -> Callable[[], Any]:
    bucket = TokenBucket(rate, burst)

    def reserve() -> bool:
        return bucket.reserve(1, max_wait=0).ok

    return reserve


def pyrate_token_bucket(rate: float, burst: int) -> Callable[[], Any]:
    limiter = pyrate.Limiter(
        pyrate.StateBucket(
            [pyrate.Rate(int(rate), pyrate.Duration.SECOND, burst=burst)],
            algorithm=pyrate.TokenBucket(),
        )
    )
    return lambda: limiter.try_acquire("k", blocking=False)


def pyrate_in_memory(rate: float, burst: int) -> Callable[[], Any]:
    # A sliding log of `burst` items per burst/rate window: the same long-run
    # rate and the same largest burst.
    window_ms = max(1, round(burst / rate * 1000))
    limiter = pyrate.Limiter(pyrate.InMemoryBucket([pyrate.Rate(burst, window_ms)]))
    return lambda: limiter.try_acquire("k", blocking=False)


def limits_moving_window(rate: float, burst: int) -> Callable[[], bool]:
    limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = limits.RateLimitItemPerSecond(int(rate))  # 1 s is its finest window
    return lambda: limiter.hit(item, "k")


def limits_fixed_window(rate: float, burst: int) -> Callable[[], bool]:
    limiter = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    item = limits.RateLimitItemPerSecond(int(rate))
    return lambda: limiter.hit(item, "k")


# -- uncontended -------------------------------------------------------------------


@pytest.mark.parametrize("setting", SETTINGS, ids=ids(SETTINGS))
def test_ours_allow(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    benchmark(TokenBucket(*setting).allow, 1)


@pytest.mark.parametrize("setting", SETTINGS, ids=ids(SETTINGS))
def test_ours_reserve(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    benchmark(TokenBucket(*setting).reserve, 1, max_wait=0)


@pytest.mark.parametrize("setting", FINITE, ids=ids(FINITE))
def test_aiolimiter_has_capacity(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    rate, burst = setting

    async def main() -> None:
        # Leaky bucket of capacity `burst` draining at `rate`. has_capacity()
        # only checks (taking capacity needs the awaiting acquire()), so this
        # is a lower bound of its cost. It needs a running loop: run it in a
        # worker thread, away from pytest-twisted's reactor loop.
        limiter = aiolimiter.AsyncLimiter(burst, burst / rate)
        benchmark(limiter.has_capacity, 1)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, main()).result()


@pytest.mark.parametrize("setting", FINITE, ids=ids(FINITE))
def test_pyrate_token_bucket(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    rate, burst = setting
    limiter = pyrate.Limiter(
        pyrate.StateBucket(
            [pyrate.Rate(int(rate), pyrate.Duration.SECOND, burst=burst)],
            algorithm=pyrate.TokenBucket(),
        )
    )
    benchmark(limiter.try_acquire, "k", blocking=False)


@pytest.mark.parametrize("setting", FINITE, ids=ids(FINITE))
def test_pyrate_in_memory(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    rate, burst = setting
    window_ms = max(1, round(burst / rate * 1000))
    limiter = pyrate.Limiter(pyrate.InMemoryBucket([pyrate.Rate(burst, window_ms)]))
    benchmark(limiter.try_acquire, "k", blocking=False)


@pytest.mark.parametrize("setting", FINITE, ids=ids(FINITE))
def test_limits_moving_window(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    benchmark(limiter.hit, limits.RateLimitItemPerSecond(int(setting[0])), "k")


@pytest.mark.parametrize("setting", FINITE, ids=ids(FINITE))
def test_limits_fixed_window(benchmark: Any, setting: tuple[float, int]) -> None:
    benchmark.group = f"single {label(setting)}"
    benchmark.extra_info["calls"] = 1
    limiter = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    benchmark(limiter.hit, limits.RateLimitItemPerSecond(int(setting[0])), "k")


# -- contended: CALLS calls split across THREADS threads ----------------------------


def contended(fn: Callable[[], Any]) -> Callable[[], None]:
    per_thread = CALLS // THREADS

    def work(barrier: threading.Barrier) -> None:
        barrier.wait()
        for _ in range(per_thread):
            fn()

    def round_() -> None:
        barrier = threading.Barrier(THREADS)
        pool = [threading.Thread(target=work, args=(barrier,)) for _ in range(THREADS)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    return round_


THREADED = {
    "ours_allow": ours_allow,
    "ours_reserve": ours_reserve,
    "pyrate_token_bucket": pyrate_token_bucket,
    "pyrate_in_memory": pyrate_in_memory,
    "limits_moving_window": limits_moving_window,
    "limits_fixed_window": limits_fixed_window,
}


@pytest.mark.parametrize("name", list(THREADED))
@pytest.mark.parametrize("setting", [(1000.0, 100)], ids=["1000/100"])
def test_threads(benchmark: Any, name: str, setting: tuple[float, int]) -> None:
    benchmark.group = f"{THREADS} threads {label(setting)}"
    benchmark.extra_info["calls"] = CALLS
    benchmark.pedantic(contended(THREADED[name](*setting)), rounds=7, iterations=1)
