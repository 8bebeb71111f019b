"""Adaptive rates: each key's rate learnt from the server's answers.

:class:`AdaptiveRate` is the control law, a few floats per key and no clock of
its own (every method takes the instant ``now``), so it is tested without
sleeping. :class:`AdaptiveBuckets` pairs one law with one
:class:`~scraper_project.ratelimit.TokenBucket` per key and keeps the bucket's
rate equal to the law's.

**The law** (figures and reasons in notes/adaptive.md):

* A key starts at its configured rate, or unlimited. The configured rate is
  also its ceiling: the law only ever lowers it and grows back up to it.
* *Throttle* (a 429 or 503 to a request sent at rate ``W``): the server's
  limit is taken to be ``U = W``, or, when the key has been sending for a
  whole window, the rate of clean answers over the last window when that is
  lower (at least ``W / 2``): what the server accepted is a better guess of
  its limit than what was sent while overshooting. The rate is cut to
  ``beta * U``. Only one cut per *epoch*: answers to requests sent before the
  last change of rate say nothing about the new rate and are ignored. An
  unlimited key's first throttle sets ``start`` (or ``beta`` times the
  accepted rate, if higher) and no ceiling.
* *Growth* happens only in clean time: each clean answer to a request that had
  to wait for its token (the rate, not the latency, was the bottleneck)
  counts ``1 / rate`` seconds. Without a known ceiling the rate doubles every
  ``double_time`` clean seconds (slow start). With one it approaches
  ``U * (1 - margin)`` from below, halving the distance every ``half_life``
  clean seconds, and stays there; after ``hold`` clean seconds it creeps
  above
  by ``creep * U`` per clean second to find out whether the limit went up.
* *Hint* (the server states its quota, ``RateLimit-Policy`` and friends):
  ``U`` is that quota and the rate goes straight to ``U * (1 - margin)``; no
  creeping above a stated quota.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ._bucket import INF, Clock, Reservation, Sleep, TokenBucket, _check_burst, _check_rate

__all__ = ["AdaptiveBuckets", "AdaptiveConfig", "AdaptiveRate", "Learnt"]

#: Slots of the window over which clean answers are counted: the count is
#: exact to a tenth of the window (a coarser estimate, interpolating one
#: previous window, erred by 7 % against a fixed-window server).
SLOTS = 10
#: Fewest clean answers in a window for their count to be used as a measure
#: of the server's limit (1 in 20: 5 %), unless they fall short of what was
#: sent by more than two.
MIN_COUNT = 20


@dataclass(frozen=True)
class AdaptiveConfig:
    """The parameters of the law; see the module docstring.

    :param start: Rate after the first throttle of an unlimited key.
    :param min_rate: The law never goes below this.
    :param max_rate: Nor above this (:data:`INF`: no bound but the key's own).
    :param beta: Cut factor on a throttle, ``0 < beta < 1``.
    :param margin: Settle this share below the ceiling, ``0 <= margin < 1``.
    :param half_life: Clean seconds to halve the distance to the target.
    :param double_time: Clean seconds for the rate to double in slow start.
    :param hold: Clean seconds at the target before creeping above it.
    :param creep: Share of the ceiling added per clean second once creeping.
    :param window: Seconds over which clean answers are counted.
    :param near: Repeated throttles below the target (and no measure of
        what the server accepted) walk a known ceiling down by this share.
    :param isolated: A throttle below the target counts as noise (a stall
        bunched requests: the rate steps back by ``margin``, the ceiling
        stays) unless the last one did too, less than this many clean
        seconds ago.
    """

    start: float = 4.0
    min_rate: float = 0.5
    max_rate: float = INF
    beta: float = 0.8
    margin: float = 0.03
    half_life: float = 0.5
    double_time: float = 0.7
    hold: float = 30.0
    creep: float = 0.01
    window: float = 1.0
    near: float = 0.1
    isolated: float = 5.0

    def __post_init__(self) -> None:
        _check_rate(self.start)
        _check_rate(self.min_rate)
        _check_rate(self.max_rate)
        if self.min_rate > self.max_rate:
            raise ValueError(f"min_rate {self.min_rate!r} exceeds max_rate {self.max_rate!r}")
        if not 0 < self.beta < 1:
            raise ValueError(f"beta must be between 0 and 1, got {self.beta!r}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin!r}")
        for name in ("half_life", "double_time", "window"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if not (self.hold >= 0 and self.creep >= 0):
            raise ValueError("hold and creep must be >= 0")


@dataclass(frozen=True)
class Learnt:
    """A key's learnt state, for stats and logs."""

    key: str
    rate: float
    ceiling: float  # 0: unknown
    throttles: int
    hinted: bool


class AdaptiveRate:
    """The control law of one key; see the module docstring.

    :param config: The parameters.
    :param rate: The key's configured rate: where it starts, and its ceiling
        (:data:`INF`: unlimited until the server says otherwise).
    :param now: The instant of creation (starts the first counting window).
    """

    __slots__ = (
        "base",
        "ceiling",
        "config",
        "epoch",
        "epoch_clean",
        "hint_value",
        "max_rate",
        "paused_from",
        "rate",
        "since",
        "slot_start",
        "slots",
        "stepped",
        "tau",
        "throttles",
    )

    def __init__(self, config: AdaptiveConfig, rate: float = INF, now: float = 0.0) -> None:
        self.config = config
        #: The most this key may get: its configured rate, within max_rate.
        self.max_rate = min(_check_rate(rate), config.max_rate)
        #: The current rate (requests/second); INF: unlimited.
        self.rate = self.max_rate
        #: The server's estimated limit; 0: unknown.
        self.ceiling = 0.0
        #: Whether the last throttle was taken for noise (a step back).
        self.stepped = False
        #: Changes of rate by a throttle or a hint; answers to requests of an
        #: older epoch are stale.
        self.epoch = 0
        #: Clean seconds since the last change; the rate at its start.
        self.tau = 0.0
        self.base = self.rate
        #: The quota the server last stated (0: none).
        self.hint_value = 0.0
        self.throttles = 0
        #: Start of the current epoch (or the end of a pause in it), and the
        #: clean answers counted since.
        self.since = now
        self.epoch_clean = 0
        #: (since, epoch_clean) before the pause in force, if any.
        self.paused_from: tuple[float, int] | None = None
        #: Clean answers counted in SLOTS slots covering the last window; the
        #: start of the newest slot.
        self.slots = [0] * SLOTS
        self.slot_start = now

    def __repr__(self) -> str:
        return (
            f"<AdaptiveRate rate={self.rate!r} ceiling={self.ceiling!r} "
            f"epoch={self.epoch} tau={self.tau:.3f}>"
        )

    # -- events ------------------------------------------------------------

    def clean(self, now: float, n: int = 1, bound: int = 1) -> float:
        """``n`` clean answers, ``bound`` of them to requests that waited for
        their token; return the rate.

        :param now: The instant, on the caller's clock.
        :param n: Clean answers (counted for the accepted rate).
        :param bound: How many of them count as clean time.
        """
        self._count(now, n)
        if now >= self.since:
            self.epoch_clean += n
        rate = self.rate
        if bound > 0 and rate != INF:
            self.tau += bound / rate
            rate = self.rate = self._curve()
        return rate

    def throttle(self, now: float, epoch: int, sent_rate: float, on_pace: bool = True) -> bool:
        """A 429/503 to a request sent at ``sent_rate`` in ``epoch``.

        Returns whether the rate was cut (false: a stale answer, or one to a
        request that left in a bunch while the rate was below the ceiling).

        :param now: The instant, on the caller's clock.
        :param epoch: :attr:`epoch` when the request took its token.
        :param sent_rate: :attr:`rate` when the request took its token.
        :param on_pace: False if the request left right after the one before
            (a stall let parked requests out together): a refusal then says
            nothing about the rate, unless it was above the known ceiling
            (or none is known: slow start counts every refusal).
        """
        if epoch != self.epoch:
            return False
        if not on_pace and 0 < sent_rate <= self.ceiling:
            return False
        config = self.config
        accepted = self.accepted(now)
        if now < self.since and self.paused_from is not None:
            # A pause (an earlier answer's Retry-After) began a moment ago:
            # what was counted before it still measures the server.
            self.since, self.epoch_clean = self.paused_from
        # The count of one window measures the server when it is big enough
        # for a count off by one not to matter.
        counted = accepted * config.window >= MIN_COUNT
        trusted = counted and now - self.since >= config.window
        stepped = False
        if INF in (sent_rate, self.rate):
            # Unlimited until now: whatever was accepted says little (the
            # crawl's own pace, or a windowed limiter's bursts); slow start.
            rate = config.start
            self.ceiling = 0.0
        else:
            previous = self.ceiling
            if previous > 0:
                # With a known ceiling the rate was about steady since the
                # epoch began: its average is a second measure. Each errs
                # high in its own way against a windowed limiter (a window's
                # count straddles two of its windows; an epoch that began
                # with a pause began with a window's unused quota): the
                # lower one.
                span = now - self.since
                if span >= config.window / 2 and _measurable(self.epoch_clean, sent_rate * span):
                    average = self.epoch_clean / span
                    # Over two windows or more the average alone (the lower
                    # of two noisy measures is biased low); over less, the
                    # lower one.
                    long = span >= 2 * config.window
                    accepted = average if long or not trusted else min(accepted, average)
                    trusted = True
            limit = sent_rate
            # Only a clear shortfall is a measure of the server: an average
            # over an epoch that rose to the target and stayed there is what
            # was sent, a little below the send rate of the refused request.
            if (trusted or (previous <= 0 and counted)) and accepted < limit * (
                1 - 2 * config.margin
            ):
                # The send rate overshot by what grew while the answer
                # travelled (or, against a windowed limiter, until the window
                # filled); what the server accepted is closer (never below
                # half: one doubling of slow start; leaving slow start, even
                # a window cut short by a pause is better than the send rate).
                limit = max(accepted, 0.5 * sent_rate)
            if previous <= 0:  # leaving slow start
                self.ceiling = limit
                rate = config.beta * limit
            elif sent_rate >= previous * (1 - 2 * config.margin):
                # At the target (which is approached, never quite reached)
                # or past it: the limit is there (confirmed, or found higher
                # by creeping); a small step back is enough.
                self.ceiling = limit
                rate = limit * (1 - 2 * config.margin)
            elif trusted and accepted < previous * (1 - 2 * config.margin):
                # Refused below the target, and the server accepted clearly
                # less than the estimate: the estimate was too high, or the
                # limit went down. The measure instead.
                self.ceiling = limit
                rate = limit * (1 - 2 * config.margin)
            elif not self.stepped or self.tau >= config.isolated:
                # Refused below the target, the first time in a while, and
                # nothing shows the server took less: most likely a stall of
                # either side bunched a few requests. A step back, the
                # estimate kept.
                rate = min(self.rate, sent_rate) * (1 - config.margin)
                stepped = True
            else:
                # Refused below the target again soon: the limit went down.
                # Walk the estimate down by ``near`` per throttle.
                self.ceiling = max(limit, previous * (1 - config.near))
                rate = self.ceiling * (1 - 2 * config.margin)
        self.throttles += 1
        self.hint_value = 0.0
        self._restart(now, rate)
        self.stepped = stepped
        return True

    def hint(self, now: float, quota: float) -> bool:
        """The server states a quota of ``quota`` requests/second.

        Returns whether the rate changed (a quota already stated changes
        nothing).

        :param now: The instant, on the caller's clock.
        :param quota: Requests per second, ``> 0``.
        """
        if quota == self.hint_value or not quota > 0:
            return False
        self.hint_value = quota
        self.ceiling = quota
        self._restart(now, quota * (1 - self.config.margin))
        return True

    def pause(self, now: float, until: float) -> None:
        """The key is paused from ``now`` until ``until`` (``Retry-After``):
        the accepted rate is only measured over sending after it.

        :param now: The instant, on the caller's clock.
        :param until: The end of the pause, on the same clock.
        """
        if until <= self.since:
            return
        if now >= self.since:  # not within a pause: remember what was counted
            self.paused_from = (self.since, self.epoch_clean)
        self.since = until
        self.epoch_clean = 0

    # -- reading -----------------------------------------------------------

    def accepted(self, now: float) -> float:
        """Clean answers per second over the last window."""
        self._count(now, 0)
        return sum(self.slots) / self.config.window

    def learnt(self, key: str) -> Learnt:
        """A snapshot for stats and logs."""
        return Learnt(key, self.rate, self.ceiling, self.throttles, self.hint_value > 0)

    _STATE = (
        "rate",
        "ceiling",
        "epoch",
        "tau",
        "base",
        "hint_value",
        "throttles",
        "since",
        "epoch_clean",
        "stepped",
    )

    def to_state(self) -> dict[str, object]:
        """The state as a JSON-able dict (shared through Redis)."""
        state: dict[str, object] = {name: getattr(self, name) for name in self._STATE}
        state["slots"] = list(self.slots)
        state["slot_start"] = self.slot_start
        state["paused_from"] = None if self.paused_from is None else list(self.paused_from)
        return state

    def load_state(self, state: Mapping[str, object]) -> None:
        """Take over a state made by :meth:`to_state` (this law's own
        ``config`` and ``max_rate`` are kept: configuration is the caller's).

        :param state: From :meth:`to_state`.
        """
        for name in self._STATE:
            setattr(self, name, type(getattr(self, name))(state[name]))
        slots = state["slots"]
        assert isinstance(slots, list)
        assert len(slots) == SLOTS
        self.slots = [int(n) for n in slots]
        self.slot_start = float(state["slot_start"])  # type: ignore[arg-type]
        paused = state.get("paused_from")
        self.paused_from = (
            None if not isinstance(paused, list) else (float(paused[0]), int(paused[1]))
        )
        self.rate = min(self.rate, self.max_rate)

    # -- internals ---------------------------------------------------------

    def _restart(self, now: float, rate: float) -> None:
        config = self.config
        rate = min(max(rate, config.min_rate), self.max_rate)
        self.rate = self.base = rate
        self.tau = 0.0
        self.epoch += 1
        self.since = now
        self.epoch_clean = 0
        self.paused_from = None

    def _count(self, now: float, n: int) -> None:
        slot = self.config.window / SLOTS
        elapsed = now - self.slot_start
        if elapsed >= slot:
            steps = math.floor(elapsed / slot)
            slots = self.slots
            if steps >= SLOTS:
                slots[:] = [0] * SLOTS
            else:
                del slots[:steps]
                slots.extend([0] * steps)
            self.slot_start += steps * slot
        self.slots[-1] += n

    def _curve(self) -> float:
        config = self.config
        tau = self.tau
        ceiling = self.ceiling
        if ceiling <= 0:  # slow start
            rate = self.base * 2.0 ** min(tau / config.double_time, 60.0)
        else:
            target = ceiling * (1 - config.margin)
            base = self.base
            rate = (
                target - (target - base) * 2.0 ** (-tau / config.half_life)
                if base < target
                else base
            )
            if tau > config.hold and self.hint_value <= 0:
                rate += ceiling * config.creep * (tau - config.hold)
        return float(min(max(rate, config.min_rate), self.max_rate))


def _measurable(count: float, sent: float) -> bool:
    """Whether ``count`` clean answers, where ``sent`` requests went out,
    measure the server: enough of them for a count off by one not to matter,
    or a shortfall of more than two (against a 5/s limit, 5 answers for 7
    sent say as much as 50 for 70)."""
    return count >= MIN_COUNT or (count >= 3 and sent - count >= 2)


class _Entry:
    __slots__ = ("bucket", "law", "used")

    def __init__(self, bucket: TokenBucket, law: AdaptiveRate, used: float) -> None:
        self.bucket = bucket
        self.law = law
        self.used = used


#: Least recently used entries an insertion looks at for one to drop that has
#: learnt nothing (its bucket full, its rate the configured one).
_EVICT_SCAN = 8


class AdaptiveBuckets:
    """One :class:`TokenBucket` and one :class:`AdaptiveRate` per key.

    The interface the Scrapy middleware uses, shared with
    :class:`~scraper_project.ratelimit.RedisAdaptiveBuckets`: :meth:`reserve`
    returns the reservation with the epoch and rate it was made at, which the
    caller hands back with the answer (:meth:`clean`, :meth:`throttle`).

    Memory is bounded: beyond ``max_size`` keys, the least recently used one
    is dropped, preferring one that learnt nothing; a dropped key that comes
    back starts over from its configured rate.

    :param rate: Default configured rate (:data:`INF`: unlimited).
    :param burst: Burst of every bucket.
    :param config: The law's parameters.
    :param overrides: Per-key ``(rate, burst)``.
    :param max_size: The most keys kept.
    :param clock: Monotonic clock; tests pass a ``FakeClock``.
    :param sleep: Passed to the buckets.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        config: AdaptiveConfig | None = None,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        max_size: int = 10_000,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self.config = config or AdaptiveConfig()
        self._overrides = {
            key: (_check_rate(r), _check_burst(b)) for key, (r, b) in (overrides or {}).items()
        }
        if not max_size >= 1:
            raise ValueError(f"max_size must be >= 1, got {max_size!r}")
        self._max_size = max_size
        self._clock = clock
        self._sleep = sleep
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._entries))

    @property
    def clock(self) -> Clock:
        """The clock of the buckets and the law."""
        return self._clock

    def _entry(self, key: str, now: float) -> _Entry:
        entries = self._entries
        with self._lock:
            entry = entries.get(key)
            if entry is not None:
                entries.move_to_end(key)
                entry.used = now
                return entry
            rate, burst = self._overrides.get(key, (self._rate, self._burst))
            law = AdaptiveRate(self.config, rate, now)
            bucket = TokenBucket(law.rate, burst, clock=self._clock, sleep=self._sleep)
            entry = entries[key] = _Entry(bucket, law, now)
            if len(entries) > self._max_size:
                self._make_room(now, key)
            return entry

    def _make_room(self, now: float, keep: str) -> None:
        victim = None
        for i, (key, entry) in enumerate(self._entries.items()):
            if i == _EVICT_SCAN:
                break
            if key == keep:
                continue
            if victim is None:
                victim = key
            if entry.law.epoch == 0 and entry.bucket._is_full_at(now):
                victim = key
                break
        if victim is not None:
            del self._entries[victim]

    def reserve(
        self, key: str, *, max_wait: float = INF, intervals: float = 0.0
    ) -> tuple[Reservation, int, float]:
        """Reserve a token of ``key``; return it with the epoch and the rate.

        :param key: The key.
        :param max_wait: The longest acceptable wait; beyond, nothing is taken
            (the reservation is not ``ok``, its ``delay`` says how long).
        :param intervals: Or this many intervals at the key's rate, if longer.
        """
        now = self._clock()
        entry = self._entry(key, now)
        law = entry.law
        rate = law.rate
        bucket = entry.bucket
        if rate == INF:
            if bucket.blocked_until <= now:  # the common case: nothing to wait for
                return Reservation(bucket, True, 1, now, now, INF), law.epoch, rate
        elif intervals:
            max_wait = max(max_wait, intervals / rate)
        return bucket.reserve_at(now, max_wait=max_wait), law.epoch, rate

    def clean(self, key: str, bound: bool) -> None:
        """A clean answer from ``key`` (``bound``: its request had waited)."""
        now = self._clock()
        entry = self._entry(key, now)
        law = entry.law
        before = law.rate
        if law.clean(now, 1, 1 if bound else 0) != before:
            entry.bucket.set_rate_at(now, law.rate)

    def throttle(
        self, key: str, epoch: int, sent_rate: float, on_pace: bool = True
    ) -> Learnt | None:
        """A 429/503 from ``key``; the learnt state if the rate was cut."""
        now = self._clock()
        entry = self._entry(key, now)
        law = entry.law
        if not law.throttle(now, epoch, sent_rate, on_pace):
            return None
        entry.bucket.set_rate_at(now, law.rate)
        return law.learnt(key)

    def hint(self, key: str, quota: float) -> Learnt | None:
        """``key``'s server states a quota; the learnt state if it changed."""
        now = self._clock()
        entry = self._entry(key, now)
        law = entry.law
        if not law.hint(now, quota):
            return None
        entry.bucket.set_rate_at(now, law.rate)
        return law.learnt(key)

    def block_for(self, key: str, seconds: float) -> None:
        """Grant nothing to ``key`` for ``seconds`` (``Retry-After``)."""
        now = self._clock()
        entry = self._entry(key, now)
        entry.bucket.block_until_at(now, now + seconds)
        entry.law.pause(now, now + seconds)

    def is_blocked(self, key: str) -> bool:
        """Whether ``key`` is paused now."""
        entry = self._entries.get(key)
        return entry is not None and entry.bucket.is_blocked()

    def learnt(self, key: str) -> Learnt | None:
        """``key``'s learnt state (``None``: not kept)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.law.learnt(key)
