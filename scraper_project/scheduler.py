"""Scrapy's scheduler plus a delay queue.

A request whose ``meta["pages_not_before"]`` (a :func:`time.monotonic`
instant) lies in the future waits here until then. Downloader middlewares
park a request by setting that key and returning the request (Scrapy then
re-schedules it): the rate limiter while its domain's bucket refills, the
retry middleware during a backoff. A parked request holds no downloader slot
and blocks nothing else: other domains keep flowing at full speed. The engine
does not close the spider while requests are parked (they are pending).

The wake-up is one reactor timer for the earliest parked request, so parking
costs a heap push, whatever the number of parked requests.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy.core.scheduler import Scheduler
from scrapy.utils.asyncio import CallLaterResult, call_later

from scraper_project.stats import inc, live_stats

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request
    from scrapy.crawler import Crawler

__all__ = ["NOT_BEFORE_KEY", "DelayQueueMixin", "DelayingScheduler"]

NOT_BEFORE_KEY = "pages_not_before"


class DelayQueueMixin:
    """The delay queue, for any Scrapy scheduler class (``Scheduler``, the
    Redis scheduler of the cluster mode): put it first in the bases."""

    crawler: Crawler | None = None
    stats: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delayed: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self._timer: CallLaterResult | None = None
        self._timer_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        scheduler = super().from_crawler(crawler)  # type: ignore[misc]
        scheduler.crawler = crawler
        return scheduler

    # -- the delay queue ---------------------------------------------------

    stopping = False
    _late: Callable[[list[Request]], None] | None = None

    def enqueue_request(self, request: Request) -> bool:
        if self.stopping and self._late is not None:
            # Queued now, nobody would fetch it and close() would drop it.
            self._late([request])
            return True
        not_before = request.meta.get(NOT_BEFORE_KEY)
        if not_before is not None and not self.stopping and not_before > monotonic():
            heapq.heappush(self._delayed, (not_before, next(self._seq), request))
            assert self.stats is not None
            self.stats.inc_value("scheduler/delayed")
            self._arm(not_before)
            return True
        return super().enqueue_request(request)  # type: ignore[misc,no-any-return]

    def next_request(self) -> Request | None:
        delayed = self._delayed
        if delayed and delayed[0][0] <= monotonic():
            # A parked request that is due goes first: its time slot (a
            # reserved token, a backoff) is now, and any wait behind newer
            # requests would bunch it up with the next ones of its domain.
            request = heapq.heappop(delayed)[2]
            if delayed:
                self._arm(delayed[0][0])
            assert self.stats is not None
            self.stats.inc_value("scheduler/dequeued")
            return request
        return super().next_request()  # type: ignore[misc,no-any-return]

    def delayed_count(self) -> int:
        """Requests parked until a later time."""
        return len(self._delayed)

    def ready_count(self) -> int:
        """Requests that could be downloaded now."""
        return super().__len__()  # type: ignore[misc,no-any-return]

    def __len__(self) -> int:
        return super().__len__() + len(self._delayed)  # type: ignore[misc,no-any-return]

    def take_all(self, late: Callable[[list[Request]], None] | None = None) -> list[Request]:
        """The crawl is stopping: remove and return every request, parked or
        ready (each then gets its row at once), and park no more.

        A request enqueued after this goes to ``late`` at once: a middleware's
        answer (a request it parked or sent back) may still be on its way to
        the engine when the crawl stops, and the engine, closing, no longer
        pulls from the scheduler (seen under load: a few URLs of a
        deadline-cut crawl had no row)."""
        self.stopping = True
        self._late = late
        self._disarm()
        requests = [entry[2] for entry in sorted(self._delayed)]
        self._delayed.clear()
        requests.extend(self.take_ready())
        return requests

    def take_ready(self) -> list[Request]:
        """Remove and return the requests that are ready (not parked)."""
        requests = []
        while (request := super().next_request()) is not None:  # type: ignore[misc]
            requests.append(request)
        return requests

    def close(self, reason: str) -> Any:
        if self._late is not None and len(self):
            self._late(self.take_all(self._late))
        self._disarm()
        return super().close(reason)  # type: ignore[misc]

    # -- wake-up -----------------------------------------------------------

    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            if self._timer_at <= when:
                return
            timer.cancel()
        self._timer_at = when
        self._timer = call_later(max(0.0, when - monotonic()), self._wake)

    def _disarm(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _wake(self) -> None:
        self._timer = None
        # Ask the engine to pull from the scheduler now rather than at its
        # next heartbeat (up to 5 s later). There is no public API for this.
        engine = self.crawler.engine if self.crawler is not None else None
        slot = getattr(engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()
        # The request this timer was armed for may have left already (pulled
        # by the engine on its own); keep a timer for the earliest one left.
        # One already due is pulled by the engine as soon as it has room.
        delayed = self._delayed
        if delayed and delayed[0][0] > monotonic():
            self._arm(delayed[0][0])


class _MemoryScheduler(Scheduler):
    """Scrapy's scheduler with a plain in-memory queue when there is no
    ``JOBDIR`` (with one, Scrapy's disk and memory queues as usual).

    The same order as Scrapy's default queues: higher ``priority`` first; at
    the same priority, requests made during the crawl (redirects) last in,
    first out, before start requests, which go first in, first out. Without
    the priority-queue and downstream-queue objects and the stats wrapper:
    about 3% of the crawl's CPU (notes/week-8.md, "Speed")."""

    _fast = False

    def open(self, spider: Any) -> Any:
        result = super().open(spider)
        if self.dqs is None:
            self._fast = True
            # priority -> (crawl requests: LIFO, start requests: FIFO)
            self._queues: dict[int, tuple[deque[Request], deque[Request]]] = {}
            self._priorities: list[int] = []  # ascending
            self._count = 0
            assert self.stats is not None
            self._stats = live_stats(self.stats)
        return result

    def enqueue_request(self, request: Request) -> bool:
        if not self._fast:
            return super().enqueue_request(request)
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        priority = request.priority
        queues = self._queues.get(priority)
        if queues is None:
            queues = self._queues[priority] = (deque(), deque())
            bisect.insort(self._priorities, priority)
        queues[1 if request.meta.get("is_start_request") else 0].append(request)
        self._count += 1
        stats = self._stats
        inc(stats, "scheduler/enqueued/memory")
        inc(stats, "scheduler/enqueued")
        return True

    def next_request(self) -> Request | None:
        if not self._fast:
            return super().next_request()
        if not self._count:
            return None
        for priority in reversed(self._priorities):
            crawl, start = self._queues[priority]
            if crawl:
                request = crawl.pop()
            elif start:
                request = start.popleft()
            else:
                continue
            self._count -= 1
            stats = self._stats
            inc(stats, "scheduler/dequeued/memory")
            inc(stats, "scheduler/dequeued")
            return request
        return None

    def __len__(self) -> int:
        if self._fast:
            return self._count
        return super().__len__()


class DelayingScheduler(DelayQueueMixin, _MemoryScheduler):
    """``SCHEDULER = "scraper_project.scheduler.DelayingScheduler"``."""
