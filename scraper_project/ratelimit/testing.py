"""Test helpers: a fake clock so that rate-limited code is tested without sleeping.

Example::

    from scraper_project.ratelimit import TokenBucket
    from scraper_project.ratelimit.testing import FakeClock

    clock = FakeClock()
    bucket = TokenBucket(20, 1, clock=clock, sleep=clock.sleep)
    assert bucket.allow() and not bucket.allow()
    clock.advance(0.05)
    assert bucket.allow()
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that only moves when told to.

    Pass the instance itself (it is callable) or :meth:`now` as a ``clock``,
    and :meth:`sleep` as a ``sleep``.

    :param start: The initial reading, in seconds.
    """

    __slots__ = ("_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        #: Every duration passed to :meth:`sleep`, in order.
        self.sleeps: list[float] = []

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now!r}>"

    def __call__(self) -> float:
        """The current reading; same as :meth:`now`."""
        return self._now

    def now(self) -> float:
        """The current reading, in seconds."""
        return self._now

    def advance(self, dt: float) -> float:
        """Move the clock forward and return the new reading.

        :param dt: Seconds to move forward, ``>= 0``.
        """
        if not dt >= 0:
            raise ValueError(f"dt must be >= 0, got {dt!r}; use set() to go back")
        self._now += dt
        return self._now

    def set(self, t: float) -> None:
        """Set the reading, backwards too (to test a misbehaving clock).

        :param t: The new reading, in seconds.
        """
        self._now = float(t)

    async def sleep(self, dt: float) -> None:
        """An :func:`asyncio.sleep` replacement that moves the clock instead.

        Records ``dt`` in :attr:`sleeps`, yields to the event loop once, then
        moves the clock to (at least) the wake-up time. Concurrent sleepers each
        move it to their own wake-up time, so they may wake late, never early.

        :param dt: Seconds to sleep; negative counts as 0.
        """
        self.sleeps.append(dt)
        wake = self._now + max(dt, 0.0)
        await asyncio.sleep(0)
        self._now = max(self._now, wake)
