"""Retries with exponential backoff, full jitter and ``Retry-After``.

Replaces Scrapy's ``RetryMiddleware`` (which retries at once and ignores
``Retry-After``), keeping its settings and meta keys (``RETRY_TIMES``,
``RETRY_HTTP_CODES``, ``RETRY_EXCEPTIONS``, ``dont_retry``,
``max_retry_times``) and its ``retry/*`` stats. Added:

- The delay before retry *n* is a full-jitter draw in
  ``[0, min(RETRY_BACKOFF_MAX, RETRY_BACKOFF_BASE * 2**(n-1))]``, or exactly
  the response's ``Retry-After`` (seconds or HTTP date) when it has one.
- ``Retry-After`` longer than ``RETRY_AFTER_MAX`` is not honoured: the URL
  gives up at once and its row reports the status (a server asking for a day
  must not stall the run).
- A 429 or 503 with ``Retry-After`` pauses the whole domain (its rate-limit
  bucket), not just that URL; a retried 429/503 also cuts the domain's
  learnt rate (``RATELIMIT_ADAPTIVE``).
- The retry is parked in the
  :class:`~scraper_project.scheduler.DelayingScheduler`: it holds no
  concurrency slot and blocks nothing; other URLs keep flowing.
- A retry budget per domain: retries beyond
  ``RETRY_BUDGET_MIN + RETRY_BUDGET_RATIO * attempts`` are not made, so a
  failing host cannot multiply the load.

Stats: ``retry/count``, ``retry/reason_count/<reason>``, ``retry/max_reached``
(Scrapy's), ``retry/backoff_seconds``, ``retry/retry_after_honoured``,
``retry/retry_after_too_long``, ``retry/budget_exhausted``, ``retry/gave_up``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import UsageError
from scrapy.http import HtmlResponse
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message

from scraper_project.backoff import backoff_delay, parse_retry_after
from scraper_project.config import get_bool, get_int, get_list, get_log_level, usage_error
from scraper_project.middlewares.ratelimit import RateLimitMiddleware
from scraper_project.scheduler import NOT_BEFORE_KEY
from scraper_project.title import MAX_TITLE_LENGTH, page_title

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_PAUSING_STATUSES = frozenset({429, 503})
_MAX_BUDGET_DOMAINS = 10_000

#: Request meta of a pending retry: what the response it retries said, so
#: that a crawl stopped before the retry reports it (row: ``cancelled``).
LAST_RESPONSE_KEY: Final = "pages_last_response"


class LastResponse(NamedTuple):
    """The report fields of a response that is being retried (its title as a
    string: a pending retry does not keep a body alive)."""

    url: str
    status: int
    length: int
    title: str
    content_type: str


def _number(settings: BaseSettings, name: str, *, minimum: float = 0.0) -> float:
    raw = settings.get(name)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number, got {raw!r}", print_help=False) from None
    if math.isnan(value) or value < minimum:
        raise UsageError(f"{name} must be >= {minimum:g}, got {raw!r}", print_help=False)
    return value


class BackoffRetryMiddleware(RetryMiddleware):
    """Downloader middleware; see the module docstring."""

    def __init__(
        self,
        settings: BaseSettings,
        *,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.check_settings(settings)
        super().__init__(settings)
        self.title_max_length = get_int(
            settings, "PAGES_TITLE_MAX_LENGTH", minimum=0, default=MAX_TITLE_LENGTH
        )
        config = self.config_from_settings(settings)
        self.base, self.cap, self.retry_after_max, self.budget_min, self.budget_ratio = config
        self.rand = rand
        self.clock = clock
        self.wall_clock = wall_clock
        # slot key -> [attempts, retries], least recently used first
        self.budgets: OrderedDict[str, list[int]] = OrderedDict()
        self._ratelimit: RateLimitMiddleware | None = None
        self._ratelimit_looked_up = False
        self._get_slot_key: Callable[[Request], str] | None = None

    @staticmethod
    def config_from_settings(settings: BaseSettings) -> tuple[float, float, float, float, float]:
        """Parse and validate the backoff settings (raise ``UsageError``)."""
        base = _number(settings, "RETRY_BACKOFF_BASE")
        cap = _number(settings, "RETRY_BACKOFF_MAX")
        retry_after_max = _number(settings, "RETRY_AFTER_MAX")
        budget_min = _number(settings, "RETRY_BUDGET_MIN")
        budget_ratio = _number(settings, "RETRY_BUDGET_RATIO")
        for name in ("RETRY_TIMES",):
            raw = settings.get(name)
            try:
                if int(raw) < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise UsageError(
                    f"{name} must be an integer >= 0, got {raw!r}", print_help=False
                ) from None
        return base, cap, retry_after_max, budget_min, budget_ratio

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> None:
        """Validate the ``RETRY_*`` settings (``UsageError`` naming a bad one)."""
        if not get_bool(settings, "RETRY_ENABLED"):
            return
        cls.config_from_settings(settings)
        for code in get_list(settings, "RETRY_HTTP_CODES"):
            if not code.isdigit() or not 100 <= int(code) <= 599:
                raise usage_error(
                    f"RETRY_HTTP_CODES must be HTTP statuses (e.g. 500,503), got {code!r}"
                )
        for path in settings.getlist("RETRY_EXCEPTIONS"):
            if isinstance(path, str):
                try:
                    load_object(path)
                except (ImportError, NameError, AttributeError, ValueError):
                    raise usage_error(
                        f"RETRY_EXCEPTIONS: cannot import {path!r} (an exception class)"
                    ) from None
        get_int(settings, "RETRY_PRIORITY_ADJUST", minimum=None, default=-1)
        get_log_level(settings, "RETRY_GIVE_UP_LOG_LEVEL")

    @property
    def stats(self) -> StatsCollector:
        assert self.crawler.stats is not None
        return self.crawler.stats

    # -- the hot path --------------------------------------------------------

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        budget = self._budget(request)
        budget[0] += 1
        if response.status not in self.retry_http_codes or request.meta.get("dont_retry"):
            return response
        retry_after = parse_retry_after(response.headers.get(b"Retry-After"), self.wall_clock())
        if retry_after is not None and retry_after > self.retry_after_max:
            self.stats.inc_value("retry/retry_after_too_long")
            self._give_up(
                request,
                f"Retry-After {retry_after:g} s is longer than RETRY_AFTER_MAX "
                f"({self.retry_after_max:g} s)",
            )
            return response
        reason = response_status_message(response.status)
        new = self._retry_with_delay(request, reason, budget, retry_after)
        if new is None:
            return response
        if response.status in _PAUSING_STATUSES:
            limiter = self._find_ratelimit()
            if limiter is not None:
                # The answer stops here: the limiter learns from it (adaptive
                # rate) and pauses the domain for its Retry-After.
                limiter.throttled(request, response, retry_after)
        new.meta[LAST_RESPONSE_KEY] = self._last_response(response)
        return new

    def process_exception(
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | Response | None:
        budget = self._budget(request)
        budget[0] += 1
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry"):
            return None
        new = self._retry_with_delay(request, exception, budget, None)
        if new is not None:
            new.meta.pop(LAST_RESPONSE_KEY, None)  # that response is not the last outcome
        return new

    def _last_response(self, response: Response) -> LastResponse:
        content_type = response.headers.get(b"Content-Type")
        title = ""
        if isinstance(response, HtmlResponse):
            title = page_title(response.body, content_type, self.title_max_length)
        return LastResponse(
            response.url,
            response.status,
            len(response.body),
            title,
            content_type.decode("latin-1") if content_type else "",
        )

    # -- helpers ---------------------------------------------------------------

    def _retry_with_delay(
        self,
        request: Request,
        reason: str | Exception,
        budget: list[int],
        retry_after: float | None,
    ) -> Request | None:
        if getattr(self.crawler.spider, "stop_reason", None) is not None:
            return None  # stopping: report the last outcome, do not retry
        attempts, retries = budget
        if retries >= self.budget_min + self.budget_ratio * attempts:
            self.stats.inc_value("retry/budget_exhausted")
            self._give_up(request, f"retry budget of the domain spent ({reason})")
            return None
        new = self._retry(request, reason)
        if new is None:
            self.stats.inc_value("retry/gave_up")
            return None
        budget[1] += 1
        if retry_after is not None:
            delay = retry_after
            self.stats.inc_value("retry/retry_after_honoured")
        else:
            delay = backoff_delay(new.meta["retry_times"], self.base, self.cap, self.rand)
        new.meta[NOT_BEFORE_KEY] = self.clock() + delay
        backoff = self.stats.get_value("retry/backoff_seconds", 0.0) + delay
        self.stats.set_value("retry/backoff_seconds", round(backoff, 3))
        return new

    def _give_up(self, request: Request, why: str) -> None:
        self.stats.inc_value("retry/gave_up")
        logger.info(
            "Gave up retrying %(request)s: %(why)s",
            {"request": request, "why": why},
            extra={"url": request.url, "reason": why},
        )

    def _slot_key(self, request: Request) -> str:
        get_slot_key = self._get_slot_key
        if get_slot_key is None:
            try:
                get_slot_key = self._get_slot_key = self.crawler.engine.downloader.get_slot_key
            except RuntimeError:  # no engine: used on its own (tests)
                return urlparse_cached(request).hostname or ""
        return get_slot_key(request)

    def _budget(self, request: Request) -> list[int]:
        key = self._slot_key(request)
        budgets = self.budgets
        budget = budgets.get(key)
        if budget is None:
            budget = budgets[key] = [0, 0]
            if len(budgets) > _MAX_BUDGET_DOMAINS:
                budgets.popitem(last=False)  # the least recently used domain
        else:
            budgets.move_to_end(key)
        return budget

    def _find_ratelimit(self) -> RateLimitMiddleware | None:
        if not self._ratelimit_looked_up:
            self._ratelimit_looked_up = True
            try:
                middlewares = self.crawler.engine.downloader.middleware.middlewares
            except RuntimeError:  # no engine: used on its own (tests)
                middlewares = ()
            for mw in middlewares:
                if isinstance(mw, RateLimitMiddleware):
                    self._ratelimit = mw
        return self._ratelimit
