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

Adaptive mode (``RATELIMIT_ADAPTIVE``, on by default): each slot's rate is
learnt from the server's answers (:class:`~scraper_project.ratelimit.AdaptiveRate`):
cut on a 429 or 503, grown back while clean, set from the quota stated in
``RateLimit``/``RateLimit-Policy``/``X-RateLimit-*`` fields, paused while
they say nothing is left. The configured rate (``RATELIMIT_RATE``,
``RATELIMIT_DOMAINS``; unlimited when unset) is where a slot starts and its
ceiling. In cluster mode the learnt rates are shared through Redis. A token
is reserved at most ``HORIZON`` ahead, so that a new rate applies at once:
a request whose turn is further off is parked without one, until about its
turn (half the estimated wait, then again), in the order it came.

- ``RATELIMIT_ADAPTIVE`` (bool, ``True``)
- ``RATELIMIT_ADAPTIVE_START`` (float, ``4``): a slot's rate after its first
  throttle when it was unlimited
- ``RATELIMIT_ADAPTIVE_MIN`` / ``RATELIMIT_ADAPTIVE_MAX`` (float, ``0.5`` /
  ``0`` = no bound but the configured rate): bounds of the learnt rates
- ``RATELIMIT_ADAPTIVE_MAX_PAUSE`` (float, ``60``): longest pause taken from
  a ``RateLimit`` reset, or from a ``Retry-After`` of an answer not retried
- ``RATELIMIT_ADAPTIVE_LOG`` (bool, ``False``): log each change at INFO
- ``RATELIMIT_ADAPTIVE_REPORT_HOSTS`` (int, ``10``): slots whose learnt
  rate is in the stats (``ratelimit/learnt/<slot>``) and the summary

Meta: ``dont_ratelimit``. Requests without a callback (robots.txt, fetched
once per host through ``engine.download()``) are not paced. Stats: ``ratelimit/delayed``,
``ratelimit/wait_seconds``, ``ratelimit/max_wait_seconds``; adaptive:
``ratelimit/adaptive/throttles`` (429/503 answers), ``.../cuts`` (rate cuts:
one per epoch), ``.../bunched`` (throttles not counted: the request had left
in a bunch, after a stall, below the known limit), ``.../hints`` (stated quotas taken), ``.../pauses``,
``ratelimit/learnt/<slot>`` (requests/second; the most throttled slots).
"""

from __future__ import annotations

import json
import logging
import math
import time
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured, UsageError
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached

from scraper_project.backoff import parse_retry_after
from scraper_project.config import get_bool, get_float, get_int
from scraper_project.ratelimit import (
    HINT_FIELDS,
    INF,
    AdaptiveBuckets,
    AdaptiveConfig,
    BucketRegistry,
    Learnt,
    RedisAdaptiveBuckets,
    RedisBucketRegistry,
    RedisTokenBucket,
    TokenBucket,
    read_hints,
)
from scraper_project.scheduler import NOT_BEFORE_KEY, DelayQueueMixin

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

RESERVED_KEY = "pages_ratelimit_reserved"
WAIT_KEY = "pages_ratelimit_wait"
#: Adaptive mode: (epoch, rate, waited, on pace, slot) of the token a request
#: was sent with.
SENT_KEY = "pages_ratelimit_sent"
#: Adaptive mode: the request's place in its slot's line of requests parked
#: without a token.
TICKET_KEY = "pages_ratelimit_ticket"
WAITED_KEY = "pages_ratelimit_waited"

#: Adaptive mode: a token is reserved at most this many seconds (or two
#: intervals, if longer) ahead, so that a cut applies within it.
HORIZON = 0.25
#: Adaptive mode: a request parked without a token sleeps at most this many
#: seconds per doubling of its place in line before it looks again.
LINE_WAKE = 0.5
#: Adaptive mode: a request leaving less than this share of an interval
#: after the one before left in a bunch.
BUNCHED = 0.5
_MAX_DEPARTURES = 10_000
_THROTTLE_STATUSES = frozenset({429, 503})
_HINT_KEYS = frozenset(name.title().encode() for name in HINT_FIELDS)

Adaptive = AdaptiveBuckets | RedisAdaptiveBuckets


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
        registry: BucketRegistry | RedisBucketRegistry | Adaptive,
        global_bucket: TokenBucket | RedisTokenBucket | None,
        stats: StatsCollector,
        *,
        max_pause: float = 60.0,
        log_changes: bool = False,
        report_hosts: int = 10,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.crawler = crawler
        self.global_bucket = global_bucket
        self.stats = stats
        self.max_wait = 0.0
        self.total_wait = 0.0
        self.adaptive: Adaptive | None = None
        if isinstance(registry, (AdaptiveBuckets, RedisAdaptiveBuckets)):
            self.adaptive = registry
            self.process_request = self._process_adaptive  # type: ignore[method-assign]
        else:
            self.registry = registry
            self.process_response = self._pass_response  # type: ignore[method-assign]
        self.max_pause = max_pause
        self.log_changes = log_changes
        self.report_hosts = report_hosts
        # slot -> [tickets issued, tickets admitted] of requests parked
        # without a token (adaptive mode)
        self.lines: dict[str, list[int]] = {}
        self.reported: dict[str, int] = {}  # slot -> throttles, in the stats
        self.departures: dict[str, float] = {}  # slot -> last departure (paced slots)
        self.wall_clock = wall_clock or time.time

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        settings = crawler.settings
        if not cls.check_settings(settings):
            raise NotConfigured  # off on purpose: no warning
        registry, global_bucket = cls.buckets_from_settings(settings)
        assert crawler.stats is not None
        return cls(
            crawler,
            registry,
            global_bucket,
            crawler.stats,
            max_pause=_non_negative(settings, "RATELIMIT_ADAPTIVE_MAX_PAUSE", float),
            log_changes=settings.getbool("RATELIMIT_ADAPTIVE_LOG"),
            report_hosts=int(_non_negative(settings, "RATELIMIT_ADAPTIVE_REPORT_HOSTS", int)),
        )

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
    ) -> tuple[
        BucketRegistry | RedisBucketRegistry | Adaptive, TokenBucket | RedisTokenBucket | None
    ]:
        """Parse and validate the ``RATELIMIT_*`` settings."""
        rate = _rate(settings.get("RATELIMIT_RATE"), "RATELIMIT_RATE")
        burst = _burst(settings.get("RATELIMIT_BURST"), "RATELIMIT_BURST")
        domains = parse_domains(settings.get("RATELIMIT_DOMAINS") or {}, burst)
        max_buckets = _burst(settings.get("RATELIMIT_MAX_BUCKETS"), "RATELIMIT_MAX_BUCKETS")
        global_rate = _rate(settings.get("RATELIMIT_GLOBAL_RATE"), "RATELIMIT_GLOBAL_RATE")
        global_burst = _burst(settings.get("RATELIMIT_GLOBAL_BURST"), "RATELIMIT_GLOBAL_BURST")
        adaptive = adaptive_config(settings)
        registry: BucketRegistry | RedisBucketRegistry | Adaptive
        if ratelimit_backend(settings) == "redis":
            from scraper_project.cluster.connection import cluster_key, redis_client

            client = redis_client(settings)
            prefix = f"{cluster_key(settings)}:ratelimit:"
            if adaptive is not None:
                registry = RedisAdaptiveBuckets(
                    client, rate, burst, config=adaptive, overrides=domains, prefix=prefix
                )
            else:
                registry = RedisBucketRegistry(
                    client, rate, burst, overrides=domains, prefix=prefix
                )
            if global_rate == INF:
                return registry, None
            return registry, RedisTokenBucket(client, f"{prefix}*", global_rate, global_burst)
        if adaptive is not None:
            registry = AdaptiveBuckets(
                rate, burst, config=adaptive, overrides=domains, max_size=max_buckets
            )
        else:
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
        # Returning the request re-schedules it: the scheduler parks it.
        return self._park(request, delay)

    def pause(self, request: Request, seconds: float) -> None:
        """Pause the domain of ``request`` for ``seconds`` from now
        (``Retry-After`` from the retry middleware)."""
        key = self._slot_key(request)
        if self.adaptive is not None:
            self.adaptive.block_for(key, seconds)
            self.stats.inc_value("ratelimit/adaptive/pauses")
        else:
            self.registry.block_for(key, seconds)

    def throttled(self, request: Request, response: Response, retry_after: float | None) -> None:
        """A 429 or 503 answer that the retry middleware retries (it does not
        come back here): learn from it, and pause the domain for
        ``retry_after`` seconds if given."""
        if self.adaptive is not None:
            self._learn_throttle(request, response)
        if retry_after is not None:
            self.pause(request, retry_after)

    # -- adaptive mode ---------------------------------------------------------

    def _slot_key(self, request: Request) -> str:
        try:
            engine = self.crawler.engine
        except RuntimeError:  # no engine: used on its own (tests)
            engine = None
        if engine is None:
            return urlparse_cached(request).hostname or ""
        return engine.downloader.get_slot_key(request)

    def _process_adaptive(self, request: Request, spider: Any = None) -> Request | None:
        meta = request.meta
        if meta.get("dont_ratelimit") or request.callback is NO_CALLBACK:
            return None
        adaptive = self.adaptive
        assert adaptive is not None
        key = self._slot_key(request)
        if meta.pop(RESERVED_KEY, False) and not adaptive.is_blocked(key):
            self._depart(key, meta)
            return None
        if getattr(self.crawler.spider, "stop_reason", None) is not None:
            return None
        reservation, epoch, rate = adaptive.reserve(key, max_wait=HORIZON, intervals=2.0)
        if not reservation.ok:
            return self._park_untokened(request, key, reservation.delay, rate)
        ticket = meta.pop(TICKET_KEY, None)
        if ticket is not None:
            self._admitted(key)
        delay = reservation.delay
        meta[SENT_KEY] = (epoch, rate, delay > 0 or meta.get(WAITED_KEY, False), True, key)
        if self.global_bucket is not None:
            delay = max(delay, self.global_bucket.reserve().delay)
        if delay <= 0:
            self._depart(key, meta)
            return None
        meta[RESERVED_KEY] = True
        return self._park(request, delay)

    def _depart(self, key: str, meta: dict[str, Any]) -> None:
        """The request leaves now: note whether it keeps the pace (a stall of
        the reactor lets parked requests out together, and a server refusing
        one of such a bunch says nothing about the rate)."""
        sent = meta.get(SENT_KEY)
        if sent is None or sent[1] == INF:
            return
        now = monotonic()
        departures = self.departures
        previous = departures.get(key, -INF)
        if len(departures) >= _MAX_DEPARTURES:
            departures.clear()  # bounded: a forgotten slot only loses one check
        departures[key] = now
        if now - previous < BUNCHED / sent[1]:
            meta[SENT_KEY] = (*sent[:3], False, key)

    def _park(self, request: Request, delay: float) -> Request:
        meta = request.meta
        meta[NOT_BEFORE_KEY] = monotonic() + delay
        meta[WAIT_KEY] = meta.get(WAIT_KEY, 0.0) + delay
        stats = self.stats
        if not meta.get(WAITED_KEY):
            meta[WAITED_KEY] = True
            stats.inc_value("ratelimit/delayed")
        self.total_wait += delay
        stats.set_value("ratelimit/wait_seconds", round(self.total_wait, 3))
        if delay > self.max_wait:
            self.max_wait = delay
            stats.set_value("ratelimit/max_wait_seconds", round(delay, 3))
        return request

    def _park_untokened(self, request: Request, key: str, delay: float, rate: float) -> Request:
        """Park a request whose turn is beyond the horizon, without a token,
        until about its turn: its place in the slot's line over the rate,
        halved (it looks again then: the rate may have grown)."""
        meta = request.meta
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = [0, 0]
        ticket = meta.get(TICKET_KEY)
        if ticket is None:
            ticket = meta[TICKET_KEY] = line[0]
            line[0] += 1
        ahead = max(ticket - line[1], 0)
        wait = max(delay - _horizon(rate), 0.0) + ahead / rate
        # Wake early and look again: the rate may have grown meanwhile (slow
        # start doubles it every second). Half the wait, and at most
        # LINE_WAKE seconds per doubling of the place in line: 600 requests
        # in line wake about 150 times a second, the first ones often.
        if wait >= 0.5:
            wait = min(wait / 2, LINE_WAKE * math.log2(2 + ahead))
        return self._park(request, wait)

    def _admitted(self, key: str) -> None:
        line = self.lines.get(key)
        if line is not None:
            line[1] += 1
            if line[1] >= line[0]:
                del self.lines[key]

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        """Adaptive mode: learn from every answer that comes back this far."""
        sent = request.meta.get(SENT_KEY)
        if sent is None:
            return response
        adaptive = self.adaptive
        assert adaptive is not None
        key = sent[4]
        if response.status in _THROTTLE_STATUSES:
            self._learn_throttle(request, response)
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), self.wall_clock())
            if retry_after is not None and 0 < retry_after <= self.max_pause:
                self.pause(request, retry_after)
            return response
        # Headers keeps its keys normalised (title case): a C-level look-up
        # of each, not Headers.__contains__ (a Python call per name).
        if not _HINT_KEYS.isdisjoint(dict.keys(response.headers)):
            self._learn_hints(key, response)
        elif sent[1] == INF:
            return response  # unlimited: clean answers change nothing
        adaptive.clean(key, sent[2])
        if key in self.reported:
            self._refresh(key)
        return response

    def _pass_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        return response

    def _learn_throttle(self, request: Request, response: Response) -> None:
        adaptive = self.adaptive
        assert adaptive is not None
        self.stats.inc_value("ratelimit/adaptive/throttles")
        key = self._slot_key(request)
        self._learn_hints(key, response)
        sent = request.meta.get(SENT_KEY)
        if sent is None:
            return
        learnt = adaptive.throttle(key, sent[0], sent[1], sent[3])
        if learnt is None and not sent[3]:
            self.stats.inc_value("ratelimit/adaptive/bunched")
        if learnt is not None:
            self.stats.inc_value("ratelimit/adaptive/cuts")
            self._changed(learnt, f"cut after a {response.status}")

    def _learn_hints(self, key: str, response: Response) -> None:
        headers = response.headers

        def get(name: str) -> bytes | None:
            values = headers.getlist(name)
            return b", ".join(values) if values else None

        hints = read_hints(get, self.wall_clock())
        if hints is None:
            return
        adaptive = self.adaptive
        assert adaptive is not None
        if hints.quota is not None:
            learnt = adaptive.hint(key, hints.quota)
            if learnt is not None:
                self.stats.inc_value("ratelimit/adaptive/hints")
                self._changed(learnt, f"stated quota {hints.quota:g}/s")
        pause = hints.pause
        if pause is not None and 0 < pause <= self.max_pause:
            # Nothing left until the reset. A reset of 1 s is any instant
            # within the next second (whole seconds, rounded up): with a
            # stated quota, pacing below it already lands the next request
            # in the next window, and waiting a whole second would cost a
            # fifth of a 1 s window's quota.
            learnt = adaptive.learnt(key)
            if pause > 1 or learnt is None or not learnt.hinted:
                adaptive.block_for(key, pause)
                self.stats.inc_value("ratelimit/adaptive/pauses")

    def _changed(self, learnt: Learnt, why: str) -> None:
        if self.log_changes:
            logger.info(
                "Rate of %(slot)s now %(rate).3g/s (%(why)s; limit estimate %(ceiling).3g/s)",
                {"slot": learnt.key, "rate": learnt.rate, "why": why, "ceiling": learnt.ceiling},
                extra={
                    "ratelimit_slot": learnt.key,
                    "ratelimit_rate": learnt.rate,
                    "ratelimit_ceiling": learnt.ceiling,
                },
            )
        self._report(learnt)

    def _report(self, learnt: Learnt) -> None:
        """Keep ``ratelimit/learnt/<slot>`` for the most throttled slots."""
        reported = self.reported
        key = learnt.key
        if key not in reported and len(reported) >= self.report_hosts:
            if not reported:
                return
            weakest = min(reported, key=reported.__getitem__)
            if reported[weakest] >= learnt.throttles:
                return
            del reported[weakest]
            self.stats.get_stats().pop(f"ratelimit/learnt/{weakest}", None)
        reported[key] = learnt.throttles
        self.stats.set_value(f"ratelimit/learnt/{key}", round(learnt.rate, 3))

    def _refresh(self, key: str) -> None:
        """A reported slot's rate grows between changes: keep its stat live."""
        assert self.adaptive is not None
        learnt = self.adaptive.learnt(key)
        if learnt is not None:
            self.stats.set_value(f"ratelimit/learnt/{key}", round(learnt.rate, 3))


def _horizon(rate: float) -> float:
    return HORIZON if rate == INF else max(HORIZON, 2.0 / rate)


def _non_negative(settings: BaseSettings, name: str, kind: type[float] | type[int]) -> float:
    if kind is int:
        return get_int(settings, name, minimum=0)
    return get_float(settings, name, minimum=0)


def adaptive_config(settings: BaseSettings) -> AdaptiveConfig | None:
    """The law's configuration from ``RATELIMIT_ADAPTIVE*``, or ``None`` when
    adaptive mode is off (validated: ``UsageError`` naming the setting)."""
    enabled = get_bool(settings, "RATELIMIT_ADAPTIVE", True)
    start = _rate(settings.get("RATELIMIT_ADAPTIVE_START", 4.0), "RATELIMIT_ADAPTIVE_START")
    low = _rate(settings.get("RATELIMIT_ADAPTIVE_MIN", 0.5), "RATELIMIT_ADAPTIVE_MIN")
    high = _rate(settings.get("RATELIMIT_ADAPTIVE_MAX", 0), "RATELIMIT_ADAPTIVE_MAX")
    for name, value in (("RATELIMIT_ADAPTIVE_START", start), ("RATELIMIT_ADAPTIVE_MIN", low)):
        if value == INF:
            raise UsageError(f"{name} must be > 0 requests/second, got 0")
    if low > high:
        raise UsageError(
            f"RATELIMIT_ADAPTIVE_MIN ({low:g}) must not exceed RATELIMIT_ADAPTIVE_MAX ({high:g})"
        )
    _non_negative(settings, "RATELIMIT_ADAPTIVE_MAX_PAUSE", float)
    _non_negative(settings, "RATELIMIT_ADAPTIVE_REPORT_HOSTS", int)
    get_bool(settings, "RATELIMIT_ADAPTIVE_LOG")
    if not enabled:
        return None
    return AdaptiveConfig(start=min(max(start, low), high), min_rate=low, max_rate=high)


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
