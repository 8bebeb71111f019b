"""TokenBucket semantics, as tables of requests at fixed instants (no sleeping).

Many tables are ports of golang.org/x/time/rate's tests, with ``tK`` meaning
``K * 0.1`` seconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from scraper_project.ratelimit import INF, Reservation, TokenBucket
from scraper_project.ratelimit.testing import FakeClock


def t(k: float) -> float:
    """The K-th tick of 100 ms, as in x/time/rate's tests."""
    return k * 0.1


@dataclass(frozen=True)
class Allow:
    t: float
    n: int
    ok: bool


@dataclass(frozen=True)
class Reserve:
    t: float
    n: int
    act: float  # expected time_to_act (when ok)
    ok: bool = True
    max_wait: float = INF


def _bucket(rate: float, burst: int, initial_tokens: float | None = None) -> TokenBucket:
    """A bucket created at t=0, driven through the ``*_at`` methods."""
    return TokenBucket(rate, burst, clock=lambda: 0.0, initial_tokens=initial_tokens)


def run_allow_at(bucket: TokenBucket, steps: list[Allow]) -> None:
    for i, step in enumerate(steps):
        assert bucket.allow_at(step.t, step.n) is step.ok, (i, step)


def run_allow(rate: float, burst: int, steps: list[Allow]) -> None:
    """The same table through allow() and a FakeClock (the inlined fast path)."""
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock)
    for i, step in enumerate(steps):
        clock.set(step.t)
        assert bucket.allow(step.n) is step.ok, (i, step)


def run_reserve0(bucket: TokenBucket, steps: list[Allow]) -> None:
    """The same table as reservations that may not wait."""
    for i, step in enumerate(steps):
        r = bucket.reserve_at(step.t, step.n, max_wait=0)
        assert r.ok is step.ok, (i, step)


def run_reserve(bucket: TokenBucket, steps: list[Reserve]) -> list[Reservation]:
    out = []
    for i, step in enumerate(steps):
        r = bucket.reserve_at(step.t, step.n, max_wait=step.max_wait)
        assert r.ok is step.ok, (i, step)
        if step.ok:
            assert r.time_to_act == pytest.approx(step.act, abs=1e-9), (i, step)
            assert r.delay == pytest.approx(max(0.0, step.act - step.t), abs=1e-9)
        out.append(r)
    return out


ALLOW_TABLES: dict[str, tuple[float, int, list[Allow]]] = {
    # x/time/rate TestLimiterBurst1 (minus its n > burst row: a ValueError here).
    "burst1": (
        10,
        1,
        [
            Allow(t(0), 1, True),
            Allow(t(0), 1, False),
            Allow(t(0), 1, False),
            Allow(t(1), 1, True),
            Allow(t(1), 1, False),
            Allow(t(1), 1, False),
            Allow(t(2), 1, True),
            Allow(t(2), 1, False),
        ],
    ),
    # x/time/rate TestLimiterBurst3.
    "burst3": (
        10,
        3,
        [
            Allow(t(0), 2, True),
            Allow(t(0), 2, False),
            Allow(t(0), 1, True),
            Allow(t(0), 1, False),
            Allow(t(2), 1, True),
            Allow(t(3), 1, True),
            Allow(t(4), 1, True),
            Allow(t(4), 1, True),
            Allow(t(4), 1, False),
            Allow(t(4), 1, False),
            Allow(t(9), 3, True),
        ],
    ),
    # x/time/rate TestLimiterJumpBackwards: an earlier instant adds nothing and
    # takes nothing away.
    "jump_backwards": (
        10,
        3,
        [
            Allow(t(1), 1, True),  # start at t1
            Allow(t(0), 1, True),  # jump back to t0, two tokens remain
            Allow(t(0), 1, True),
            Allow(t(0), 1, False),
            Allow(t(0), 1, False),
            Allow(t(1), 1, True),  # got a token
            Allow(t(1), 1, False),
            Allow(t(1), 1, False),
            Allow(t(2), 1, True),  # got another token
            Allow(t(2), 1, False),
            Allow(t(2), 1, False),
        ],
    ),
    # The product requirement: 20/s with burst 1 gives exactly one request at
    # t=0, then one every 50 ms, never two at once.
    "initial_fill_20_per_s_burst_1": (
        20,
        1,
        [
            Allow(0.0, 1, True),
            Allow(0.0, 1, False),
            Allow(0.049, 1, False),
            Allow(0.05, 1, True),
            Allow(0.05, 1, False),
            Allow(0.0999, 1, False),
            Allow(0.1, 1, True),
            Allow(0.15, 1, True),
            Allow(0.2, 1, True),
            Allow(0.2, 1, False),
            Allow(10.0, 1, True),  # idle for long: still only burst (1)
            Allow(10.0, 1, False),
        ],
    ),
    # Tokens are capped at burst however long the bucket is idle.
    "capped_at_burst": (
        1,
        3,
        [
            Allow(0, 3, True),
            Allow(1000, 3, True),
            Allow(1000, 1, False),
            Allow(1001, 1, True),
            Allow(1001.5, 1, False),
            Allow(1002, 1, True),
        ],
    ),
    # Fractional refill: 2.5 tokens after 250 ms at 10/s.
    "fractional": (
        10,
        3,
        [
            Allow(0, 3, True),
            Allow(0.25, 3, False),
            Allow(0.25, 2, True),
            Allow(0.25, 1, False),
            Allow(0.3, 1, True),  # 0.5 + 0.5
            Allow(0.3, 1, False),
        ],
    ),
    # Float rounding must not deny a request that is exactly on time.
    "on_time_despite_rounding": (
        10,
        1,
        [Allow(t(k), 1, True) for k in range(50)] + [Allow(t(49), 1, False)],
    ),
    "inf_ignores_burst": (
        INF,
        1,
        [
            Allow(0, 1, True),
            Allow(0, 1, True),
            Allow(0, 50, True),
            Allow(0, 10**9, True),
            Allow(-5, 1, True),  # even going backwards
            Allow(1e9, 7, True),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(ALLOW_TABLES))
def test_allow_at_table(name: str) -> None:
    rate, burst, steps = ALLOW_TABLES[name]
    run_allow_at(_bucket(rate, burst), steps)


@pytest.mark.parametrize("name", sorted(ALLOW_TABLES))
def test_allow_fast_path_table(name: str) -> None:
    rate, burst, steps = ALLOW_TABLES[name]
    run_allow(rate, burst, steps)


@pytest.mark.parametrize("name", sorted(ALLOW_TABLES))
def test_reserve_without_wait_table(name: str) -> None:
    rate, burst, steps = ALLOW_TABLES[name]
    run_reserve0(_bucket(rate, burst), steps)


def test_initial_tokens_override() -> None:
    run_allow_at(
        _bucket(10, 5, initial_tokens=0),
        [
            Allow(0, 1, False),
            Allow(0.1, 1, True),
            Allow(0.1, 1, False),
            Allow(10, 5, True),
        ],
    )
    run_allow_at(
        _bucket(10, 5, initial_tokens=2.5),
        [Allow(0, 2, True), Allow(0, 1, False), Allow(0.05, 1, True)],
    )


RESERVE_TABLES: dict[str, tuple[float, int, list[Reserve]]] = {
    # Reservations queue up: each waits for the tokens the previous ones owe.
    "queue": (
        10,
        2,
        [
            Reserve(t(0), 1, t(0)),
            Reserve(t(0), 1, t(0)),
            Reserve(t(0), 1, t(1)),
            Reserve(t(0), 1, t(2)),
            Reserve(t(0), 2, t(4)),
            Reserve(t(5), 1, t(5)),  # -4 + 5 = 1 token: no wait
            Reserve(t(5), 2, t(7), ok=False, max_wait=0.1),  # nothing taken
            Reserve(t(5), 1, t(6), max_wait=0.1),
        ],
    ),
    # x/time/rate TestReserveJumpBack.
    "jump_back": (
        10,
        2,
        [
            Reserve(t(1), 2, t(1)),  # start at t1
            Reserve(t(0), 1, t(1)),  # no refill going back: waits to t1
            Reserve(t(2), 2, t(3)),
        ],
    ),
    # x/time/rate TestReserveMax.
    "max_wait": (
        10,
        2,
        [
            Reserve(t(0), 2, t(0), max_wait=0.1),
            Reserve(t(0), 1, t(1), max_wait=0.1),
            Reserve(t(0), 1, t(2), ok=False, max_wait=0.1),
            Reserve(t(0), 1, t(2), max_wait=0.2),
        ],
    ),
    # Large requests are not overtaken by later small ones.
    "fifo": (
        1,
        5,
        [
            Reserve(0, 5, 0),
            Reserve(0, 5, 5),
            Reserve(1, 1, 6),
        ],
    ),
    "inf": (
        INF,
        1,
        [Reserve(0, 1, 0), Reserve(0, 100, 0), Reserve(3, 1, 3)],
    ),
}


@pytest.mark.parametrize("name", sorted(RESERVE_TABLES))
def test_reserve_table(name: str) -> None:
    rate, burst, steps = RESERVE_TABLES[name]
    run_reserve(_bucket(rate, burst), steps)


def test_refused_reservation_reports_the_wait_and_takes_nothing() -> None:
    bucket = _bucket(2, 1)
    assert bucket.allow_at(0)
    r = bucket.reserve_at(0, max_wait=0.1)
    assert not r.ok
    assert r.delay == pytest.approx(0.5)
    assert bucket.tokens_at(0) == pytest.approx(0)
    r.cancel_at(0)  # no-op
    assert bucket.tokens_at(0.5) == pytest.approx(1)


def test_delay_from() -> None:
    bucket = _bucket(10, 1)
    bucket.allow_at(0)
    r = bucket.reserve_at(0)
    assert r.delay == pytest.approx(0.1)
    assert r.delay_from(0.04) == pytest.approx(0.06)
    assert r.delay_from(0.5) == 0
    assert r.reserved_at == 0
    assert r.tokens == 1
    assert r.rate == 10


# -- cancellation: ports of x/time/rate's TestCancel* -------------------------


def test_cancel_last() -> None:
    bucket = _bucket(10, 2)
    run_reserve(bucket, [Reserve(t(0), 2, t(0))])
    [r] = run_reserve(bucket, [Reserve(t(0), 2, t(2))])
    r.cancel_at(t(1))  # got 2 tokens back
    run_reserve(bucket, [Reserve(t(1), 2, t(2))])


def test_cancel_too_late() -> None:
    bucket = _bucket(10, 2)
    run_reserve(bucket, [Reserve(t(0), 2, t(0))])
    [r] = run_reserve(bucket, [Reserve(t(0), 2, t(2))])
    r.cancel_at(t(3))  # too late to cancel: no effect
    run_reserve(bucket, [Reserve(t(3), 2, t(4))])


def test_cancel_0_tokens() -> None:
    bucket = _bucket(10, 2)
    run_reserve(bucket, [Reserve(t(0), 2, t(0))])
    [r] = run_reserve(bucket, [Reserve(t(0), 1, t(1))])
    run_reserve(bucket, [Reserve(t(0), 1, t(2))])
    r.cancel_at(t(0))  # got 0 tokens back: the later one counted on them
    run_reserve(bucket, [Reserve(t(0), 1, t(3))])


def test_cancel_1_token() -> None:
    bucket = _bucket(10, 2)
    run_reserve(bucket, [Reserve(t(0), 2, t(0))])
    [r] = run_reserve(bucket, [Reserve(t(0), 2, t(2))])
    run_reserve(bucket, [Reserve(t(0), 1, t(3))])
    r.cancel_at(t(2))  # got 1 token back
    run_reserve(bucket, [Reserve(t(2), 2, t(4))])


def test_cancel_multi() -> None:
    bucket = _bucket(10, 4)
    run_reserve(bucket, [Reserve(t(0), 4, t(0))])
    [ra] = run_reserve(bucket, [Reserve(t(0), 3, t(3))])
    run_reserve(bucket, [Reserve(t(0), 1, t(4))])
    [rc] = run_reserve(bucket, [Reserve(t(0), 1, t(5))])
    rc.cancel_at(t(1))  # get 1 token back
    ra.cancel_at(t(1))  # get 2 tokens back, as if C was never reserved
    run_reserve(bucket, [Reserve(t(1), 3, t(5))])


def test_reserve_jump_back_cancel() -> None:
    bucket = _bucket(10, 2)
    run_reserve(bucket, [Reserve(t(1), 2, t(1))])
    [r] = run_reserve(bucket, [Reserve(t(1), 2, t(3))])
    run_reserve(bucket, [Reserve(t(1), 1, t(4))])
    r.cancel_at(t(0))  # cancel at t0 (clock gone back): 1 token back
    run_reserve(bucket, [Reserve(t(1), 2, t(4))])


def test_cancel_is_idempotent_and_capped_at_burst() -> None:
    bucket = _bucket(10, 2)
    r = bucket.reserve_at(0, 2)
    assert r.delay == 0
    r.cancel_at(0)
    assert r.cancelled
    assert bucket.tokens_at(0) == pytest.approx(2)
    r.cancel_at(0)  # a second cancel gives nothing more (and is capped anyway)
    assert bucket.tokens_at(0) == pytest.approx(2)
    assert bucket.allow_at(0, 2)
    assert not bucket.allow_at(0)


def test_cancel_on_inf_bucket_is_a_noop() -> None:
    bucket = _bucket(INF, 1)
    r = bucket.reserve_at(0, 5)
    r.cancel_at(0)
    assert bucket.allow_at(0, 5)


def test_cancel_uses_the_bucket_clock(clock: FakeClock) -> None:
    bucket = TokenBucket(10, 1, clock=clock)
    bucket.allow()
    r = bucket.reserve()
    assert r.delay == pytest.approx(0.1)
    clock.advance(0.05)
    r.cancel()
    clock.advance(0.05)
    assert bucket.allow()


# -- runtime changes -------------------------------------------------------------


def test_set_rate_advances_first() -> None:
    bucket = _bucket(10, 10)
    assert bucket.allow_at(0, 10)
    bucket.set_rate_at(0.5, 1)  # 5 tokens accrued at the old rate are kept
    assert bucket.rate == 1
    assert bucket.tokens_at(0.5) == pytest.approx(5)
    assert bucket.allow_at(0.5, 5)
    assert not bucket.allow_at(1.4)
    assert bucket.allow_at(1.5)  # then 1 per second


def test_set_rate_keeps_debt_and_changes_its_pace() -> None:
    bucket = _bucket(10, 1)
    run_reserve(bucket, [Reserve(0, 1, 0), Reserve(0, 1, 0.1)])  # owes 1 token
    bucket.set_rate_at(0, 1)
    run_reserve(bucket, [Reserve(0, 1, 2)])  # -1 - 1 = -2 at 1/s


def test_set_burst_caps_and_grows() -> None:
    bucket = _bucket(1, 10)
    bucket.set_burst_at(0, 3)
    assert bucket.burst == 3
    assert bucket.tokens_at(0) == pytest.approx(3)
    assert bucket.allow_at(0, 3)
    assert not bucket.allow_at(0)
    bucket.set_burst_at(1, 5)  # growing adds no tokens
    assert bucket.tokens_at(1) == pytest.approx(1)
    assert bucket.tokens_at(100) == pytest.approx(5)
    assert bucket.allow_at(100, 5)


def test_set_rate_to_and_from_inf() -> None:
    bucket = _bucket(1, 2)
    assert bucket.allow_at(0, 2)
    bucket.set_rate_at(0, INF)
    assert bucket.tokens_at(0) == INF
    assert all(bucket.allow_at(0, 10) for _ in range(5))
    bucket.set_rate_at(1, 1)  # leaving INF: full (burst), no more
    assert bucket.allow_at(1, 2)
    assert not bucket.allow_at(1)


def test_set_rate_and_burst_use_the_clock(clock: FakeClock) -> None:
    bucket = TokenBucket(1, 1, clock=clock)
    assert bucket.allow()
    clock.advance(0.5)
    bucket.set_rate(10)  # 0.5 token kept, then 10/s
    bucket.set_burst(4)
    clock.advance(0.05)
    assert bucket.allow()
    assert not bucket.allow()
    assert bucket.tokens() == pytest.approx(0)


# -- block_until ----------------------------------------------------------------


BLOCK_TABLE = [
    # A 10/s, burst 3 bucket is blocked at t=1 until t=3.
    Allow(1.0, 1, False),
    Allow(2.999, 1, False),
    Allow(3.0, 2, False),  # the bucket resumes with a single token
    Allow(3.0, 1, True),
    Allow(3.0, 1, False),
    Allow(3.1, 1, True),  # then at the rate
    Allow(3.15, 1, False),
    Allow(3.2, 1, True),
    Allow(4.0, 3, True),  # and refills to burst as usual
]


def test_block_until_table() -> None:
    bucket = _bucket(10, 3)
    bucket.block_until_at(1.0, 3.0)
    assert bucket.blocked_until == 3.0
    run_allow_at(bucket, BLOCK_TABLE)


def test_block_until_fast_path(clock: FakeClock) -> None:
    bucket = TokenBucket(10, 3, clock=clock)
    clock.set(1.0)
    bucket.block_until(3.0)
    for i, step in enumerate(BLOCK_TABLE):
        clock.set(step.t)
        assert bucket.allow(step.n) is step.ok, (i, step)


def test_block_until_reservations_queue_after_the_pause() -> None:
    bucket = _bucket(10, 3)
    bucket.block_until_at(0, 2)
    run_reserve(
        bucket,
        [
            Reserve(0, 1, 2.0),
            Reserve(0.5, 1, 2.1),
            Reserve(1, 2, 2.3),
            Reserve(1, 1, 2.1, ok=False, max_wait=1),
        ],
    )


def test_block_until_never_shortens_and_ignores_the_past() -> None:
    bucket = _bucket(10, 1)
    bucket.block_until_at(0, 5)
    bucket.block_until_at(0, 2)  # shorter: ignored
    bucket.block_until_at(1, 0.5)  # in the past: ignored
    assert bucket.blocked_until == 5
    assert not bucket.allow_at(4.99)
    assert bucket.allow_at(5)


def test_block_until_survives_rate_changes() -> None:
    bucket = _bucket(10, 3)
    bucket.block_until_at(0, 10)
    bucket.set_rate_at(1, 0.5)
    bucket.set_rate_at(2, 1000)
    bucket.set_burst_at(3, 5)
    assert not bucket.allow_at(9.999)
    assert bucket.allow_at(10)
    assert not bucket.allow_at(10)
    assert bucket.allow_at(10.001)


def test_block_until_survives_a_cancel() -> None:
    bucket = _bucket(10, 3)
    r = bucket.reserve_at(0, 3)  # taken before the pause, not yet "used"
    bucket.block_until_at(0, 10)
    r.cancel_at(0)  # its refund must not open the pause early
    assert not bucket.allow_at(9.9)
    assert bucket.allow_at(10)


def test_block_until_on_inf_bucket() -> None:
    bucket = _bucket(INF, 1)
    bucket.block_until_at(0, 2)
    assert bucket.tokens_at(1) == 0
    assert not bucket.allow_at(1.999, 5)
    r = bucket.reserve_at(1)
    assert r.delay == pytest.approx(1)
    assert bucket.allow_at(2, 5)
    assert bucket.allow_at(2, 5)
    bucket.block_until_at(3, 4)
    bucket.set_rate_at(3.5, 10)  # leaving INF during a pause keeps it
    assert not bucket.allow_at(3.9)
    assert bucket.allow_at(4)
    assert not bucket.allow_at(4)


# -- invalid arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0, 1), (-1, 1), (math.nan, 1), (1, 0), (1, -3), (1, 1.5), (1, math.inf)],
)
def test_invalid_construction(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate, burst)


@pytest.mark.parametrize("initial", [-1, 4, math.nan])
def test_invalid_initial_tokens(initial: float) -> None:
    with pytest.raises(ValueError, match="initial_tokens"):
        TokenBucket(1, 3, initial_tokens=initial)


@pytest.mark.parametrize("n", [0, -1, 4])
def test_invalid_n(n: int) -> None:
    bucket = _bucket(1, 3)
    with pytest.raises(ValueError, match="n"):
        bucket.allow(n)
    with pytest.raises(ValueError, match="n"):
        bucket.allow_at(0, n)
    with pytest.raises(ValueError, match="n"):
        bucket.reserve_at(0, n)
    assert bucket.tokens_at(0) == pytest.approx(3)  # nothing taken


def test_n_above_burst_is_fine_with_inf() -> None:
    assert _bucket(INF, 1).allow_at(0, 4)
    with pytest.raises(ValueError, match="n"):
        _bucket(INF, 1).allow_at(0, 0)


@pytest.mark.parametrize("value", [-0.1, math.nan])
def test_invalid_max_wait(value: float) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        _bucket(1, 1).reserve_at(0, max_wait=value)


@pytest.mark.parametrize("rate", [0, -2, math.nan])
def test_invalid_set_rate(rate: float) -> None:
    bucket = _bucket(1, 1)
    with pytest.raises(ValueError, match="rate"):
        bucket.set_rate_at(0, rate)
    assert bucket.rate == 1


@pytest.mark.parametrize("burst", [0, -2, 2.5])
def test_invalid_set_burst(burst: int) -> None:
    bucket = _bucket(1, 1)
    with pytest.raises(ValueError, match="burst"):
        bucket.set_burst_at(0, burst)
    assert bucket.burst == 1


# -- properties, over seeded random sequences --------------------------------------------
# (Plain random rather than hypothesis: pytest-twisted re-wraps hypothesis tests
# on every run, which breaks under pytest-repeat's --count.)

RATES = [0.5, 3.0, 10.0, 1000.0]


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_agrees_with_allow_at(seed: int) -> None:
    rng = random.Random(seed)
    rate, burst = rng.choice(RATES), rng.randint(3, 6)
    clock = FakeClock(100.0)
    fast = TokenBucket(rate, burst, clock=clock)
    slow = TokenBucket(rate, burst, clock=clock)
    now = 100.0
    for _ in range(200):
        # Mostly forward, sometimes not at all, sometimes backwards.
        now += rng.choice([0.0, -rng.uniform(0, 0.5), rng.expovariate(rate)])
        n = rng.choice([1, 1, 1, 2, 3])
        clock.set(now)
        assert fast.allow(n) is slow.allow_at(now, n)
        assert fast.tokens_at(now) == pytest.approx(slow.tokens_at(now), abs=1e-6)


@pytest.mark.parametrize("seed", range(40))
def test_never_more_than_burst_plus_rate_times_elapsed(seed: int) -> None:
    rng = random.Random(seed)
    rate, burst = rng.choice(RATES), rng.randint(1, 6)
    bucket = _bucket(rate, burst)
    now = granted = last_act = 0.0
    for _ in range(300):
        now += rng.choice([0.0, rng.expovariate(rate), rng.uniform(0, 2 / rate)])
        n = rng.randint(1, burst)
        if rng.random() < 0.2:
            r = bucket.reserve_at(now, n, max_wait=rng.uniform(0, 1 / rate))
            if r.ok and rng.random() < 0.5:
                r.cancel_at(now)  # handed back unused
            elif r.ok:
                granted += n  # acts at r.time_to_act
                last_act = max(last_act, r.time_to_act)
        elif bucket.allow_at(now, n):
            granted += n
        assert granted <= burst + rate * max(now, last_act) + 1e-6


def test_repr() -> None:
    assert "rate=10" in repr(_bucket(10, 2))
    assert "ok=True" in repr(_bucket(10, 2).reserve_at(0))
