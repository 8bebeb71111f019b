"""Token-bucket rate limiting, standard library only (no Scrapy, no Twisted).

A :class:`TokenBucket` refills at ``rate`` tokens per second up to ``burst``;
each request takes one token (or ``n``). Tokens are computed lazily from a
monotonic clock, in the manner of Go's ``golang.org/x/time/rate``. A
:class:`BucketRegistry` keeps one bucket per key (domain, client IP) with
bounded memory. :mod:`scraper_project.ratelimit.testing` ships a
``FakeClock`` for tests, and :mod:`scraper_project.ratelimit.asgi` an ASGI
middleware built on the registry.

Usage::

    from scraper_project.ratelimit import BucketRegistry, TokenBucket

    bucket = TokenBucket(rate=5, burst=2)  # 5 per second, at most 2 at once
    if bucket.allow():                     # non-blocking
        ...
    await bucket.wait(timeout=10)          # asyncio; RateLimitTimeout at once
                                           # if the wait would be longer

    per_domain = BucketRegistry(rate=2, burst=1, overrides={"a.com": (10, 5)})
    await per_domain.wait("example.com")
    per_domain.block_until("example.com", time.monotonic() + 30)  # Retry-After

Callback style (plain Twisted, or any code without asyncio): reserve, then act
after ``delay``, and cancel to hand the tokens back if you will not act::

    r = bucket.reserve()
    d = task.deferLater(reactor, r.delay, fetch, url)

    def refund(failure):
        r.cancel()  # a no-op once the reserved time has passed
        return failure

    d.addErrback(refund)

Shared by many processes: :class:`RedisTokenBucket` and
:class:`RedisBucketRegistry` keep the same buckets in Redis (one atomic Lua
script per call; pass a ``redis.Redis`` client)::

    per_domain = RedisBucketRegistry(redis.Redis(), rate=2, burst=1)
    await per_domain.wait("example.com")  # 2/s for all workers together

Adaptive rates (:class:`AdaptiveBuckets`, :class:`RedisAdaptiveBuckets`):
each key's rate learnt from the server's answers by :class:`AdaptiveRate`
(cut on a 429/503, grown back while clean, set from the quota a server
states in its ``RateLimit`` fields, read by :func:`read_hints`)::

    buckets = AdaptiveBuckets(INF, 1)                # unlimited until told
    r, epoch, rate = buckets.reserve("example.com", max_wait=0.5)
    ...                                              # send, then, by the answer:
    buckets.throttle("example.com", epoch, rate)     # a 429 or 503
    buckets.clean("example.com", bound=r.delay > 0)  # anything else

Under Scrapy, which runs Twisted on the asyncio reactor, ``await bucket.wait()``
works as is in ``async def`` callbacks and middleware methods.
"""

from ._adaptive import AdaptiveBuckets, AdaptiveConfig, AdaptiveRate, Learnt
from ._bucket import INF, RateLimitTimeout, Reservation, TokenBucket
from ._hints import HINT_FIELDS, Hints, read_hints
from ._redis import RedisBucketRegistry, RedisTokenBucket
from ._redis_adaptive import RedisAdaptiveBuckets
from ._registry import BucketRegistry

__all__ = [
    "HINT_FIELDS",
    "INF",
    "AdaptiveBuckets",
    "AdaptiveConfig",
    "AdaptiveRate",
    "BucketRegistry",
    "Hints",
    "Learnt",
    "RateLimitTimeout",
    "RedisAdaptiveBuckets",
    "RedisBucketRegistry",
    "RedisTokenBucket",
    "Reservation",
    "TokenBucket",
    "read_hints",
]
