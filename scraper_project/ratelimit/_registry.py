"""One :class:`~scraper_project.ratelimit.TokenBucket` per key, bounded in memory."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping

from ._bucket import (
    INF,
    Clock,
    Reservation,
    Sleep,
    TokenBucket,
    _check_burst,
    _check_rate,
)

__all__ = ["BucketRegistry"]

#: How many of the least recently used entries an insertion looks at when it
#: has to make room, hoping to find a full (harmless to evict) bucket.
_EVICT_SCAN: int = 8
#: How many idle entries an insertion may sweep out on the way.
_SWEEP_STEPS: int = 2


class _Entry:
    __slots__ = ("bucket", "used")

    def __init__(self, bucket: TokenBucket, used: float) -> None:
        self.bucket = bucket
        self.used = used


class BucketRegistry:
    """Token buckets keyed by a string (a domain, a client IP...), made on demand.

    Each key gets its own :class:`TokenBucket`, created on first use with the
    per-key override if there is one, else the default ``(rate, burst)``.

    **Eviction rule.** Memory stays bounded however many keys are seen:

    * *Idle eviction* (never changes behaviour): a bucket that is full again
      (holds ``burst`` tokens, no pending reservation, no pause in force) and
      has not been used for ``idle_ttl`` seconds is dropped. A bucket created
      again for that key would be full too, so nobody can tell. Each insertion
      sweeps a couple of the least recently used entries, and
      :meth:`evict_idle` sweeps them all.
    * *Size bound* (hard): when a new key would make more than ``max_size``
      buckets, one is dropped: a full one among the few least recently used if
      there is one, else the least recently used one. Only in that last case can
      behaviour change: that key may get up to ``burst`` extra tokens, or lose a
      pause, when it comes back. Size ``max_size`` for the number of keys that
      are really active at once.

    An evicted bucket is recreated from the configured ``(rate, burst)``, so
    ``set_rate()`` on a bucket obtained from :meth:`get` lasts only while it is
    kept; use :meth:`set_override` for lasting per-key settings. Go through the
    registry's methods rather than keeping bucket objects around.

    :param rate: Default rate for new buckets, tokens per second (or :data:`INF`).
    :param burst: Default burst for new buckets.
    :param overrides: Per-key ``(rate, burst)`` pairs that replace the defaults.
    :param max_size: The most buckets kept at once, ``>= 1``.
    :param idle_ttl: Seconds a full bucket must stay unused before idle eviction.
    :param clock: Passed to every bucket; see :class:`TokenBucket`.
    :param sleep: Passed to every bucket; see :class:`TokenBucket`.
    """

    __slots__ = (
        "_buckets",
        "_burst",
        "_clock",
        "_idle_ttl",
        "_lock",
        "_max_size",
        "_overrides",
        "_rate",
        "_sleep",
    )

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        max_size: int = 10_000,
        idle_ttl: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self._overrides: dict[str, tuple[float, int]] = {}
        for key, (key_rate, key_burst) in (overrides or {}).items():
            self._overrides[key] = (_check_rate(key_rate), _check_burst(key_burst))
        if not max_size >= 1:
            raise ValueError(f"max_size must be >= 1, got {max_size!r}")
        if not idle_ttl >= 0:
            raise ValueError(f"idle_ttl must be >= 0 seconds, got {idle_ttl!r}")
        self._max_size = max_size
        self._idle_ttl = float(idle_ttl)
        self._clock = clock
        self._sleep = sleep
        self._buckets: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rate={self._rate!r} burst={self._burst!r} "
            f"size={len(self._buckets)}/{self._max_size}>"
        )

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._buckets))

    @property
    def max_size(self) -> int:
        """The most buckets kept at once."""
        return self._max_size

    def config_for(self, key: str) -> tuple[float, int]:
        """The ``(rate, burst)`` a new bucket for ``key`` gets.

        :param key: The key.
        """
        return self._overrides.get(key, (self._rate, self._burst))

    def set_override(self, key: str, rate: float, burst: int) -> None:
        """Give ``key`` its own ``(rate, burst)``, now and after any eviction.

        A live bucket for ``key`` is updated in place (see
        :meth:`TokenBucket.set_rate_at`).

        :param key: The key.
        :param rate: Rate for that key, tokens per second (or :data:`INF`).
        :param burst: Burst for that key.
        """
        config = (_check_rate(rate), _check_burst(burst))
        with self._lock:
            self._overrides[key] = config
            entry = self._buckets.get(key)
        if entry is not None:
            entry.bucket.set_rate(config[0])
            entry.bucket.set_burst(config[1])

    def get(self, key: str) -> TokenBucket:
        """The bucket for ``key``, created (and room made for it) if needed.

        :param key: The key.
        """
        now = self._clock()
        buckets = self._buckets
        with self._lock:
            entry = buckets.get(key)
            if entry is not None:
                buckets.move_to_end(key)
                entry.used = now
                return entry.bucket
            self._sweep(now, _SWEEP_STEPS)
            rate, burst = self._overrides.get(key, (self._rate, self._burst))
            bucket = TokenBucket(rate, burst, clock=self._clock, sleep=self._sleep)
            buckets[key] = _Entry(bucket, now)
            if len(buckets) > self._max_size:
                self._make_room(now, key)
            return bucket

    def allow(self, key: str, n: int = 1) -> bool:
        """``get(key).allow(n)``: take ``n`` tokens from ``key``'s bucket if free.

        :param key: The key.
        :param n: Tokens to take.
        """
        return self.get(key).allow(n)

    def reserve(self, key: str, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """``get(key).reserve(n, max_wait=...)``; see :meth:`TokenBucket.reserve_at`.

        :param key: The key.
        :param n: Tokens to take.
        :param max_wait: The longest acceptable wait in seconds.
        """
        return self.get(key).reserve(n, max_wait=max_wait)

    async def wait(self, key: str, n: int = 1, timeout: float | None = None) -> None:
        """``await get(key).wait(n, timeout)``; see :meth:`TokenBucket.wait`.

        :param key: The key.
        :param n: Tokens to take.
        :param timeout: The longest acceptable wait in seconds, or ``None``.
        """
        await self.get(key).wait(n, timeout)

    def block_until(self, key: str, deadline: float) -> None:
        """Pause ``key``'s bucket until ``deadline``.

        See :meth:`TokenBucket.block_until_at`.

        :param key: The key.
        :param deadline: The instant, on the registry's clock, to resume at.
        """
        self.get(key).block_until(deadline)

    def block_for(self, key: str, seconds: float) -> None:
        """Pause ``key``'s bucket for ``seconds`` from now.

        :param key: The key.
        :param seconds: How long to grant nothing.
        """
        self.get(key).block_for(seconds)

    def evict_idle(self) -> int:
        """Drop every bucket that idle eviction allows; return how many."""
        with self._lock:
            return self._sweep(self._clock(), len(self._buckets))

    # -- internals (lock held) -----------------------------------------------

    def _sweep(self, now: float, steps: int) -> int:
        """Idle eviction, looking at ``steps`` least recently used entries at most.

        Entries are in order of last use, so the sweep stops at the first one
        used within ``idle_ttl``. An idle bucket that is not full yet (a slow
        refill, a pause) is skipped and dropped by a later sweep.
        """
        buckets = self._buckets
        deadline = now - self._idle_ttl
        victims = []
        for i, (key, entry) in enumerate(buckets.items()):
            if i == steps or entry.used > deadline:
                break
            if entry.bucket._is_full_at(now):
                victims.append(key)
        for key in victims:
            del buckets[key]
        return len(victims)

    def _make_room(self, now: float, keep: str) -> None:
        """Drop one entry other than ``keep``, preferring a full bucket."""
        buckets = self._buckets
        victim: str | None = None
        for i, (key, entry) in enumerate(buckets.items()):
            if i == _EVICT_SCAN:
                break
            if key == keep:
                continue
            if victim is None:
                victim = key  # the least recently used: the fallback
            if entry.bucket._is_full_at(now):
                victim = key
                break
        if victim is not None:
            del buckets[victim]
