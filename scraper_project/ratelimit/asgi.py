"""A pure ASGI middleware that rate-limits HTTP requests per client IP.

No framework needed: it wraps any ASGI 3 application::

    from scraper_project.ratelimit.asgi import RateLimitMiddleware

    app = RateLimitMiddleware(app, rate=5, burst=10, exempt_paths={"/health"})

Each client (by default ``scope["client"][0]``) gets a token bucket from a
:class:`~scraper_project.ratelimit.BucketRegistry`. A request finding its
bucket empty gets ``429 Too Many Requests`` with a ``Retry-After`` header (whole
seconds, rounded up, at least 1) and a short text body; the application never
sees it. Lifespan and websocket scopes pass through untouched.

Behind a reverse proxy every request comes from the proxy's address: run the
server with its proxy-headers option (uvicorn's ``--proxy-headers`` with
``--forwarded-allow-ips``) so that ``scope["client"]`` is the real client, or
pass your own ``key``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._bucket import Clock
from ._registry import BucketRegistry

__all__ = ["ASGIApp", "Message", "RateLimitMiddleware", "Receive", "Scope", "Send", "client_ip"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def client_ip(scope: Scope) -> str | None:
    """The client's host from an HTTP scope, or ``None`` if the server gave none.

    :param scope: The ASGI connection scope.
    """
    client = scope.get("client")
    if not client:
        return None
    return str(client[0])


class RateLimitMiddleware:
    """Answer 429 to clients that exceed ``rate`` requests per second.

    :param app: The ASGI application to protect.
    :param rate: Requests per second allowed to each client, sustained.
    :param burst: Requests a client may make at once (after being idle).
    :param key: Maps a scope to the key of its bucket; the default is
        :func:`client_ip`. Requests for which it returns ``None`` are not
        limited (e.g. a server on a Unix socket gives no client address).
    :param clock: Monotonic clock in seconds, injectable for tests.
    :param max_keys: The most client buckets kept at once; see
        :class:`~scraper_project.ratelimit.BucketRegistry` for the eviction rule.
    :param idle_ttl: Seconds a client's full bucket is kept unused.
    :param exempt_paths: Paths (``scope["path"]``, exact match) never limited,
        e.g. a health check.
    """

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        *,
        key: Callable[[Scope], str | None] = client_ip,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
        idle_ttl: float = 60.0,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.buckets = BucketRegistry(
            rate, burst, max_size=max_keys, idle_ttl=idle_ttl, clock=clock
        )
        self._key = key
        self._exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        reservation = self.buckets.reserve(key, max_wait=0.0)
        if reservation.ok:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(reservation.delay - 1e-9))
        logger.debug(
            "Rate limited %(key)s, retry after %(retry_after)ds",
            {"key": key, "retry_after": retry_after},
            extra={"ratelimit_key": key, "retry_after": retry_after},
        )
        await _send_429(send, retry_after)


async def _send_429(send: Send, retry_after: int) -> None:
    body = b"429 Too Many Requests: retry after %d s\n" % retry_after
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"retry-after", str(retry_after).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
