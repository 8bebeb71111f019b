"""Redirects that end a loop early and name it."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

# A URL may legitimately appear twice in a chain (a cookie check that
# redirects to itself once); a third visit is a loop.
MAX_VISITS = 2


class LoopAwareRedirectMiddleware(RedirectMiddleware):
    """Scrapy's RedirectMiddleware, failing with ``redirect loop`` as soon as
    a chain visits the same URL a third time, instead of following it until
    ``REDIRECT_MAX_TIMES``."""

    def handle_referer(self, request: Request, response: Any) -> None:
        # A page checker sends no Referer: each URL is checked on its own.
        request.headers.pop(b"Referer", None)

    def _engine_started(self) -> None:
        # Scrapy warns here when RefererMiddleware is off; it is off on
        # purpose (see handle_referer).
        self._referer_spider_middleware = None

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain: list[str] = request.meta.get("redirect_urls", [])
        target = redirected.url
        if target == request.url or target in chain:
            visits = chain.count(target) + (target == request.url)
            if visits >= MAX_VISITS:
                raise IgnoreRequest(f"redirect loop: {request.url} -> {target}")
        if "download_slot" in redirected.meta and urlparse_cached(redirected).hostname != (
            urlparse_cached(request).hostname
        ):
            # Scrapy stores the first host's slot in meta and the copy keeps
            # it: a hop to another host must be paced (and paused) as that host.
            del redirected.meta["download_slot"]
        return super()._redirect(redirected, request, reason)
