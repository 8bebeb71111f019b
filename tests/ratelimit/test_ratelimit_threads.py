"""Thread safety: concurrent callers never get more than the bucket allows.

Kept green under ``pytest --count=50 tests/ratelimit -k thread``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from scraper_project.ratelimit import BucketRegistry, TokenBucket
from scraper_project.ratelimit.testing import FakeClock

THREADS = 8


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, to mix callers."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def hammer(worker: Callable[[], int], threads: int = THREADS) -> list[int]:
    """Run ``worker`` in ``threads`` threads started together; their results."""
    barrier = threading.Barrier(threads)
    results = [0] * threads

    def target(i: int) -> None:
        barrier.wait(timeout=10)
        results[i] = worker()

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
        assert not thread.is_alive()
    return results


@pytest.mark.parametrize("burst", [1, 7, 500])
def test_threads_frozen_clock_exactly_burst(burst: int) -> None:
    clock = FakeClock(1000.0)
    bucket = TokenBucket(10, burst, clock=clock)

    def worker() -> int:
        return sum(bucket.allow() for _ in range(300))

    assert sum(hammer(worker)) == burst


def test_threads_frozen_clock_mixed_n_and_reserve() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 60, clock=clock)

    def worker() -> int:
        taken = 0
        for i in range(200):
            if i % 3 == 0:
                r = bucket.reserve(2, max_wait=0)
                taken += 2 if r.ok else 0
            else:
                taken += 3 if bucket.allow(3) else 0
        return taken

    assert sum(hammer(worker)) <= 60
    assert bucket.tokens() >= -1e-9  # never overdrawn without waiting


def test_threads_real_clock_bound() -> None:
    rate, burst = 20_000.0, 50
    start = time.monotonic()
    bucket = TokenBucket(rate, burst)

    def worker() -> int:
        return sum(bucket.allow() for _ in range(5_000))

    granted = sum(hammer(worker))
    elapsed = time.monotonic() - start
    assert 0 < granted <= burst + rate * elapsed + 1e-6


def test_threads_reservations_are_serialised() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 1, clock=clock)
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> int:
        mine = [bucket.reserve().time_to_act for _ in range(50)]
        with lock:
            times.extend(mine)
        return len(mine)

    assert sum(hammer(worker)) == THREADS * 50
    # Every reservation got its own 10 ms slot: 0, 0.01, 0.02, ...
    slots = sorted(round(t * 100) for t in times)
    assert slots == list(range(THREADS * 50))


def test_threads_registry_one_bucket_per_key() -> None:
    clock = FakeClock()
    registry = BucketRegistry(1, 3, clock=clock, max_size=100)

    def worker() -> int:
        return sum(registry.allow(f"k{i % 10}") for i in range(300))

    assert sum(hammer(worker)) == 10 * 3
    assert len(registry) == 10
