"""Log filters that keep a big crawl's log readable."""

from __future__ import annotations

import logging

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
