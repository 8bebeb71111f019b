"""scrapy-redis's scheduler with leases, the delay queue and URL fingerprints.

- :class:`ClusterScheduler`: ``scrapy_redis.scheduler.Scheduler`` (shared
  queue and dupefilter, ``SCHEDULER_PERSIST``) plus the delay queue of
  :class:`~scraper_project.scheduler.DelayQueueMixin`: requests parked by the
  rate limiter or a retry backoff stay in this process, still leased.
- :class:`LeasedQueue` (``SCHEDULER_QUEUE_CLASS``): takes entries with a lease
  instead of scrapy-redis's plain pop, which loses a batch when a worker dies
  (see :mod:`scraper_project.cluster.frontier`). Follow-ups of a leased
  request (redirects, retries) stay local: the lease covers them.
- :class:`URLDupeFilter` (``DUPEFILTER_CLASS``): scrapy-redis's dupefilter on
  the fingerprint of the normalised URL, the key the list loader fills.
"""

from __future__ import annotations

import warnings
from collections import deque
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import Base
from scrapy_redis.scheduler import Scheduler as RedisScheduler

from scraper_project.cluster.frontier import url_fingerprint
from scraper_project.cluster.worker import ClusterWorker
from scraper_project.scheduler import DelayQueueMixin

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

__all__ = ["ClusterScheduler", "LeasedQueue", "URLDupeFilter"]


class LeasedQueue(Base):  # type: ignore[misc]
    """``SCHEDULER_QUEUE_CLASS`` of the cluster mode; see the module docstring."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.worker = ClusterWorker.for_crawler(spider.crawler)
        self.local: deque[Request] = deque()

    def __len__(self) -> int:
        return len(self.local) + self.worker.frontier.queued()

    def push(self, request: Request) -> None:
        # Every request of the pages spider comes from an entry (leased) or
        # is a follow-up of one: it stays here, covered by the lease.
        self.local.append(request)

    def pop(self, timeout: int = 0) -> Request | None:
        if self.local:
            return self.local.popleft()
        return self.worker.next_request()

    def take_local(self) -> list[Request]:
        requests = list(self.local)
        self.local.clear()
        return requests


class _RedisScheduler(RedisScheduler):  # type: ignore[misc]
    """scrapy-redis's scheduler, minus its deprecated ``spider=`` stats calls,
    taking from the shared queue only while this worker has room."""

    queue: LeasedQueue
    parked_cap = 16

    def open(self, spider: Spider) -> None:
        # scrapy-redis 0.9 logs "Resuming crawl" with Spider.log(), which
        # Scrapy 2.19 deprecates: a warning in every worker's log.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Spider.log", ScrapyDeprecationWarning)
            super().open(spider)

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        queue = self.queue
        # A worker holding CONCURRENT_REQUESTS parked requests (rate limit,
        # backoff) takes no more: the rest of the queue is for other workers.
        if not queue.local and self.delayed_count() >= self.parked_cap:
            return None
        request = queue.pop(0)
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


class ClusterScheduler(DelayQueueMixin, _RedisScheduler):
    """``SCHEDULER`` of the cluster mode; see the module docstring."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterScheduler:
        scheduler: ClusterScheduler = super().from_crawler(crawler)
        scheduler.parked_cap = crawler.settings.getint("CONCURRENT_REQUESTS")
        return scheduler

    def take_ready(self) -> list[Request]:
        # Only what this process holds: the shared queue belongs to the cluster.
        return self.queue.take_local()


class URLDupeFilter(RFPDupeFilter):  # type: ignore[misc]
    """scrapy-redis's dupefilter keyed by the normalised URL's fingerprint."""

    def request_fingerprint(self, request: Request) -> str:
        return url_fingerprint(request.meta.get("url") or request.url)
