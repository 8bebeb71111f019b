"""Request meta keys of a stop, shared by the download handlers and the spider.

Kept apart from the handlers so that importing them does not import Scrapy's
Twisted HTTP client (about 0.1 s of start-up) when it is not used.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CANCELLED_KEY", "NOT_ATTEMPTED_KEY"]

#: The download was in progress when the crawl stopped (row: ``cancelled``).
CANCELLED_KEY: Final = "pages_cancelled"
#: The download had not started when the crawl stopped (``not_attempted``).
NOT_ATTEMPTED_KEY: Final = "pages_not_attempted"
