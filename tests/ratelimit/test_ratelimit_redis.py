"""The Redis backend of the token bucket against the local one.

Unit tests (fakeredis, injected clock): every sequence of operations gives the
same answers as :class:`TokenBucket`. Then against a real redis-server with
Redis's own clock: one rate shared by several clients and threads.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from scraper_project.ratelimit import (
    INF,
    BucketRegistry,
    RateLimitTimeout,
    RedisBucketRegistry,
    RedisTokenBucket,
    TokenBucket,
)
from scraper_project.ratelimit.testing import FakeClock
from tests.support.redisserver import redis_server


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def pair(
    fake: fakeredis.FakeRedis, clock: FakeClock, rate: float, burst: int
) -> tuple[TokenBucket, RedisTokenBucket]:
    local = TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)
    shared = RedisTokenBucket(fake, "b", rate, burst, clock=clock, sleep=clock.sleep)
    return local, shared


@pytest.mark.parametrize("seed", range(30))
def test_same_answers_as_the_local_bucket(
    fake: fakeredis.FakeRedis, clock: FakeClock, seed: int
) -> None:
    rnd = random.Random(seed)
    rate = rnd.choice([0.5, 2.0, 10.0, 37.0, INF])
    burst = rnd.choice([1, 2, 5])
    local, shared = pair(fake, clock, rate, burst)
    reservations = []
    for step in range(60):
        clock.advance(rnd.choice([0.0, 0.001, 0.01, 0.05, 0.3, 1.0]))
        op = rnd.random()
        if op < 0.35:
            assert local.allow() == shared.allow(), step
        elif op < 0.7:
            n = rnd.randint(1, burst)
            max_wait = rnd.choice([INF, 0.0, 0.2, 2.0])
            a, b = local.reserve(n, max_wait=max_wait), shared.reserve(n, max_wait=max_wait)
            assert (a.ok, a.tokens) == (b.ok, b.tokens), step
            assert b.delay == pytest.approx(a.delay, abs=1e-5), step
            reservations.append((a, b))
        elif op < 0.8 and reservations:
            a, b = reservations.pop(rnd.randrange(len(reservations)))
            a.cancel()
            b.cancel()
        elif op < 0.9:
            until = clock() + rnd.choice([0.1, 0.5, 2.0])
            local.block_until(until)
            shared.block_until(until)
        tokens_local, tokens_shared = local.tokens(), shared.tokens()
        if tokens_local == INF:
            assert tokens_shared == INF
        else:
            assert tokens_shared == pytest.approx(tokens_local, abs=1e-4), step


def test_state_expires_once_full(fake: fakeredis.FakeRedis) -> None:
    bucket = RedisTokenBucket(fake, "k", 10, 2)  # Redis's clock
    assert bucket.allow()
    assert bucket.allow()
    assert not bucket.allow()
    ttl = fake.pttl("k")
    assert 0 < ttl <= 1000 + 200 + 50  # full again within 0.2 s, plus 1 s grace


def test_wait_and_timeout(fake: fakeredis.FakeRedis, clock: FakeClock, run) -> None:  # type: ignore[no-untyped-def]
    bucket = RedisTokenBucket(fake, "w", 2, 1, clock=clock, sleep=clock.sleep)
    run(bucket.wait())
    start = clock()
    run(bucket.wait())
    assert clock() - start == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(RateLimitTimeout):
        run(bucket.wait(timeout=0.1))
    # The refused wait took nothing: the next token is still 0.5 s away.
    assert bucket.reserve().delay == pytest.approx(0.5, abs=1e-5)


def test_registry_keys_and_overrides(fake: fakeredis.FakeRedis, clock: FakeClock) -> None:
    shared = RedisBucketRegistry(
        fake, 1, 1, overrides={"fast.test": (100, 3)}, prefix="p:", clock=clock
    )
    local = BucketRegistry(1, 1, overrides={"fast.test": (100, 3)}, clock=clock)
    for key in ["a.test", "fast.test", "a.test", "fast.test", "fast.test", "fast.test"]:
        assert shared.allow(key) == local.allow(key), key
    assert sorted(k.decode() for k in fake.keys("p:*")) == ["p:a.test", "p:fast.test"]
    shared.block_for("a.test", 5)
    local.block_for("a.test", 5)
    clock.advance(4.9)
    assert shared.allow("a.test") is local.allow("a.test") is False
    clock.advance(0.2)
    assert shared.allow("a.test") is local.allow("a.test") is True


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_one_rate_for_many_clients(redis_url: str) -> None:
    """Four threads, each with its own connection, take from one 50/s bucket
    for 1.2 s: together they get what one bucket allows (Redis's clock)."""
    rate, burst, seconds = 50.0, 5, 1.2
    grants: list[float] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.05

    def worker() -> None:
        client = redis.Redis.from_url(redis_url)
        bucket = RedisTokenBucket(client, "shared", rate, burst)
        try:
            while time.monotonic() < start:
                time.sleep(0.001)
            while time.monotonic() < start + seconds:
                if bucket.allow():
                    with lock:
                        grants.append(time.monotonic())
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    limit = burst + rate * seconds
    # Each grant is counted in the window it was made in; the bound is exact
    # up to the first and last grant's timing.
    assert limit - 6 <= len(grants) <= limit + 1, len(grants)
    grants.sort()
    for i, t in enumerate(grants):  # any 1 s window: at most burst + rate
        j = i
        while j < len(grants) and grants[j] - t < 1.0:
            j += 1
        assert j - i <= burst + rate + 1


def test_real_server_clock_and_pause(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        bucket = RedisTokenBucket(client, "pause", INF, 1)
        assert bucket.allow()
        bucket.block_for(0.3)
        assert not bucket.allow()
        remaining = bucket.blocked_until - bucket.clock()
        assert 0.0 < remaining <= 0.3
        r = bucket.reserve()
        assert r.delay == pytest.approx(remaining, abs=0.05)
    finally:
        client.close()
