"""RedisAdaptiveBuckets: the same law as AdaptiveBuckets, shared by workers.

fakeredis (with Lua) and an injected clock: the same events give the same
rates as the local buckets; two clients on one Redis share one learnt rate
and cut it once for a throttle both saw.
"""

from __future__ import annotations

import random

import fakeredis
import pytest

from scraper_project.ratelimit import INF, AdaptiveBuckets, RedisAdaptiveBuckets
from scraper_project.ratelimit.testing import FakeClock


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def shared(fake: fakeredis.FakeRedis, clock: FakeClock, rate: float = INF) -> RedisAdaptiveBuckets:
    return RedisAdaptiveBuckets(fake, rate, 1, clock=clock, sleep=clock.sleep, sync_interval=0)


@pytest.mark.parametrize("seed", range(12))
def test_same_rates_as_the_local_buckets(
    fake: fakeredis.FakeRedis, clock: FakeClock, seed: int
) -> None:
    rnd = random.Random(seed)
    rate = rnd.choice([INF, 10.0, 50.0])
    local = AdaptiveBuckets(rate, 1, clock=clock, sleep=clock.sleep)
    remote = shared(fake, clock, rate)
    for step in range(300):
        clock.advance(rnd.choice([0.0, 0.01, 0.05, 0.2]))
        # Short waits, as the middleware reserves: the two buckets differ
        # only in how a change of rate treats tokens already owed (the local
        # one rescales them, the Redis one, like RedisTokenBucket.set_rate,
        # does not); the law is the same.
        a, epoch_a, rate_a = local.reserve("h", max_wait=0.25)
        _, epoch_b, rate_b = remote.reserve("h", max_wait=0.25)
        assert (epoch_a, rate_a) == (epoch_b, pytest.approx(rate_b)), step
        op = rnd.random()
        if op < 0.8:
            bound = a.delay > 0
            local.clean("h", bound)
            remote.clean("h", bound)
        elif op < 0.9:
            sent = rnd.choice([epoch_a, epoch_a - 1])
            assert (local.throttle("h", sent, rate_a) is None) == (
                remote.throttle("h", sent, rate_b) is None
            ), step
        elif op < 0.95:
            quota = rnd.choice([5.0, 20.0])
            assert (local.hint("h", quota) is None) == (remote.hint("h", quota) is None), step
        else:
            local.block_for("h", 1.0)
            remote.block_for("h", 1.0)


def test_two_workers_share_one_learnt_rate(fake: fakeredis.FakeRedis, clock: FakeClock) -> None:
    one, two = shared(fake, clock), shared(fake, clock)
    _, epoch, rate = one.reserve("h")
    _, epoch_two, _ = two.reserve("h")
    assert epoch == epoch_two
    # Both were refused at once: the first cuts, the second is stale.
    assert one.throttle("h", epoch, rate) is not None
    assert two.throttle("h", epoch_two, rate) is None
    _, _, rate_two = two.reserve("h")
    learnt = one.learnt("h")
    assert learnt is not None
    assert rate_two == learnt.rate
    # Clean answers of both workers grow the one rate: each counts its own.
    for _ in range(20):
        clock.advance(0.1)
        one.clean("h", True)
        two.clean("h", True)
        one.reserve("h")
        two.reserve("h")
    after_one, after_two = one.learnt("h"), two.learnt("h")
    assert after_one is not None
    assert after_two is not None
    assert after_one.rate > rate_two
    assert after_two.rate == pytest.approx(after_one.rate, rel=0.2)


def test_pause_holds_every_worker(fake: fakeredis.FakeRedis, clock: FakeClock) -> None:
    one, two = shared(fake, clock), shared(fake, clock)
    one.block_for("h", 3.0)
    assert two.is_blocked("h")
    r, _, _ = two.reserve("h")
    assert r.delay == pytest.approx(3.0)
