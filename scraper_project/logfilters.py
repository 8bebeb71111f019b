"""Log filters that keep a big crawl's log readable."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.logformatter import LogFormatter

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

ROBOTS_LOGGER = "scrapy.downloadermiddlewares.robotstxt"


class RobotsFetchErrorFilter(logging.Filter):
    """Turn "Error downloading .../robots.txt" from an ERROR with a traceback
    into one DEBUG line.

    A host whose robots.txt cannot be fetched (DNS failure, refused, timeout)
    is allowed by Scrapy, and the page request that follows fails the same way
    and gets its own report row with the error class. With a million URLs and
    some dead hosts, the stock traceback per host buries everything else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Error downloading"):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            record.exc_info = None
            record.exc_text = None
            return logging.getLogger(ROBOTS_LOGGER).isEnabledFor(logging.DEBUG)
        return True


def install() -> None:
    """Install the filters (idempotent)."""
    logger = logging.getLogger(ROBOTS_LOGGER)
    if not any(isinstance(f, RobotsFetchErrorFilter) for f in logger.filters):
        logger.addFilter(RobotsFetchErrorFilter())


class QuietLogFormatter(LogFormatter):
    """``LOG_FORMATTER``: no "Crawled (200)" / "Scraped from" records below
    ``LOG_LEVEL``.

    Scrapy formats both DEBUG messages for every page and the log handler
    drops them afterwards (the loggers stay at NOTSET): a dict, a
    ``LogRecord`` and a handler call per page for nothing. Returning ``None``
    skips all of it. With ``LOG_LEVEL=DEBUG`` they are logged as usual.
    """

    def __init__(self, debug: bool = True) -> None:
        self.debug = debug

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QuietLogFormatter:
        level = crawler.settings.get("LOG_LEVEL")
        if isinstance(level, str):
            level = logging.getLevelName(level.upper())
        debug = not isinstance(level, int) or level <= logging.DEBUG
        return cls(debug=debug)

    def crawled(self, *args: Any, **kwargs: Any) -> Any:
        return super().crawled(*args, **kwargs) if self.debug else None

    def scraped(self, *args: Any, **kwargs: Any) -> Any:
        return super().scraped(*args, **kwargs) if self.debug else None
