"""A pure ASGI middleware that rate-limits HTTP requests per client IP.

No framework needed: it wraps any ASGI 3 application::

    from scraper_project.ratelimit.asgi import RateLimitMiddleware

    app = RateLimitMiddleware(app, rate=5, burst=10, exempt_paths={"/health"})

Each client (by default ``scope["client"][0]``) gets a token bucket from a
:class:`~scraper_project.ratelimit.BucketRegistry` (``algorithm="gcra"``, the
default: ``rate`` per second, ``burst`` at once), or a counter of requests per
fixed window of ``window`` seconds (``algorithm="window"``: ``rate * window``
per window, as most API frameworks count). A request over the limit gets
``429 Too Many Requests`` with a ``Retry-After`` header (whole seconds,
rounded up, at least 1) and a short text body; the application never sees it.
Lifespan and websocket scopes pass through untouched.

Every response, the application's included, carries the quota in the
``RateLimit-Policy`` and ``RateLimit`` fields of
draft-ietf-httpapi-ratelimit-headers (structured fields), unless
``headers=False``::

    RateLimit-Policy: "default";q=5;w=1
    RateLimit: "default";r=4;t=1

``q`` requests per ``w`` seconds; ``r`` more may come within ``t`` seconds.
A token bucket refills continuously, which integer seconds cannot say
exactly: its ``w`` is the smallest whole number of seconds holding a whole
number of tokens (up to a minute), and ``r`` what it would still accept,
evenly spaced, over the next ``w`` seconds (``t = w``). A window says what
it counts: ``r`` left until its end, ``t`` seconds away.

Behind a reverse proxy every request comes from the proxy's address: run the
server with its proxy-headers option (uvicorn's ``--proxy-headers`` with
``--forwarded-allow-ips``) so that ``scope["client"]`` is the real client, or
pass your own ``key``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._bucket import Clock
from ._registry import BucketRegistry

#: The policy's name in the RateLimit fields.
POLICY = "default"

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
    :param algorithm: ``"gcra"`` (a token bucket) or ``"window"`` (a counter
        per fixed window).
    :param window: The window's length in whole seconds (``"window"`` only).
    :param headers: Send the ``RateLimit`` fields on every response.
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
        algorithm: str = "gcra",
        window: int = 1,
        headers: bool = True,
    ) -> None:
        if algorithm not in {"gcra", "window"}:
            raise ValueError(f"algorithm must be 'gcra' or 'window', got {algorithm!r}")
        if not (isinstance(window, int) and window >= 1):
            raise ValueError(f"window must be a whole number of seconds >= 1, got {window!r}")
        self.app = app
        self.buckets = BucketRegistry(
            rate, burst, max_size=max_keys, idle_ttl=idle_ttl, clock=clock
        )
        self.rate = rate
        self.algorithm = algorithm
        self._clock = clock
        self._key = key
        self._exempt = frozenset(exempt_paths)
        self._headers = headers
        self._max_keys = max_keys
        if algorithm == "window":
            self._window = window
            self._quota = max(1, math.floor(rate * window + 1e-9))
        else:
            self._window, self._quota = _policy_window(rate)
        self._policy = b'"%s";q=%d;w=%d' % (POLICY.encode(), self._quota, self._window)
        self._counts: OrderedDict[str, list[float]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if self.algorithm == "window":
            retry_after, remaining, reset = self._count(key)
        else:
            retry_after, remaining, reset = self._reserve(key)
        fields: list[tuple[bytes, bytes]] = []
        if self._headers:
            fields = [
                (b"ratelimit-policy", self._policy),
                (b"ratelimit", b'"%s";r=%d;t=%d' % (POLICY.encode(), remaining, reset)),
            ]
        if retry_after is None:
            if not fields:
                await self.app(scope, receive, send)
                return

            async def send_with_fields(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", ()), *fields]}
                await send(message)

            await self.app(scope, receive, send_with_fields)
            return
        logger.debug(
            "Rate limited %(key)s, retry after %(retry_after)ds",
            {"key": key, "retry_after": retry_after},
            extra={"ratelimit_key": key, "retry_after": retry_after},
        )
        await _send_429(send, retry_after, fields)

    def _reserve(self, key: str) -> tuple[int | None, int, int]:
        """Token bucket: (Retry-After or None, remaining, reset)."""
        bucket = self.buckets.get(key)
        reservation = bucket.reserve(max_wait=0.0)
        tokens = bucket.tokens()
        remaining = max(0, min(self._quota, math.floor(tokens + self.rate * self._window)))
        if reservation.ok:
            return None, remaining, self._window
        return max(1, math.ceil(reservation.delay - 1e-9)), remaining, self._window

    def _count(self, key: str) -> tuple[int | None, int, int]:
        """Fixed window: (Retry-After or None, remaining, reset)."""
        now = self._clock()
        start = math.floor(now / self._window) * self._window
        counts = self._counts
        entry = counts.get(key)
        if entry is None or entry[0] != start:
            entry = counts[key] = [start, 0]
            if len(counts) > self._max_keys:
                counts.popitem(last=False)
        counts.move_to_end(key)
        reset = max(1, math.ceil(start + self._window - now - 1e-9))
        if entry[1] >= self._quota:
            return reset, 0, reset
        entry[1] += 1
        return None, int(self._quota - entry[1]), reset


def _policy_window(rate: float) -> tuple[int, int]:
    """(w, q): the fewest whole seconds holding a whole number of tokens."""
    for w in range(1, 61):
        q = rate * w
        if q >= 1 and abs(q - round(q)) < 1e-6 * q:
            return w, round(q)
    return 60, max(1, math.floor(rate * 60))


async def _send_429(send: Send, retry_after: int, fields: list[tuple[bytes, bytes]]) -> None:
    body = b"429 Too Many Requests: retry after %d s\n" % retry_after
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"retry-after", str(retry_after).encode("ascii")),
                *fields,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
