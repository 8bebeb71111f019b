"""An HTTP/1.1 download handler whose downloads can be cancelled.

Scrapy's handler gives no way to stop a download in progress: on close the
engine waits for every one of them (a 3 s deadline took 31 s with
``DOWNLOAD_TIMEOUT=30``). This subclass keeps the Deferred of each download
so that :meth:`cancel_all` ends them at once (their rows say ``cancelled``),
and once stopping it refuses new downloads (``not_attempted``).

``download_request`` mirrors Scrapy 2.19's own, which is why the project pins
Scrapy below 2.20.

The project's download handler (``fasthttp``) sends requests with
``meta["proxy"]`` here. Twisted resolves the proxy's name with the reactor's
resolver, which is the crawl's :class:`~scraper_project.resolver.AsyncResolver`
(same cache, same rules); it is looked up here first, so that a failure is a
``dns_error`` or ``blocked_address`` row saying why (Twisted only says "DNS
lookup failed") and Twisted's own lookup a cache hit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler, _ScrapyAgent
from scrapy.exceptions import DownloadCancelledError, ResponseDataLossError
from scrapy.utils._download_handlers import get_dataloss_msg, wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from scraper_project.cancel import CANCELLED_KEY, NOT_ATTEMPTED_KEY
from scraper_project.resolver import AsyncResolver

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

logger = logging.getLogger(__name__)

__all__ = ["CANCELLED_KEY", "NOT_ATTEMPTED_KEY", "CancellableHTTP11DownloadHandler"]


class CancellableHTTP11DownloadHandler(HTTP11DownloadHandler):
    """``DOWNLOAD_HANDLERS = {"http": ..., "https": ...}``."""

    stopping = False
    _inflight: dict[Request, Deferred[Response]]

    async def download_request(self, request: Request) -> Response:
        if self.stopping:
            request.meta[NOT_ATTEMPTED_KEY] = True
            raise DownloadCancelledError("not attempted: the crawl is stopping")
        inflight = self.__dict__.setdefault("_inflight", {})
        proxy = request.meta.get("proxy")
        host = urlsplit(proxy).hostname if isinstance(proxy, str) and proxy else None
        if host:
            resolver = AsyncResolver.for_crawler(self._crawler)
            if resolver.cached(host) is None:
                # A Deferred, so that cancel_all() stops the lookup too.
                lookup = Deferred.fromFuture(asyncio.ensure_future(resolver.resolve(host)))
                inflight[request] = lookup
                try:
                    await maybe_deferred_to_future(lookup)
                finally:
                    inflight.pop(request, None)
        agent = _ScrapyAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        deferred = agent.download_request(request)
        inflight[request] = deferred
        try:
            with wrap_twisted_exceptions():
                return await maybe_deferred_to_future(deferred)
        except ResponseDataLossError:
            if not self._fail_on_dataloss_warned:
                logger.warning(get_dataloss_msg(request.url))
                self._fail_on_dataloss_warned = True
            raise
        finally:
            inflight.pop(request, None)

    def cancel_all(self) -> int:
        """Stop accepting downloads and cancel those in progress; return how
        many were cancelled."""
        self.stopping = True
        inflight = self.__dict__.get("_inflight", {})
        cancelled = 0
        for request, deferred in list(inflight.items()):
            request.meta[CANCELLED_KEY] = True
            deferred.cancel()
            cancelled += 1
        return cancelled
