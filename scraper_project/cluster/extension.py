"""``ClusterExtension``: heartbeats, acknowledgements and closing of a worker.

Enabled in cluster mode only (``PAGES_REDIS_URL``). Every tick
(``min(PAGES_FLUSH_INTERVAL or 1, PAGES_CLUSTER_LEASE_TTL / 3)`` seconds) it
flushes the report files and acknowledges the rows they now hold, renews the
worker's lease, re-queues the entries of workers that stopped renewing theirs,
and wakes the engine if the queue has entries while it sat idle. A worker
holding no URL also looks at the queue every 0.25 s, so new work (a list
loaded into a waiting cluster) starts at once, not at the next tick.

A worker stays up while the cluster has work (entries queued or held by any
worker, or a list being loaded) and closes (reason ``finished``) once there
has been none for ``PAGES_CLUSTER_IDLE_CLOSE`` seconds (``0``: never; the
worker then waits for new lists until stopped). On close it hands back
whatever it holds.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scraper_project.cluster.connection import check_redis, is_clustered
from scraper_project.cluster.worker import ClusterWorker
from scraper_project.config import get_float

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

__all__ = ["ClusterExtension"]

logger = logging.getLogger(__name__)


_IDLE_POLL = 0.25  # seconds between looks at the queue of a worker holding nothing


class ClusterExtension:
    """``EXTENSIONS``; see the module docstring."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.worker = ClusterWorker.for_crawler(crawler)
        flush = settings.getfloat("PAGES_FLUSH_INTERVAL") or 1.0
        self.interval = min(flush, self.worker.ttl / 3)
        self.idle_close = settings.getfloat("PAGES_CLUSTER_IDLE_CLOSE")
        self._finished_since: float | None = None
        self._ticker: Any = None
        self._poller: Any = None
        connect = crawler.signals.connect
        connect(self._engine_started, signals.engine_started, weak=False)
        connect(self._finished, signals.item_scraped, weak=False)
        connect(self._finished, signals.item_dropped, weak=False)
        connect(self._finished, signals.item_error, weak=False)
        connect(self._spider_idle, signals.spider_idle, weak=False)
        connect(self._spider_closed, signals.spider_closed, weak=False)

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> bool:
        """In cluster mode: validate ``PAGES_CLUSTER_*`` and make sure Redis
        answers (``UsageError`` naming the problem). Return whether the
        cluster mode is on."""
        if not is_clustered(settings):
            return False
        get_float(settings, "PAGES_CLUSTER_LEASE_TTL", minimum=1.0)
        get_float(settings, "PAGES_CLUSTER_IDLE_CLOSE")
        check_redis(settings)
        return True

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterExtension:
        if not cls.check_settings(crawler.settings):
            raise NotConfigured
        return cls(crawler)

    def _engine_started(self) -> None:
        self.worker.heartbeat()
        logger.info(
            "Cluster worker %(worker)s on %(prefix)s (lease %(ttl)g s)",
            {"worker": self.worker.id, "prefix": self.worker.frontier.prefix,
             "ttl": self.worker.ttl},
            extra={"worker": self.worker.id},
        )  # fmt: skip
        self._ticker = create_looping_call(self.tick)
        self._ticker.start(self.interval, now=False)
        self._poller = create_looping_call(self.poll)
        self._poller.start(_IDLE_POLL, now=False)

    def tick(self) -> None:
        worker = self.worker
        try:
            worker.flush()
            worker.heartbeat()
            if worker.frontier.queued() > 0:
                self._wake_engine()  # else it looks again in up to 5 s
        except Exception:
            # Redis unreachable for a moment: the lease outlives a few ticks.
            logger.warning("cluster tick failed", exc_info=True)

    def poll(self) -> None:
        """A worker holding no URL: start on work queued by another process at
        once, and close on time once the cluster has none left (the engine
        would only look again at its next 5 s heartbeat)."""
        worker = self.worker
        if worker.leases or worker.closed:
            return  # busy: the engine asks the queue by itself
        try:
            worker.flush()  # acknowledge the last rows now: the cluster sees it is done
            if worker.frontier.queued() > 0:
                self._wake_engine()
            elif self.idle_close > 0 and self._idle_for() >= self.idle_close:
                self._wake_engine()  # spider_idle closes the worker
        except Exception:
            logger.debug("cluster poll failed", exc_info=True)  # the tick reports it

    def _idle_for(self) -> float:
        """Seconds since the cluster was first seen without work (0: it has work)."""
        now = monotonic()
        if not self.worker.frontier.status().finished:
            self._finished_since = None
            return 0.0
        if self._finished_since is None:
            self._finished_since = now
        return now - self._finished_since

    def _wake_engine(self) -> None:
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()

    def _finished(self, item: Any = None, **_: Any) -> None:
        try:
            url = item["url"]
        except (TypeError, KeyError):
            return
        self.worker.finished(url)

    def _spider_idle(self) -> None:
        spider: Any = self.crawler.spider
        if getattr(spider, "stop_reason", None) is not None or self.worker.closed:
            return  # stopping: let it close
        if self.worker.frontier.queued() > 0:
            self._finished_since = None
            self._wake_engine()
            raise DontCloseSpider
        idle = self._idle_for()
        if not idle or self.idle_close <= 0 or idle < self.idle_close:
            raise DontCloseSpider
        logger.info(
            "The cluster has had no work for %(idle).1f s (%(done)d rows reported in all): closing",
            {"idle": idle, "done": self.worker.frontier.status().stats.get("done", 0)},
        )

    def _spider_closed(self) -> None:
        for loop in (self._ticker, self._poller):
            if loop is not None and getattr(loop, "running", False):
                loop.stop()
        try:
            self.worker.leave()
        except Exception:
            logger.error("cannot hand back this worker's URLs", exc_info=True)
