"""The token bucket: :class:`TokenBucket` and its :class:`Reservation`.

Modelled on Go's ``golang.org/x/time/rate``: there is no ticker. The bucket
stores the instant at which it will be full again and derives the current
number of tokens lazily from the clock, capped at ``burst``. A request may
take tokens "on credit" (the count goes negative); the deficit divided by the
rate is the time it has to wait.
"""

from __future__ import annotations

import asyncio
import math
import operator
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Protocol

__all__ = ["INF", "RateLimitTimeout", "Reservation", "TokenBucket"]

#: A rate meaning "unlimited": the bucket ignores ``burst`` and allows everything.
INF: Final[float] = math.inf

#: Token amounts closer than this to what is needed count as enough. Without it
#: float rounding (``(0.7 - 0.6) * 10 == 0.9999999999999998``) would deny a
#: request that arrives exactly on time. The shortfall stays in the bucket as a
#: debt, so the tolerance never adds up to an extra grant.
_EPS: Final[float] = 1e-9

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


class RateLimitTimeout(TimeoutError):
    """Raised by :meth:`TokenBucket.wait` when the wait would exceed its timeout.

    It is raised at once, without waiting, as soon as the needed delay is known
    to be too long; no tokens are taken.
    """

    def __init__(self, delay: float, timeout: float) -> None:
        super().__init__(
            f"rate limit: a wait of {delay:.3f}s exceeds the timeout of {timeout:.3f}s"
        )
        #: Seconds the request would have had to wait.
        self.delay = delay
        #: The timeout that was given.
        self.timeout = timeout


def _check_rate(rate: float) -> float:
    if not rate > 0:  # also rejects NaN
        raise ValueError(f"rate must be > 0 tokens/second (or INF), got {rate!r}")
    return float(rate)


def _check_burst(burst: int) -> int:
    try:
        value = operator.index(burst)
    except TypeError:
        value = 0
    if value < 1:
        raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
    return value


def _check_wait(value: float, name: str) -> float:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)


class TokenBucket:
    """A thread-safe token bucket that refills at ``rate`` tokens per second.

    The bucket holds at most ``burst`` tokens; each granted request takes ``n``
    tokens (default 1). Tokens are computed lazily from ``clock`` (no thread, no
    task), so an idle bucket costs nothing.

    **Initial fill.** The bucket starts with ``burst`` tokens unless
    ``initial_tokens`` says otherwise, so at most ``burst`` requests pass at
    once at start, then one every ``1 / rate`` seconds: ``TokenBucket(20, 1)``
    grants exactly one request at t=0, then one at 0.05 s, 0.10 s, ... By time
    ``t`` at most ``burst + rate * t`` tokens have been granted. Keep ``burst``
    small (or pass ``initial_tokens=0``) if a full first second would be a
    problem: ``TokenBucket(10, 10)`` lets 20 requests through in its first
    second.

    **Clock going backwards.** As in x/time/rate, an instant earlier than the
    last one seen counts as no time elapsed: no tokens are added and none are
    lost. The forms without ``_at`` read the clock while holding the lock, so
    concurrent callers never see time go backwards.

    **Fairness.** Requests are served in the order they reserve: a large
    request that had to wait is not overtaken by small ones that come later.

    :param rate: Refill rate in tokens per second, ``> 0``. :data:`INF` means
        unlimited: ``burst`` is ignored, every request is granted at once (except
        while :meth:`block_until` holds the bucket).
    :param burst: Capacity of the bucket, an integer ``>= 1``: the largest number
        of tokens granted at one instant and the largest ``n`` one request may
        ask for (with a finite rate).
    :param clock: Returns the current time in seconds. Must be monotonic; the
        default is :func:`time.monotonic`. Tests pass a
        :class:`~scraper_project.ratelimit.testing.FakeClock`.
    :param sleep: Awaited by :meth:`wait` to pause for a number of seconds; the
        default is :func:`asyncio.sleep`. Tests pass ``FakeClock.sleep``.
    :param initial_tokens: Tokens in the bucket when it is created, between 0 and
        ``burst``; ``None`` (the default) means ``burst``.
    """

    # State, in "theoretical arrival time" form (GCRA, equivalent to a token
    # bucket and cheaper to update): ``_tat`` is the instant at which the bucket
    # will be full again, so at instant ``now >= _last`` it holds
    # ``burst - max(0, _tat - now) * rate`` tokens (negative: owed to
    # reservations). ``_last`` is the instant of the last update, used only to
    # neutralise a clock going backwards.
    __slots__ = (
        "_acquire",
        "_blocked_until",
        "_burst",
        "_clock",
        "_full_time",
        "_interval",
        "_last",
        "_last_event",
        "_lock",
        "_rate",
        "_release",
        "_slack",
        "_sleep",
        "_tat",
        "_tol",
    )

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        initial_tokens: float | None = None,
    ) -> None:
        burst = _check_burst(burst)
        self._configure(_check_rate(rate), burst)
        if initial_tokens is None:
            initial_tokens = burst
        elif not 0 <= initial_tokens <= burst:
            raise ValueError(
                f"initial_tokens must be between 0 and burst={burst}, got {initial_tokens!r}"
            )
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._tat = now + (burst - initial_tokens) * self._interval
        self._last = now
        self._last_event = now  # the latest time_to_act handed out (for cancel)
        self._blocked_until = -INF
        self._lock = threading.Lock()
        # Bound methods cached: ``self._acquire()`` is cheaper than both
        # ``self._lock.acquire()`` and ``with self._lock`` on CPython 3.11.
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rate={self._rate!r} burst={self._burst!r} "
            f"tokens={self._tokens(None):.3f}>"
        )

    # -- configuration -------------------------------------------------------

    @property
    def rate(self) -> float:
        """The refill rate in tokens per second (:data:`INF`: unlimited)."""
        return self._rate

    @property
    def burst(self) -> int:
        """The capacity of the bucket."""
        return self._burst

    @property
    def blocked_until(self) -> float:
        """The instant set by :meth:`block_until`, ``-INF`` if never blocked."""
        return self._blocked_until

    @property
    def clock(self) -> Clock:
        """The clock the bucket reads."""
        return self._clock

    def is_blocked(self) -> bool:
        """Whether a pause set by :meth:`block_until` is in force now."""
        return self._blocked_until > self._clock()

    def set_rate(self, rate: float) -> None:
        """Change the rate now; shorthand for ``set_rate_at(clock(), rate)``."""
        self._set_rate(None, rate)

    def set_rate_at(self, now: float, rate: float) -> None:
        """Change the rate at instant ``now``.

        Tokens are first brought up to date at the old rate, then the new rate
        applies from ``now`` on (Go's ``SetLimitAt``): the bucket holds as many
        tokens after the change as before. Reservations already handed out keep
        their times. A bucket leaving :data:`INF` starts full. While a
        :meth:`block_until` pause is in force its deadline is kept (the tokens
        due at the deadline are what is preserved).

        :param now: The instant of the change, from the bucket's clock.
        :param rate: The new rate in tokens per second, ``> 0`` or :data:`INF`.
        """
        self._set_rate(now, rate)

    def _set_rate(self, now: float | None, rate: float) -> None:
        rate = _check_rate(rate)
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            old = self._rate
            start = self._start(now)
            blocked = self._blocked_until
            pivot = blocked if now < blocked else now
            if old == INF:
                tat = pivot  # leaving INF: full, apart from a pause
            else:
                ahead = start - pivot
                tat = pivot + ahead * (old / rate) if ahead > 0 else pivot
            self._configure(rate, self._burst)
            self._store(now, tat)
        finally:
            self._release()

    def set_burst(self, burst: int) -> None:
        """Change the burst now; shorthand for ``set_burst_at(clock(), burst)``."""
        self._set_burst(None, burst)

    def set_burst_at(self, now: float, burst: int) -> None:
        """Change the capacity at instant ``now``.

        Tokens are first brought up to date, then capped at the new burst (Go's
        ``SetBurstAt``).

        :param now: The instant of the change, from the bucket's clock.
        :param burst: The new capacity, an integer ``>= 1``.
        """
        self._set_burst(now, burst)

    def _set_burst(self, now: float | None, burst: int) -> None:
        burst = _check_burst(burst)
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            start = self._start(now)
            # Tokens now: old_burst - (start - now) * rate; keep them, capped.
            ahead = (burst - self._burst) * self._interval + (start - now)
            self._configure(self._rate, burst)
            self._store(now, now + ahead if ahead > 0 else now)
        finally:
            self._release()

    def block_until(self, deadline: float) -> None:
        """Grant nothing before ``deadline``; shorthand for ``block_until_at``."""
        self._block_until(None, deadline)

    def block_for(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` from now (``block_until(clock() + seconds)``)."""
        self._block_until(None, self._clock() + seconds)

    def block_until_at(self, now: float, deadline: float) -> None:
        """Pause the bucket, as of instant ``now``, until instant ``deadline``.

        No request is granted before ``deadline`` (for instance to honour a
        ``Retry-After`` for a whole domain). The bucket resumes gently: at
        ``deadline`` it holds a single token and refills from there at ``rate``
        as usual, so one request goes at ``deadline`` and later ones follow at
        the rate. Requests reserved during the pause queue up after it in order.
        A deadline earlier than one already in force, or not after ``now``, does
        nothing: a pause is never shortened.

        Reservations handed out *before* the call keep their times; :meth:`wait`
        re-checks the pause after sleeping, so awaiting callers honour it, but
        callback-style users of :meth:`reserve` should check
        :attr:`blocked_until` themselves.

        :param now: The current instant, from the bucket's clock.
        :param deadline: The instant, on the bucket's clock, from which requests
            may be granted again.
        """
        self._block_until(now, deadline)

    def _block_until(self, now: float | None, deadline: float) -> None:
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            if deadline <= now or deadline <= self._blocked_until:
                return
            self._blocked_until = deadline
            self._store(now, self._start(now))
        finally:
            self._release()

    # -- reading -------------------------------------------------------------

    def tokens(self) -> float:
        """Tokens available now; shorthand for ``tokens_at(clock())``."""
        return self._tokens(None)

    def tokens_at(self, now: float) -> float:
        """Tokens the bucket holds at instant ``now`` (negative: owed).

        An unlimited bucket reports :data:`INF`, or ``0.0`` while blocked.

        :param now: The instant, from the bucket's clock.
        """
        return self._tokens(now)

    def _tokens(self, now: float | None) -> float:
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            ahead = self._start(now) - now
            if self._rate == INF:
                return INF if ahead <= 0 else 0.0
            return self._burst - ahead * self._rate
        finally:
            self._release()

    # -- taking tokens -------------------------------------------------------

    def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they are available now; never waits.

        Shorthand for ``allow_at(clock(), n)``.

        :param n: Tokens to take, ``1 <= n <= burst``.
        """
        # The hot path, specialised for n == 1 (always valid: burst >= 1). It
        # must give the same answers as allow_at(); the tests check both.
        if n != 1:
            return self._allow_n(None, n)
        self._acquire()
        try:
            # Read inside the lock, so that concurrent callers' readings reach
            # the state in order (else a late one would look like a clock
            # going backwards).
            now = self._clock()
            tat = self._tat
            if tat <= now:  # full bucket
                self._tat = now + self._interval
                self._last = now
                return True
            last = self._last
            if now < last:  # the clock went backwards: no time elapsed
                tat = max(tat - (last - now), now)
            if tat - now > self._slack:
                return False
            self._tat = tat + self._interval
            self._last = now
            return True
        finally:
            self._release()

    def allow_at(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens if they are available at instant ``now``.

        Like Go's ``AllowN(t, n)``: a reservation that must not wait. On refusal
        the bucket is left unchanged.

        :param now: The instant of the request, from the bucket's clock.
        :param n: Tokens to take, ``1 <= n <= burst`` (any ``n >= 1`` when the
            rate is :data:`INF`).
        :raises ValueError: if ``n`` is out of range.
        """
        return self._allow_n(now, n)

    def _allow_n(self, now: float | None, n: int) -> bool:
        if n != 1:
            self._check_n(n)
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            ahead = self._start(now) - now + n * self._interval
            if ahead - self._full_time > self._tol:
                return False
            self._tat = now + ahead
            self._last = now
            return True
        finally:
            self._release()

    def reserve(self, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """Take ``n`` tokens now, on credit; shorthand for ``reserve_at``.

        :param n: Tokens to take, ``1 <= n <= burst``.
        :param max_wait: Refuse (``ok`` false) if the wait would be longer.
        """
        return self._reserve(None, n, max_wait)

    def reserve_at(self, now: float, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """Take ``n`` tokens at instant ``now``, on credit, like Go's ``ReserveN``.

        The tokens are taken at once even if the bucket does not hold them; the
        returned :class:`Reservation` says how long the caller must wait before
        acting (:attr:`Reservation.delay`). The caller either waits that long
        and acts, or calls :meth:`Reservation.cancel` to hand the tokens back.
        Later reservations queue up behind earlier ones.

        This is the callback-style entry point for code that does not use
        asyncio, e.g. Twisted::

            r = bucket.reserve()
            d = task.deferLater(reactor, r.delay, fetch, url)
            d.addErrback(lambda f: (r.cancel(), f)[1])  # refund if cancelled

        :param now: The instant of the request, from the bucket's clock.
        :param n: Tokens to take, ``1 <= n <= burst`` (any ``n >= 1`` when the
            rate is :data:`INF`).
        :param max_wait: The longest acceptable wait in seconds. If the wait
            would be longer, nothing is taken and the reservation is not
            :attr:`~Reservation.ok` (its ``delay`` still tells how long it would
            have been). ``0`` makes this a non-blocking :meth:`allow_at`.
        :raises ValueError: if ``n`` or ``max_wait`` is out of range.
        """
        return self._reserve(now, n, max_wait)

    def _reserve(self, now: float | None, n: int, max_wait: float) -> Reservation:
        if n != 1:
            self._check_n(n)
        if max_wait != INF:
            max_wait = _check_wait(max_wait, "max_wait")
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            ahead = self._start(now) - now + n * self._interval
            wait = ahead - self._full_time
            tol = self._tol
            act = now + wait if wait > tol else now
            ok = wait <= max_wait + tol
            if ok:
                self._tat = now + ahead
                self._last = now
                self._last_event = act
            rate = self._rate
        finally:
            self._release()
        return Reservation(self, ok, n, now, act, rate)

    async def wait(self, n: int = 1, timeout: float | None = None) -> None:
        """Wait until ``n`` tokens are granted (asyncio).

        Works anywhere ``sleep`` works, including Scrapy on Twisted's asyncio
        reactor. If the awaiting task is cancelled, its reservation is cancelled
        (unclaimed tokens are refunded) and :exc:`asyncio.CancelledError`
        propagates.

        :param n: Tokens to take, ``1 <= n <= burst``.
        :param timeout: The longest acceptable wait in seconds; ``None`` waits
            as long as needed.
        :raises RateLimitTimeout: at once, without waiting or taking tokens, if
            the wait would exceed ``timeout`` (or, rarely, if a
            :meth:`block_until` issued during the wait pushes it past
            ``timeout``; the tokens are then handed back if still unused).
        :raises ValueError: if ``n`` or ``timeout`` is out of range.
        """
        max_wait = INF if timeout is None else _check_wait(timeout, "timeout")
        clock = self._clock
        r = self._reserve(None, n, max_wait)
        start = r.reserved_at
        if not r.ok:
            raise RateLimitTimeout(r.delay, max_wait)
        delay = r.time_to_act - start
        if delay <= 0:
            return
        try:
            await self._sleep(delay)
            # A block_until() issued while we slept holds for us too.
            while (now := clock()) < (blocked := self._blocked_until):
                if blocked - start > max_wait:
                    raise RateLimitTimeout(blocked - start, max_wait)
                await self._sleep(blocked - now)
        except BaseException:
            r.cancel()
            raise

    async def __aenter__(self) -> None:
        """``async with bucket:`` waits for one token, like ``await wait()``."""
        await self.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    # -- internals (called with the lock held unless noted) ------------------

    def _configure(self, rate: float, burst: int) -> None:
        """Set rate and burst and the derived constants of the hot path."""
        interval = 0.0 if rate == INF else 1.0 / rate
        self._rate = rate
        self._burst = burst
        self._interval = interval  # seconds per token
        self._full_time = burst * interval  # seconds to refill from empty
        self._tol = interval * _EPS
        # allow(): refuse when the bucket is fuller-than-full by more than this.
        self._slack = (burst - 1) * interval + self._tol

    def _check_n(self, n: int) -> None:
        # Called without the lock: reads of single attributes are atomic.
        if not n >= 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        if n > self._burst and self._rate != INF:
            raise ValueError(f"n={n!r} exceeds burst={self._burst}: it could never be granted")

    def _start(self, now: float) -> float:
        """When a request at ``now`` starts to count: ``max(now, tat)``.

        ``(_start(now) - now) * rate`` is how many tokens short of full the
        bucket is at ``now``. Before ``_last`` (a clock gone backwards) the
        bucket is taken as it was at ``_last``.
        """
        tat = self._tat
        last = self._last
        if now < last:
            tat -= last - now
        return tat if tat > now else now

    def _store(self, now: float, tat: float) -> None:
        """Set the state at ``now``, enforcing a pause in force.

        A pause is stored as a debt: until ``_blocked_until`` the bucket holds
        at most ``1 - rate * (deadline - now)`` tokens, so the first token
        comes exactly at the deadline. This keeps reservations, cancellations
        and waits free of special cases.
        """
        blocked = self._blocked_until
        if now < blocked:
            floor = blocked + (self._burst - 1) * self._interval
            tat = max(tat, floor)
        self._tat = tat
        self._last = now

    def _is_full_at(self, now: float) -> bool:
        """Whether the bucket is as a new one would be: full, no pause, no debt."""
        self._acquire()
        try:
            return self._start(now) - now <= self._tol
        finally:
            self._release()

    def _cancel(self, r: Reservation, now: float | None) -> None:
        """Refund what ``r`` took and later reservations did not claim.

        x/time/rate's ``CancelAt``: reservations made after ``r`` were computed
        against a bucket already short of ``r``'s tokens, so they claimed
        ``rate * (last_event - r.time_to_act)`` of them; only the rest goes
        back (capped at ``burst``). If ``r`` was the last reservation,
        ``last_event`` steps back to the one before it.
        """
        self._acquire()
        try:
            if now is None:
                now = self._clock()
            rate = r.rate
            if INF in (rate, self._rate) or r.time_to_act < now:
                return
            restore = r.tokens - rate * (self._last_event - r.time_to_act)
            if restore <= 0:
                return
            tat = self._start(now) - restore * self._interval
            self._store(now, tat if tat > now else now)
            if r.time_to_act == self._last_event:
                previous = r.time_to_act - r.tokens / rate
                if previous >= now:
                    self._last_event = previous
        finally:
            self._release()


class _Refunds(Protocol):
    def _cancel(self, r: Reservation, now: float | None) -> None: ...


class Reservation:
    """Tokens taken on credit by :meth:`TokenBucket.reserve`.

    The holder should wait :attr:`delay` seconds and then act, or call
    :meth:`cancel` if it will not act. Instances are created by the bucket.
    """

    __slots__ = ("_bucket", "_cancelled", "_ok", "_rate", "_time", "_to_act", "_tokens")

    def __init__(  # noqa: PLR0917 (positional: it is made on every reserve)
        self,
        bucket: _Refunds,
        ok: bool,
        tokens: int,
        reserved_at: float,
        time_to_act: float,
        rate: float,
    ) -> None:
        self._bucket = bucket
        self._ok = ok
        self._tokens = tokens
        self._time = reserved_at
        self._to_act = time_to_act
        self._rate = rate
        self._cancelled = False

    def __repr__(self) -> str:
        return (
            f"<Reservation ok={self._ok} tokens={self._tokens} "
            f"delay={self.delay:.6f} cancelled={self._cancelled}>"
        )

    @property
    def ok(self) -> bool:
        """Whether the tokens were taken (false: the wait exceeded ``max_wait``)."""
        return self._ok

    @property
    def tokens(self) -> int:
        """The number of tokens asked for."""
        return self._tokens

    @property
    def rate(self) -> float:
        """The bucket's rate when the reservation was made."""
        return self._rate

    @property
    def reserved_at(self) -> float:
        """The instant the reservation was made, on the bucket's clock."""
        return self._time

    @property
    def time_to_act(self) -> float:
        """The instant, on the bucket's clock, from which the holder may act."""
        return self._to_act

    @property
    def delay(self) -> float:
        """Seconds to wait, counted from :attr:`reserved_at`; 0 means act now.

        For a reservation that is not :attr:`ok`, the wait it would have needed
        (e.g. for a ``Retry-After`` header).
        """
        d = self._to_act - self._time
        return d if d > 0 else 0.0

    def delay_from(self, now: float) -> float:
        """Seconds still to wait at instant ``now`` (0 if the time has come).

        :param now: The instant, from the bucket's clock.
        """
        d = self._to_act - now
        return d if d > 0 else 0.0

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._cancelled

    def cancel(self) -> None:
        """Hand the tokens back now; shorthand for ``cancel_at(clock())``."""
        if not self._ok or self._cancelled:
            return
        self._cancelled = True
        self._bucket._cancel(self, None)

    def cancel_at(self, now: float) -> None:
        """Hand back, at instant ``now``, the tokens nobody has claimed since.

        Does nothing if the reservation is not :attr:`ok`, was already
        cancelled, or its :attr:`time_to_act` is before ``now`` (it is treated
        as used). Otherwise the tokens return to the bucket, minus those that
        later reservations already counted on (see ``TokenBucket._cancel``).

        :param now: The instant, from the bucket's clock.
        """
        if not self._ok or self._cancelled:
            return
        self._cancelled = True
        self._bucket._cancel(self, now)
