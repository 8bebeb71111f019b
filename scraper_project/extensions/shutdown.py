"""Deadlines and Ctrl-C that finish fast and lose no row.

Replaces Scrapy's ``CloseSpider`` extension (same settings:
``CLOSESPIDER_TIMEOUT``, ``..._ITEMCOUNT``, ``..._PAGECOUNT``,
``..._ERRORCOUNT``) and its signal handling. Whatever stops the crawl (a
deadline, a count, the first SIGINT or SIGTERM), the stop is the same:

1. downloads in progress are cancelled (rows: ``cancelled``) and no new one
   starts (``not_attempted``): nothing waits for ``DOWNLOAD_TIMEOUT``;
2. parked requests (rate limit, retry backoff) are released so that they get
   their rows at once;
3. the spider stops fetching and turns every line left in the list into a
   ``not_attempted`` row (still validated and deduplicated);
4. then the spider closes as usual and the feed exports finish their files.

A second SIGINT/SIGTERM stops at once, after closing the report files
properly (a JSON array gets its closing bracket), so they hold every row
finished so far. And every second the report files are flushed, so even
``kill -9`` loses at most the last second of a CSV or JSON-lines report.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.extensions.closespider import CloseSpider
from scrapy.utils.asyncio import create_looping_call

from scraper_project.config import get_bool, get_float, get_int
from scraper_project.report import feed_slots, flush_feeds

if TYPE_CHECKING:
    from types import FrameType

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulShutdown(CloseSpider):
    """``EXTENSIONS``: replaces ``scrapy.extensions.closespider.CloseSpider``."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stop_reason: str | None = None
        self.signals_received = 0
        self._previous_handlers: dict[int, Any] = {}
        self._flusher: Any = None
        self.flush_interval, self.handle_signals = self.check_settings(crawler.settings)
        # CloseSpider raises NotConfigured when none of its settings is set;
        # the signal handling and flushing are wanted regardless.
        try:
            super().__init__(crawler)
        except NotConfigured:
            self.close_on = {}
        crawler.signals.connect(self._engine_started, signals.engine_started, weak=False)
        crawler.signals.connect(self._spider_closed, signals.spider_closed, weak=False)

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> tuple[float, bool]:
        """Validate ``PAGES_FLUSH_INTERVAL``, ``PAGES_HANDLE_SIGNALS`` and the
        ``CLOSESPIDER_*`` conditions (``UsageError`` naming a bad one); return
        the first two."""
        get_float(settings, "CLOSESPIDER_TIMEOUT")
        for name in ("CLOSESPIDER_ITEMCOUNT", "CLOSESPIDER_PAGECOUNT", "CLOSESPIDER_ERRORCOUNT"):
            get_int(settings, name, minimum=0)
        for name in ("CLOSESPIDER_TIMEOUT_NO_ITEM", "CLOSESPIDER_PAGECOUNT_NO_ITEM"):
            get_int(settings, name, minimum=0)
        return (
            get_float(settings, "PAGES_FLUSH_INTERVAL"),
            get_bool(settings, "PAGES_HANDLE_SIGNALS"),
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GracefulShutdown:
        return cls(crawler)

    # -- stopping ------------------------------------------------------------

    def _close_spider(self, reason: str) -> None:
        """Every CLOSESPIDER_* condition ends up here: stop gracefully."""
        self.stop(reason)

    def stop(self, reason: str) -> None:
        """Begin the graceful stop (idempotent)."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        spider = self.crawler.spider
        logger.info(
            "Stopping (%(reason)s): cancelling downloads, accounting for the rest of the list",
            {"reason": reason},
            extra={"reason": reason},
        )
        cancelled = 0
        for handler in self._handlers():
            cancelled += handler.cancel_all()
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("shutdown/cancelled_downloads", cancelled)
        begin = getattr(spider, "begin_stop", None)
        if begin is not None:
            begin(reason)
        else:  # not the pages spider: plain close
            super()._close_spider(reason)

    def _handlers(self) -> list[Any]:
        """The download handlers that can cancel (``cancel_all()``): the
        project's, whichever is configured."""
        try:
            handlers = self.crawler.engine.downloader.handlers._handlers
        except (RuntimeError, AttributeError):
            return []
        seen: list[Any] = []
        for handler in handlers.values():
            if callable(getattr(handler, "cancel_all", None)) and handler not in seen:
                seen.append(handler)
        return seen

    # -- signals -------------------------------------------------------------

    def _engine_started(self) -> None:
        if self.flush_interval > 0:
            self._flusher = create_looping_call(self.flush_feeds)
            self._flusher.start(self.flush_interval, now=False)
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous_handlers[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        from twisted.internet import reactor

        self.signals_received += 1
        name = signal.Signals(signum).name
        if self.signals_received == 1:
            reactor.callFromThread(self._first_signal, name)
        else:
            reactor.callFromThread(self._second_signal, name)

    def _first_signal(self, name: str) -> None:
        logger.info(
            "Received %(signal)s, stopping gracefully; send it again to stop at once",
            {"signal": name},
        )
        self.stop("shutdown")

    def _second_signal(self, name: str) -> None:
        logger.info(
            "Received %(signal)s twice: closing the report and stopping now", {"signal": name}
        )
        self.finish_feeds()
        logging.shutdown()
        os._exit(128 + signal.Signals[name].value)

    def _spider_closed(self) -> None:
        if self._flusher is not None and getattr(self._flusher, "running", False):
            self._flusher.stop()
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    # -- the report files ----------------------------------------------------

    def _feed_slots(self) -> list[Any]:
        return feed_slots(self.crawler)

    def flush_feeds(self) -> None:
        """Push what the exporters wrote to the OS (once a second)."""
        flush_feeds(self.crawler)

    def finish_feeds(self) -> None:
        """Close every report file properly, right now (second Ctrl-C)."""
        for slot in self._feed_slots():
            try:
                if not getattr(slot, "_exporting", False):
                    slot.start_exporting()
                slot.finish_exporting()
                slot.file.flush()
                slot.storage.store(slot.file)
            except Exception:
                logger.error("cannot finish the report %s", slot.uri, exc_info=True)


__all__ = ["GracefulShutdown"]
