"""The Redis backend: token buckets shared by every process that uses one Redis.

:class:`RedisTokenBucket` and :class:`RedisBucketRegistry` have the interface
of :class:`~scraper_project.ratelimit.TokenBucket` and
:class:`~scraper_project.ratelimit.BucketRegistry` (``allow``, ``reserve``
with :class:`~scraper_project.ratelimit.Reservation` and ``cancel``,
``wait``, ``block_until``, ``tokens``), and the same GCRA arithmetic, but the
state lives in one Redis hash per bucket and every operation is one atomic Lua
script: ten workers on five machines share one rate per domain.

**Time.** By default the scripts read Redis's own clock (``TIME``), so the
machines' clocks need not agree; every instant this backend hands out or takes
(``reserved_at``, ``time_to_act``, ``blocked_until``, the ``deadline`` of
:meth:`RedisTokenBucket.block_until`) is on that clock, and ``clock()`` reads
it. Tests inject a clock (a
:class:`~scraper_project.ratelimit.testing.FakeClock`): the scripts then use
the instant the client passes.

**Configuration** (rate, burst) travels with each call, so it is the caller's:
give every worker the same settings. State keys expire once the bucket would
be full again (an idle bucket is a missing key, like an evicted one in the
local registry), so memory is bounded by the keys active at once.

Needs the ``redis`` package (redis-py); it is not imported otherwise.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from ._bucket import (
    INF,
    Clock,
    RateLimitTimeout,
    Reservation,
    _check_burst,
    _check_rate,
    _check_wait,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._bucket import Sleep

__all__ = ["RedisBucketRegistry", "RedisTokenBucket"]

# Shared prologue: the instant (ARGV[1], or Redis's clock when empty) and the
# bucket's state. Instants travel as strings with microsecond precision
# (Lua numbers returned by a script are truncated to integers).
_NOW: Final = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""
_PROLOGUE: Final = (
    _NOW
    + """
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tat', 'blk', 'le')
local tat = tonumber(s[1]) or now
local blk = tonumber(s[2]) or 0
local le = tonumber(s[3]) or now
local function fmt(x) return string.format('%.6f', x) end
local function store(tat_new, le_new)
  if now < blk then
    tat_new = math.max(tat_new, blk + (burst - 1) * interval)
  end
  redis.call('HSET', KEYS[1], 'tat', fmt(tat_new), 'blk', fmt(blk), 'le', fmt(le_new))
  local until_idle = math.max(tat_new, blk) - now
  redis.call('PEXPIRE', KEYS[1], math.ceil(until_idle * 1000) + 1000)
end
"""
)

# ARGV: now, interval, burst, n, max_wait (-1: no limit).
# Returns {ok, now, time_to_act}.
_RESERVE: Final = (
    _PROLOGUE
    + """
local n = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local tol = interval * 1e-9 + 1e-7
local start = math.max(tat, now)
local ahead = start - now + n * interval
local wait = ahead - burst * interval
local act = now
if wait > tol then act = now + wait end
local ok = max_wait < 0 or wait <= max_wait + tol
if ok then store(now + ahead, act) end
return {ok and 1 or 0, fmt(now), fmt(act)}
"""
)

# ARGV: now, interval, burst, deadline. Returns now.
_BLOCK: Final = (
    _PROLOGUE
    + """
local deadline = tonumber(ARGV[4])
if deadline > now and deadline > blk then
  blk = deadline
  store(math.max(tat, now), le)
end
return fmt(now)
"""
)

# ARGV: now, interval, burst, tokens, rate, time_to_act. Returns nothing.
_CANCEL: Final = (
    _PROLOGUE
    + """
local tokens = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local act = tonumber(ARGV[6])
if act < now then return 0 end
local restore = tokens - rate * (le - act)
if restore <= 0 then return 0 end
local new_tat = math.max(math.max(tat, now) - restore * interval, now)
local new_le = le
if math.abs(act - le) < 1e-6 then
  local previous = act - tokens / rate
  if previous >= now then new_le = previous end
end
store(new_tat, new_le)
return 1
"""
)

# ARGV: now, interval, burst. Returns {now, tat (max(tat, now)), blk}.
_STATE: Final = (
    _PROLOGUE
    + """
return {fmt(now), fmt(math.max(tat, now)), fmt(blk)}
"""
)


class _Scripts:
    """The registered scripts of one Redis client (EVALSHA, loaded on demand)."""

    def __init__(self, client: Any) -> None:
        self.reserve = client.register_script(_RESERVE)
        self.block = client.register_script(_BLOCK)
        self.cancel = client.register_script(_CANCEL)
        self.state = client.register_script(_STATE)


def _num(value: Any) -> float:
    return float(value.decode() if isinstance(value, bytes) else value)


class RedisTokenBucket:
    """A token bucket whose state is the Redis hash ``key``; see the module
    docstring. Same interface as :class:`~scraper_project.ratelimit.TokenBucket`.

    :param client: A ``redis.Redis`` client (``decode_responses`` either way).
    :param key: The Redis key of this bucket's state.
    :param rate: Tokens per second, ``> 0``, or :data:`INF` (unlimited; only
        :meth:`block_until` holds it back).
    :param burst: Capacity, an integer ``>= 1``.
    :param clock: ``None`` (Redis's clock) or a clock to pass to the scripts.
    :param sleep: Awaited by :meth:`wait`.
    """

    def __init__(
        self,
        client: Any,
        key: str,
        rate: float,
        burst: int,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        _scripts: _Scripts | None = None,
    ) -> None:
        self._client = client
        self.key = key
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self._clock = clock
        self._sleep = sleep
        self._scripts = _scripts or _Scripts(client)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} key={self.key!r} rate={self._rate!r} burst={self._burst!r}>"

    # -- configuration ---------------------------------------------------

    @property
    def rate(self) -> float:
        """Tokens per second (:data:`INF`: unlimited)."""
        return self._rate

    @property
    def burst(self) -> int:
        """The capacity of the bucket."""
        return self._burst

    def set_rate(self, rate: float) -> None:
        """Use ``rate`` for this client's later calls."""
        self._rate = _check_rate(rate)

    def set_burst(self, burst: int) -> None:
        """Use ``burst`` for this client's later calls."""
        self._burst = _check_burst(burst)

    @property
    def clock(self) -> Clock:
        """The clock the bucket reads (by default Redis's: one round trip)."""
        return self._clock if self._clock is not None else self._server_time

    def _server_time(self) -> float:
        seconds, micros = self._client.time()
        return int(seconds) + int(micros) / 1_000_000

    def _args(self, now: float | None) -> list[Any]:
        if now is None and self._clock is not None:
            now = self._clock()
        interval = 0.0 if self._rate == INF else 1.0 / self._rate
        return ["" if now is None else repr(now), repr(interval), self._burst]

    # -- reading ---------------------------------------------------------

    def _state(self, now: float | None) -> tuple[float, float, float]:
        raw = self._scripts.state(keys=[self.key], args=self._args(now))
        return _num(raw[0]), _num(raw[1]), _num(raw[2])

    @property
    def blocked_until(self) -> float:
        """The end of a pause set by :meth:`block_until` (in the past: none)."""
        return self._state(None)[2]

    def is_blocked(self) -> bool:
        """Whether a pause set by :meth:`block_until` is in force now."""
        now, _, blocked = self._state(None)
        return blocked > now

    def tokens(self) -> float:
        """Tokens available now (negative: owed to reservations)."""
        return self.tokens_at(None)

    def tokens_at(self, now: float | None) -> float:
        """Tokens the bucket holds at ``now``."""
        now_, start, _ = self._state(now)
        ahead = start - now_
        if self._rate == INF:
            return INF if ahead <= 0 else 0.0
        return self._burst - ahead * self._rate

    # -- taking tokens ---------------------------------------------------

    def allow(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they are available now; never waits."""
        return self._reserve(None, n, 0.0).ok

    def allow_at(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens if they are available at instant ``now``."""
        return self._reserve(now, n, 0.0).ok

    def reserve(self, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """Take ``n`` tokens now, on credit; see ``TokenBucket.reserve_at``."""
        return self._reserve(None, n, max_wait)

    def reserve_at(self, now: float, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """Take ``n`` tokens at instant ``now``, on credit."""
        return self._reserve(now, n, max_wait)

    def _reserve(self, now: float | None, n: int, max_wait: float) -> Reservation:
        if not n >= 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        if n > self._burst and self._rate != INF:
            raise ValueError(f"n={n!r} exceeds burst={self._burst}: it could never be granted")
        if max_wait != INF:
            max_wait = _check_wait(max_wait, "max_wait")
        args = [*self._args(now), n, -1 if max_wait == INF else repr(max_wait)]
        ok, at, act = self._scripts.reserve(keys=[self.key], args=args)
        return Reservation(self, bool(int(ok)), n, _num(at), _num(act), self._rate)

    async def wait(self, n: int = 1, timeout: float | None = None) -> None:
        """Wait until ``n`` tokens are granted (asyncio); see ``TokenBucket.wait``."""
        max_wait = INF if timeout is None else _check_wait(timeout, "timeout")
        r = self._reserve(None, n, max_wait)
        if not r.ok:
            raise RateLimitTimeout(r.delay, max_wait)
        if r.delay <= 0:
            return
        try:
            await self._sleep(r.delay)
            # A block_until() issued while we slept holds for us too.
            while True:
                now, _, blocked = self._state(None)
                if now >= blocked:
                    break
                if blocked - r.reserved_at > max_wait:
                    raise RateLimitTimeout(blocked - r.reserved_at, max_wait)
                await self._sleep(blocked - now)
        except BaseException:
            r.cancel()
            raise

    async def __aenter__(self) -> None:
        await self.wait()

    async def __aexit__(self, *exc: object) -> None:
        return None

    def block_until(self, deadline: float) -> None:
        """Grant nothing before ``deadline`` (an instant on the bucket's clock)."""
        self._scripts.block(keys=[self.key], args=[*self._args(None), repr(deadline)])

    def block_until_at(self, now: float, deadline: float) -> None:
        """Pause the bucket, as of instant ``now``, until ``deadline``."""
        self._scripts.block(keys=[self.key], args=[*self._args(now), repr(deadline)])

    def block_for(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` from now, on the bucket's clock."""
        now, _, _ = self._state(None)
        self.block_until_at(now, now + seconds)

    def _cancel(self, r: Reservation, now: float | None) -> None:
        if INF in (r.rate, self._rate):
            return
        args = [*self._args(now), r.tokens, repr(r.rate), repr(r.time_to_act)]
        self._scripts.cancel(keys=[self.key], args=args)


class RedisBucketRegistry:
    """Buckets keyed by a string, kept in Redis under ``prefix + key``.

    Same interface as :class:`~scraper_project.ratelimit.BucketRegistry`;
    nothing is kept in the process but the configuration, and Redis expires
    idle buckets by itself.

    :param client: A ``redis.Redis`` client.
    :param rate: Default rate of the buckets (or :data:`INF`).
    :param burst: Default burst.
    :param overrides: Per-key ``(rate, burst)``.
    :param prefix: Prepended to each key to make the Redis key.
    :param clock: ``None`` (Redis's clock) or an injected clock.
    :param sleep: Awaited by ``wait``.
    """

    def __init__(
        self,
        client: Any,
        rate: float,
        burst: int,
        *,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        prefix: str = "ratelimit:",
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self._overrides = {
            key: (_check_rate(r), _check_burst(b)) for key, (r, b) in (overrides or {}).items()
        }
        self.prefix = prefix
        self._clock = clock
        self._sleep = sleep
        self._scripts = _Scripts(client)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self.prefix!r} rate={self._rate!r} burst={self._burst!r}>"

    def config_for(self, key: str) -> tuple[float, int]:
        """The ``(rate, burst)`` of ``key``'s bucket."""
        return self._overrides.get(key, (self._rate, self._burst))

    def set_override(self, key: str, rate: float, burst: int) -> None:
        """Give ``key`` its own ``(rate, burst)`` from now on."""
        self._overrides[key] = (_check_rate(rate), _check_burst(burst))

    def get(self, key: str) -> RedisTokenBucket:
        """A handle on ``key``'s bucket (cheap: the state stays in Redis)."""
        rate, burst = self.config_for(key)
        return RedisTokenBucket(
            self._client,
            self.prefix + key,
            rate,
            burst,
            clock=self._clock,
            sleep=self._sleep,
            _scripts=self._scripts,
        )

    def allow(self, key: str, n: int = 1) -> bool:
        """Take ``n`` tokens from ``key``'s bucket if they are there now."""
        return self.get(key).allow(n)

    def reserve(self, key: str, n: int = 1, *, max_wait: float = INF) -> Reservation:
        """Reserve ``n`` tokens of ``key``'s bucket; see ``TokenBucket.reserve_at``."""
        return self.get(key).reserve(n, max_wait=max_wait)

    async def wait(self, key: str, n: int = 1, timeout: float | None = None) -> None:
        """Wait for ``n`` tokens of ``key``'s bucket."""
        await self.get(key).wait(n, timeout)

    def block_until(self, key: str, deadline: float) -> None:
        """Pause ``key``'s bucket until ``deadline`` (on the bucket's clock)."""
        self.get(key).block_until(deadline)

    def block_for(self, key: str, seconds: float) -> None:
        """Pause ``key``'s bucket for ``seconds`` from now."""
        self.get(key).block_for(seconds)

    def evict_idle(self) -> int:
        """Nothing to do: Redis expires idle buckets. Returns 0."""
        return 0
