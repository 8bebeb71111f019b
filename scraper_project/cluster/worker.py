"""One crawl process's side of the cluster: what it has taken and must report."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import TYPE_CHECKING, Any

from scraper_project.cluster.connection import cluster_key, redis_client
from scraper_project.cluster.frontier import Entry, Frontier
from scraper_project.report import ReportWriter, flush_feeds
from scraper_project.stats import inc, live_stats

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

__all__ = ["LEASE_KEY", "ClusterWorker"]

logger = logging.getLogger(__name__)

#: Request meta: the queue entry the request was made from (its lease).
LEASE_KEY = "pages_lease"

# Ready rows (invalid lines) written per take before a URL comes up.
_MAX_ROWS_PER_TAKE = 1000


class ClusterWorker:
    """The leases of one crawl process (one per crawler: :meth:`for_crawler`).

    Entries taken from the queue stay leased until their row is in the report
    *and* the report is flushed (:meth:`flush`), then they are acknowledged;
    entries the process will not finish are released to the queue.
    """

    def __init__(self, crawler: Crawler, frontier: Frontier, ttl: float) -> None:
        self.crawler = crawler
        self.frontier = frontier
        self.ttl = ttl
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.leases: dict[str, str] = {}  # url -> entry
        self.pending: list[str] = []  # entries whose rows are written, to ack
        self.closed = False

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> ClusterWorker:
        worker: ClusterWorker | None = getattr(crawler, "_pages_cluster_worker", None)
        if worker is None:
            settings = crawler.settings
            frontier = Frontier(redis_client(settings), cluster_key(settings))
            worker = cls(crawler, frontier, settings.getfloat("PAGES_CLUSTER_LEASE_TTL"))
            crawler._pages_cluster_worker = worker  # type: ignore[attr-defined]
        return worker

    def _stats(self) -> dict[str, Any]:
        assert self.crawler.stats is not None
        return live_stats(self.crawler.stats)

    # -- taking ----------------------------------------------------------

    def next_request(self) -> Request | None:
        """The next URL of the queue as a request (leased), or ``None``.

        Ready rows met on the way are written to the report at once."""
        if self.closed:
            return None
        spider: Any = self.crawler.spider
        if getattr(spider, "stop_reason", None) is not None:
            return None
        rows = 0
        while rows < _MAX_ROWS_PER_TAKE:
            taken = self.frontier.take(self.id)
            if not taken:
                return None
            entry = Entry.decode(taken[0])
            inc(self._stats(), "cluster/taken")
            if entry.row is not None:
                ReportWriter.for_crawler(self.crawler).write([entry.row])
                self.pending.append(entry.raw)
                rows += 1
                continue
            assert entry.url is not None
            self.leases[entry.url] = entry.raw
            request: Request = spider.page_request(entry.url, entry.line, {LEASE_KEY: entry.raw})
            return request
        return None

    # -- reporting ---------------------------------------------------------

    def finished(self, url: str) -> None:
        """The row of ``url`` went to the report: acknowledge at the next flush."""
        entry = self.leases.pop(url, None)
        if entry is not None:
            self.pending.append(entry)

    def release(self, url: str) -> None:
        """``url`` will not be finished here: back to the queue."""
        entry = self.leases.pop(url, None)
        if entry is not None:
            inc(self._stats(), "cluster/released", self.frontier.release(self.id, [entry]))

    def release_requests(self, requests: list[Request]) -> None:
        """Requests this process held (parked, queued): back to the queue."""
        entries = []
        for request in requests:
            entry = self.leases.pop(request.meta.get("url", ""), None)
            if entry is not None:
                entries.append(entry)
        inc(self._stats(), "cluster/released", self.frontier.release(self.id, entries))

    def flush(self) -> None:
        """Flush the report files, then acknowledge the rows they now hold."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        flush_feeds(self.crawler)
        inc(self._stats(), "cluster/acked", self.frontier.ack(self.id, pending))

    def heartbeat(self) -> None:
        """Renew this worker's lease; reclaim dead workers' entries."""
        if self.closed:
            return
        reclaimed = self.frontier.heartbeat(self.id, self.ttl)
        if reclaimed:
            inc(self._stats(), "cluster/reclaimed", reclaimed)
            logger.warning(
                "Re-queued %(count)d URLs of workers that stopped renewing their lease",
                {"count": reclaimed},
                extra={"reclaimed": reclaimed},
            )

    def leave(self) -> None:
        """The crawl is over here: ack what is written, hand back the rest."""
        if self.closed:
            return
        self.flush()
        if self.leases:
            inc(self._stats(), "cluster/released", len(self.leases))
        self.leases.clear()
        self.frontier.leave(self.id)
        self.closed = True
