"""TokenBucket.wait() and the callback style, on fake clocks (no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from scraper_project.ratelimit import INF, RateLimitTimeout, TokenBucket
from scraper_project.ratelimit.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def test_wait_paces_requests(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(20, 1, clock=clock, sleep=clock.sleep)

    async def main() -> list[float]:
        times = []
        for _ in range(5):
            await bucket.wait()
            times.append(clock.now())
        return times

    assert run(main()) == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20])
    assert clock.sleeps == pytest.approx([0.05] * 4)


def test_wait_n_and_async_with(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(10, 3, clock=clock, sleep=clock.sleep)

    async def main() -> None:
        await bucket.wait(3)
        async with bucket:
            pass

    run(main())
    assert clock.now() == pytest.approx(0.1)


def test_wait_without_delay_does_not_sleep(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(INF, 1, clock=clock, sleep=clock.sleep)

    async def main() -> None:
        for _ in range(100):
            await bucket.wait(5)

    run(main())
    assert clock.sleeps == []


def test_wait_timeout_fails_at_once(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(1, 1, clock=clock, sleep=clock.sleep)
    assert bucket.allow()

    async def main() -> None:
        await bucket.wait(timeout=0.5)

    with pytest.raises(RateLimitTimeout) as info:
        run(main())
    assert isinstance(info.value, TimeoutError)
    assert info.value.delay == pytest.approx(1.0)
    assert info.value.timeout == 0.5
    assert clock.sleeps == []  # failed without waiting
    assert clock.now() == 0
    assert bucket.tokens() == pytest.approx(0)  # and took nothing


def test_wait_within_timeout(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(1, 1, clock=clock, sleep=clock.sleep)
    bucket.allow()
    run(bucket.wait(timeout=1.0))
    assert clock.now() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="timeout"):
        run(bucket.wait(timeout=-1))


def test_cancelled_wait_refunds_its_tokens(run: Run, clock: FakeClock) -> None:
    started = []

    async def blocking_sleep(delay: float) -> None:
        started.append(delay)
        await asyncio.Event().wait()  # never set: only cancellation ends it

    bucket = TokenBucket(1, 2, clock=clock, sleep=blocking_sleep)
    assert bucket.allow(2)

    async def main() -> None:
        task = asyncio.ensure_future(bucket.wait(2))
        while not started:
            await asyncio.sleep(0)
        assert bucket.tokens() == pytest.approx(-2)  # reserved on credit
        clock.advance(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert started == [2.0]
    # The 2 tokens came back: 0.5 s of refill is all the bucket holds.
    assert bucket.tokens() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.allow()


def test_cancelled_wait_does_not_refund_tokens_claimed_later(run: Run, clock: FakeClock) -> None:
    started = []

    async def blocking_sleep(delay: float) -> None:
        started.append(delay)
        await asyncio.Event().wait()

    bucket = TokenBucket(10, 1, clock=clock, sleep=blocking_sleep)
    assert bucket.allow()

    async def main() -> None:
        first = asyncio.ensure_future(bucket.wait())  # acts at 0.1
        second = asyncio.ensure_future(bucket.wait())  # acts at 0.2
        while len(started) < 2:
            await asyncio.sleep(0)
        assert bucket.tokens() == pytest.approx(-2)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # x/time/rate semantics: the second wait's time was computed counting
        # on the first one's token, so that token is not handed back.
        assert bucket.tokens() == pytest.approx(-2)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert bucket.tokens() == pytest.approx(-1)  # its own token came back

    run(main())
    assert started == pytest.approx([0.1, 0.2])


def test_block_until_during_wait_is_honoured(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(10, 1, clock=clock, sleep=clock.sleep)
    bucket.allow()

    async def main() -> None:
        task = asyncio.ensure_future(bucket.wait())  # reserved for t=0.1
        await asyncio.sleep(0)
        bucket.block_until(5.0)  # Retry-After arrives meanwhile
        await task

    run(main())
    assert clock.now() == pytest.approx(5.0)


def test_block_until_during_wait_past_timeout(run: Run, clock: FakeClock) -> None:
    bucket = TokenBucket(10, 1, clock=clock, sleep=clock.sleep)
    bucket.allow()

    async def main() -> None:
        task = asyncio.ensure_future(bucket.wait(timeout=1))
        await asyncio.sleep(0)
        bucket.block_until(5.0)
        await task

    with pytest.raises(RateLimitTimeout):
        run(main())
    assert clock.now() == pytest.approx(0.1)


def test_fake_clock_sleep_concurrent_sleepers_never_wake_early(run: Run) -> None:
    clock = FakeClock(10)

    async def sleeper(dt: float) -> float:
        await clock.sleep(dt)
        return clock.now()

    async def main() -> list[float]:
        return list(await asyncio.gather(sleeper(1), sleeper(1), sleeper(2)))

    woke = run(main())
    assert [w >= 10 + dt for w, dt in zip(woke, [1, 1, 2], strict=True)] == [True] * 3
    assert clock.now() == 12
    with pytest.raises(ValueError, match="dt"):
        clock.advance(-1)


# -- callback style, as Twisted code uses it -------------------------------------


def test_reserve_with_twisted_deferlater() -> None:
    from twisted.internet import defer, task

    reactor_clock = task.Clock()  # a fake reactor for callLater
    bucket = TokenBucket(10, 1, clock=reactor_clock.seconds)
    fired: list[tuple[int, float]] = []
    reservations = []
    deferreds = []
    for i in range(4):
        r = bucket.reserve()
        d = task.deferLater(
            reactor_clock, r.delay, lambda i=i: fired.append((i, reactor_clock.seconds()))
        )

        def refund(failure: Any, r: Any = r) -> None:
            failure.trap(defer.CancelledError)
            r.cancel()

        d.addErrback(refund)
        reservations.append(r)
        deferreds.append(d)

    assert [r.delay for r in reservations] == pytest.approx([0, 0.1, 0.2, 0.3])
    reactor_clock.advance(0)
    reactor_clock.advance(0.15)
    reactor_clock.advance(0.1)
    assert [i for i, _ in fired] == [0, 1, 2]
    assert [at for _, at in fired] == pytest.approx([0.0, 0.15, 0.25])
    deferreds[3].cancel()  # at 0.25 the last one gives up: its token comes back
    assert reservations[3].cancelled
    reactor_clock.advance(1)
    assert [i for i, _ in fired] == [0, 1, 2]
    # Without request 3's debt the bucket was full again at 0.3 s.
    assert bucket.tokens_at(0.3) == pytest.approx(1)
