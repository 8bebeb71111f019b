"""Token-bucket pacing per downloader slot (domain), plus an optional global rate.

Each request takes a token from the bucket of its downloader slot
(``downloader.get_slot_key(request)``, so ``DOWNLOAD_SLOTS`` and the
``download_slot`` meta key keep working) and, if ``RATELIMIT_GLOBAL_RATE`` is
set, from a bucket shared by all hosts. Tokens are reserved on credit (as in
golang.org/x/time/rate): when a request must wait, it is *parked* in the
:class:`~scraper_project.scheduler.DelayingScheduler` until its reserved
instant, holding no concurrency slot, so a slow domain never starves the
others and the reactor is never blocked. When it comes back it goes straight
through.

Settings (``RATELIMIT_*``):

- ``RATELIMIT_ENABLED`` (bool, ``True``)
- ``RATELIMIT_RATE`` (float, requests/second per domain; ``0`` = unlimited)
- ``RATELIMIT_BURST`` (int, ``1``)
- ``RATELIMIT_DOMAINS`` (dict, per-slot overrides: ``{"host": rate}`` or
  ``{"host": [rate, burst]}``; ``0`` = unlimited)
- ``RATELIMIT_GLOBAL_RATE`` (float, ``0`` = none) and ``RATELIMIT_GLOBAL_BURST``
- ``RATELIMIT_MAX_BUCKETS`` (int, ``10000``): per-domain buckets kept at once
- ``RATELIMIT_BACKEND`` (``auto``, ``memory`` or ``redis``): where the buckets
  live. ``redis`` shares them with every worker of the cluster (the Redis of
  ``PAGES_REDIS_URL``), so the rates hold for the cluster as a whole; ``auto``
  is ``redis`` in cluster mode, else ``memory``.

Meta: ``dont_ratelimit``. Requests without a callback (robots.txt, fetched
once per host through ``engine.download()``) are not paced. Stats: ``ratelimit/delayed``,
``ratelimit/wait_seconds``, ``ratelimit/max_wait_seconds``.
"""

from __future__ import annotations

import json
import logging
import math
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured, UsageError
from scrapy.http.request import NO_CALLBACK

from scraper_project.config import get_bool
from scraper_project.ratelimit import (
    INF,
    BucketRegistry,
    RedisBucketRegistry,
    RedisTokenBucket,
    TokenBucket,
)
from scraper_project.scheduler import NOT_BEFORE_KEY, DelayQueueMixin

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

RESERVED_KEY = "pages_ratelimit_reserved"
WAIT_KEY = "pages_ratelimit_wait"


def _rate(value: Any, name: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number of requests per second, got {value!r}") from None
    if math.isnan(rate) or rate < 0:
        raise UsageError(f"{name} must be >= 0 (0 = unlimited), got {value!r}")
    return INF if rate == 0 else rate


def _burst(value: Any, name: str) -> int:
    try:
        burst = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be an integer >= 1, got {value!r}") from None
    if burst < 1:
        raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
    return burst


def parse_domains(raw: Any, default_burst: int) -> dict[str, tuple[float, int]]:
    """``RATELIMIT_DOMAINS`` as ``{slot_key: (rate, burst)}``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise UsageError(f"RATELIMIT_DOMAINS must be a JSON object, got {raw!r}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"RATELIMIT_DOMAINS must be a dict, got {raw!r}")
    parsed: dict[str, tuple[float, int]] = {}
    for key, value in raw.items():
        name = f"RATELIMIT_DOMAINS[{key!r}]"
        if isinstance(value, (list, tuple)) and len(value) == 2:
            parsed[str(key)] = (_rate(value[0], name), _burst(value[1], name))
        elif isinstance(value, dict):
            parsed[str(key)] = (
                _rate(value.get("rate"), name),
                _burst(value.get("burst", default_burst), name),
            )
        else:
            parsed[str(key)] = (_rate(value, name), default_burst)
    return parsed


class RateLimitMiddleware:
    """Downloader middleware; see the module docstring."""

    def __init__(
        self,
        crawler: Crawler,
        registry: BucketRegistry | RedisBucketRegistry,
        global_bucket: TokenBucket | RedisTokenBucket | None,
        stats: StatsCollector,
    ) -> None:
        self.crawler = crawler
        self.registry = registry
        self.global_bucket = global_bucket
        self.stats = stats
        self.max_wait = 0.0
        self.total_wait = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        settings = crawler.settings
        if not cls.check_settings(settings):
            raise NotConfigured  # off on purpose: no warning
        registry, global_bucket = cls.buckets_from_settings(settings)
        assert crawler.stats is not None
        return cls(crawler, registry, global_bucket, crawler.stats)

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> bool:
        """Validate the ``RATELIMIT_*`` settings (``UsageError`` naming a bad
        one); return whether rate limiting is on."""
        if not get_bool(settings, "RATELIMIT_ENABLED"):
            return False
        cls.buckets_from_settings(settings)
        scheduler = load_scheduler_class(settings)
        if not issubclass(scheduler, DelayQueueMixin):
            raise UsageError(
                f"RATELIMIT_ENABLED needs SCHEDULER = "
                f"'scraper_project.scheduler.DelayingScheduler' (or a subclass), "
                f"got {settings.get('SCHEDULER')!r}",
                print_help=False,
            )
        return True

    @staticmethod
    def buckets_from_settings(
        settings: BaseSettings,
    ) -> tuple[BucketRegistry | RedisBucketRegistry, TokenBucket | RedisTokenBucket | None]:
        """Parse and validate the ``RATELIMIT_*`` settings."""
        rate = _rate(settings.get("RATELIMIT_RATE"), "RATELIMIT_RATE")
        burst = _burst(settings.get("RATELIMIT_BURST"), "RATELIMIT_BURST")
        domains = parse_domains(settings.get("RATELIMIT_DOMAINS") or {}, burst)
        max_buckets = _burst(settings.get("RATELIMIT_MAX_BUCKETS"), "RATELIMIT_MAX_BUCKETS")
        global_rate = _rate(settings.get("RATELIMIT_GLOBAL_RATE"), "RATELIMIT_GLOBAL_RATE")
        global_burst = _burst(settings.get("RATELIMIT_GLOBAL_BURST"), "RATELIMIT_GLOBAL_BURST")
        if ratelimit_backend(settings) == "redis":
            from scraper_project.cluster.connection import cluster_key, redis_client

            client = redis_client(settings)
            prefix = f"{cluster_key(settings)}:ratelimit:"
            registry: BucketRegistry | RedisBucketRegistry = RedisBucketRegistry(
                client, rate, burst, overrides=domains, prefix=prefix
            )
            if global_rate == INF:
                return registry, None
            return registry, RedisTokenBucket(client, f"{prefix}*", global_rate, global_burst)
        registry = BucketRegistry(rate, burst, overrides=domains, max_size=max_buckets)
        if global_rate == INF:
            return registry, None
        return registry, TokenBucket(global_rate, global_burst)

    def process_request(self, request: Request, spider: Any = None) -> Request | None:
        meta = request.meta
        if meta.get("dont_ratelimit") or request.callback is NO_CALLBACK:
            # NO_CALLBACK: robots.txt and other engine.download() requests,
            # which Scrapy re-sends at once instead of scheduling: not paced.
            return None
        engine = self.crawler.engine
        assert engine is not None
        key = engine.downloader.get_slot_key(request)
        # A parked request's token was reserved before it was parked: it goes,
        # unless the domain was paused since (Retry-After): then it queues again.
        if meta.pop(RESERVED_KEY, False) and not self.registry.get(key).is_blocked():
            return None
        if getattr(self.crawler.spider, "stop_reason", None) is not None:
            return None  # stopping: the request gets its row now, not later
        delay = self.registry.reserve(key).delay
        if self.global_bucket is not None:
            delay = max(delay, self.global_bucket.reserve().delay)
        if delay <= 0:
            return None
        meta[RESERVED_KEY] = True
        meta[NOT_BEFORE_KEY] = monotonic() + delay
        meta[WAIT_KEY] = meta.get(WAIT_KEY, 0.0) + delay
        stats = self.stats
        stats.inc_value("ratelimit/delayed")
        self.total_wait += delay
        stats.set_value("ratelimit/wait_seconds", round(self.total_wait, 3))
        if delay > self.max_wait:
            self.max_wait = delay
            stats.set_value("ratelimit/max_wait_seconds", round(delay, 3))
        # Returning the request re-schedules it: the scheduler parks it.
        return request

    def pause(self, request: Request, seconds: float) -> None:
        """Pause the domain of ``request`` for ``seconds`` from now
        (``Retry-After`` from the retry middleware)."""
        engine = self.crawler.engine
        assert engine is not None
        self.registry.block_for(engine.downloader.get_slot_key(request), seconds)


def ratelimit_backend(settings: BaseSettings) -> str:
    """``memory`` or ``redis``, from ``RATELIMIT_BACKEND`` (validated)."""
    raw = settings.get("RATELIMIT_BACKEND") or "auto"
    backend = str(raw).strip().lower()
    if backend not in {"auto", "memory", "redis"}:
        raise UsageError(f"RATELIMIT_BACKEND must be auto, memory or redis, got {raw!r}")
    clustered = bool(settings.get("PAGES_REDIS_URL"))
    if backend == "auto":
        return "redis" if clustered else "memory"
    if backend == "redis" and not clustered:
        raise UsageError("RATELIMIT_BACKEND = 'redis' needs PAGES_REDIS_URL (the cluster's Redis)")
    return backend


def load_scheduler_class(settings: BaseSettings) -> type:
    from scrapy.utils.misc import load_object

    scheduler = settings.get("SCHEDULER")
    return scheduler if isinstance(scheduler, type) else load_object(scheduler)
