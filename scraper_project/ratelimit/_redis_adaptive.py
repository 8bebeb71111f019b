"""Adaptive rates shared through Redis: one learnt rate per key for all workers.

:class:`RedisAdaptiveBuckets` has the interface of
:class:`~scraper_project.ratelimit.AdaptiveBuckets`. The token buckets are
:class:`~scraper_project.ratelimit.RedisTokenBucket` (one Lua script per
request, Redis's clock); the law's state (:class:`AdaptiveRate`, a few
numbers) is one Redis hash per key, ``{prefix}{key}:law``, with a version.

One implementation of the law: each worker reads the state, applies its
events with the Python law and writes it back only if nobody wrote since
(compare-and-set on the version, in a Lua script); on a conflict it reads
again. A throttle is applied at once, and only if its epoch is still the
shared one, so two workers refused at the same moment cut once. Clean
answers, a stream, are counted locally and folded in when the worker next
refreshes the key's state, at most every ``sync_interval`` seconds: between
refreshes a worker reserves at the rate it last read. Every instant of the
law is Redis's clock (or an injected one), so the workers' clocks need not
agree. The law's hash expires ``ttl`` seconds after its last write.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from ._adaptive import AdaptiveConfig, AdaptiveRate, Learnt
from ._bucket import INF, Clock, Reservation, Sleep, _check_burst, _check_rate
from ._redis import _NOW, RedisTokenBucket, _num, _Scripts

__all__ = ["RedisAdaptiveBuckets"]

T = TypeVar("T")

# ARGV: now ('' = Redis's clock). Returns {now, version, state}.
_READ: Final = (
    _NOW
    + """
local s = redis.call('HMGET', KEYS[1], 'v', 's')
return {string.format('%.6f', now), s[1] or '0', s[2] or ''}
"""
)

# ARGV: expected version, state, ttl (s). Returns 1 if written.
_WRITE: Final = """
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 's', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

#: Attempts of one compare-and-set update before giving up on it.
_ATTEMPTS = 5


class _Shared:
    __slots__ = ("bound", "clean", "law", "synced", "version")

    def __init__(self, law: AdaptiveRate) -> None:
        self.law = law
        self.version = "0"
        self.synced = -INF  # local monotonic instant of the last read
        self.clean = 0  # clean answers not yet folded in
        self.bound = 0  # of which to requests that waited


class RedisAdaptiveBuckets:
    """Adaptive buckets whose buckets and learnt rates live in Redis.

    :param client: A ``redis.Redis`` client.
    :param rate: Default configured rate (:data:`INF`: unlimited).
    :param burst: Burst of every bucket.
    :param config: The law's parameters (every worker should pass the same).
    :param overrides: Per-key ``(rate, burst)``.
    :param prefix: Prepended to each key to make its Redis keys.
    :param clock: ``None`` (Redis's clock) or an injected clock.
    :param sleep: Awaited by the buckets' ``wait``.
    :param sync_interval: Seconds between refreshes of a key's shared state.
    :param ttl: Seconds a key's learnt state is kept after its last change.
    :param max_size: Keys whose state is cached in this process.
    """

    def __init__(
        self,
        client: Any,
        rate: float,
        burst: int,
        *,
        config: AdaptiveConfig | None = None,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        prefix: str = "ratelimit:",
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        sync_interval: float = 0.25,
        ttl: int = 3600,
        max_size: int = 10_000,
    ) -> None:
        self._client = client
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self.config = config or AdaptiveConfig()
        self._overrides = {
            key: (_check_rate(r), _check_burst(b)) for key, (r, b) in (overrides or {}).items()
        }
        self.prefix = prefix
        self._clock = clock
        self._sleep = sleep
        self._sync_interval = sync_interval
        self._ttl = ttl
        self._max_size = max_size
        self._scripts = _Scripts(client)
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)
        self._cache: OrderedDict[str, _Shared] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def clock(self) -> Clock:
        """The buckets' clock (by default Redis's: one round trip)."""
        return self._clock if self._clock is not None else self._bucket("", INF).clock

    def _config_for(self, key: str) -> tuple[float, int]:
        return self._overrides.get(key, (self._rate, self._burst))

    def _bucket(self, key: str, rate: float) -> RedisTokenBucket:
        return RedisTokenBucket(
            self._client,
            self.prefix + key,
            rate,
            self._config_for(key)[1],
            clock=self._clock,
            sleep=self._sleep,
            _scripts=self._scripts,
        )

    def _shared(self, key: str) -> _Shared:
        cache = self._cache
        shared = cache.get(key)
        if shared is None:
            law = AdaptiveRate(self.config, self._config_for(key)[0])
            shared = cache[key] = _Shared(law)
            if len(cache) > self._max_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return shared

    def _update(self, key: str, apply: Callable[[AdaptiveRate, float], T]) -> T | None:
        """Read ``key``'s law, fold in the pending clean answers, ``apply``,
        write back if nobody wrote meanwhile; retry on a conflict."""
        shared = self._shared(key)
        law_key = self.prefix + key + ":law"
        now_arg = "" if self._clock is None else repr(self._clock())
        for _ in range(_ATTEMPTS):
            raw_now, version, state = self._read(keys=[law_key], args=[now_arg])
            now = _num(raw_now)
            version = version.decode() if isinstance(version, bytes) else str(version)
            law = AdaptiveRate(self.config, self._config_for(key)[0], now)
            if state:
                law.load_state(json.loads(state))
            before = law.to_state()
            if shared.clean:
                law.clean(now, shared.clean, shared.bound)
            result = apply(law, now)
            if law.to_state() == before:
                written = True  # nothing to share (a refresh): no write
            else:
                payload = json.dumps(law.to_state())
                written = bool(self._write(keys=[law_key], args=[version, payload, self._ttl]))
                if written:
                    version = str(int(version) + 1)
            if written:
                shared.law = law
                shared.version = version
                shared.clean = shared.bound = 0
                shared.synced = time.monotonic()
                return result
        return None

    def _fresh(self, key: str) -> AdaptiveRate:
        shared = self._shared(key)
        if time.monotonic() - shared.synced >= self._sync_interval:
            self._update(key, lambda law, now: None)
        return shared.law

    # -- the interface of AdaptiveBuckets --------------------------------

    def reserve(
        self, key: str, *, max_wait: float = INF, intervals: float = 0.0
    ) -> tuple[Reservation, int, float]:
        """Reserve a token of ``key`` at the shared learnt rate; see
        :meth:`AdaptiveBuckets.reserve`."""
        law = self._fresh(key)
        rate = law.rate
        if intervals and rate != INF:
            max_wait = max(max_wait, intervals / rate)
        return self._bucket(key, rate).reserve(max_wait=max_wait), law.epoch, rate

    def clean(self, key: str, bound: bool) -> None:
        """A clean answer: counted here, folded in at the next refresh."""
        shared = self._shared(key)
        shared.clean += 1
        shared.bound += bound

    def throttle(
        self, key: str, epoch: int, sent_rate: float, on_pace: bool = True
    ) -> Learnt | None:
        """A 429/503; the learnt state if this cut the shared rate."""

        def apply(law: AdaptiveRate, now: float) -> Learnt | None:
            cut = law.throttle(now, epoch, sent_rate, on_pace)
            return law.learnt(key) if cut else None

        return self._update(key, apply)

    def hint(self, key: str, quota: float) -> Learnt | None:
        """The server states a quota; the learnt state if it changed."""

        def apply(law: AdaptiveRate, now: float) -> Learnt | None:
            return law.learnt(key) if law.hint(now, quota) else None

        return self._update(key, apply)

    def block_for(self, key: str, seconds: float) -> None:
        """Pause ``key`` for every worker (and tell the law)."""
        bucket = self._bucket(key, self._shared(key).law.rate)
        now = bucket.clock()
        bucket.block_until_at(now, now + seconds)
        self._update(key, lambda law, _now: law.pause(now, now + seconds))

    def is_blocked(self, key: str) -> bool:
        """Whether ``key`` is paused now (one round trip)."""
        return self._bucket(key, INF).is_blocked()

    def learnt(self, key: str) -> Learnt | None:
        """``key``'s learnt state as this worker last read it."""
        shared = self._cache.get(key)
        return None if shared is None else shared.law.learnt(key)
