"""Stamp when a URL's first download starts, for the report's ``elapsed_ms``."""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy import Request

START_KEY = "pages_t0"


class TimingMiddleware:
    """Sets ``request.meta["pages_t0"]`` once; redirects and retries copy meta,
    so the report measures from the first attempt to the final answer.

    It sits after the robots.txt middleware, so a robots.txt fetch is not
    counted, and after rate limiting, so pacing waits are not either.
    """

    def process_request(self, request: Request, spider: Any = None) -> None:
        meta = request.meta
        if START_KEY not in meta:
            meta[START_KEY] = monotonic()
