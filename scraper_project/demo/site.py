"""A deterministic, dependency-free ASGI demo site for crawling tests and demos.

Every body is a pure function of the request (except ``/fail/*``, whose
answers depend on an in-memory counter, and the ``/__*`` control routes).
Routes answer GET and HEAD; other methods get ``405``.  The Host header is
ignored, so any name mapped to 127.0.0.1 reaches the same site.

Control routes (never recorded):

* ``/__requests[?since=I]`` -- JSON list of recorded requests with index >= I.
* ``/__reset`` -- clear the request log and the ``/fail`` counters.
* ``/__stats`` -- JSON ``{"total": ..., "kept": ..., "statuses": {...}}``.

Use :func:`build_app` to get the ASGI application.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import html
import itertools
import json
import os
import struct
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import IO, Any, Final
from urllib.parse import parse_qs, quote

# --------------------------------------------------------------------------
# ASGI typing (kept local: no framework dependency)
# --------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A function wrapping an ASGI app into another one (e.g. a rate limiter).
Middleware = Callable[[ASGIApp], ASGIApp]

Headers = list[tuple[bytes, bytes]]

HTML_UTF8: Final = b"text/html; charset=utf-8"
PAGE_MIN_SIZE: Final = 2048
PAGE_MAX_SIZE: Final = 10240
LARGE_CHUNK: Final = 64 * 1024
DEFAULT_LARGE_SIZE: Final = 1024 * 1024
MAX_LARGE_SIZE: Final = 1 << 40
MAX_DELAY: Final = 24 * 3600.0
MAX_DRIP_BYTES: Final = 1_000_000
DEFAULT_MAX_RECORDS: Final = 200_000
_MAX_INT_DIGITS: Final = 30

# --------------------------------------------------------------------------
# Deterministic content
# --------------------------------------------------------------------------

_WORDS: Final = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "crawler",
    "spider",
    "scrapy",
    "title",
    "status",
    "redirect",
    "charset",
    "latency",
    "throughput",
    "request",
    "response",
)


def _make_padding(size: int) -> str:
    """Deterministic ASCII prose of at least ``size`` characters."""
    parts: list[str] = []
    length = 0
    state = 12345
    line = 0
    while length < size:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        word = _WORDS[state % len(_WORDS)]
        line += len(word) + 1
        sep = "\n" if line > 72 else " "
        if sep == "\n":
            line = 0
        parts.append(word + sep)
        length += len(word) + 1
    return "".join(parts)


_PADDING: Final = _make_padding(PAGE_MAX_SIZE + 64)
_FILLER: Final = _make_padding(LARGE_CHUNK).encode("ascii")[:LARGE_CHUNK]
_FILLER2: Final = _FILLER + _FILLER


def _html(title: str, body: str = "", head_extra: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"{head_extra}<title>{html.escape(title, quote=False)}</title>\n</head>\n"
        f"<body>\n<h1>{html.escape(title, quote=False)}</h1>\n{body}</body>\n</html>\n"
    )


def _html_bytes(title: str, body: str = "") -> bytes:
    return _html(title, body).encode("utf-8")


def page_size(n: int) -> int:
    """Exact body length in bytes of ``/page/{n}`` (2 KiB..10 KiB)."""
    return PAGE_MIN_SIZE + (n * 7919) % (PAGE_MAX_SIZE - PAGE_MIN_SIZE + 1)


_page_cache: dict[int, bytes] = {}
_PAGE_CACHE_MAX: Final = 4096


def page_body(n: int) -> bytes:
    """Body of ``/page/{n}``: title ``Page {n}``, exactly ``page_size(n)`` bytes."""
    cached = _page_cache.get(n)
    if cached is not None:
        return cached
    prefix = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Page {n}</title>\n</head>\n<body>\n<h1>Page {n}</h1>\n"
        f'<p><a href="/page/{n + 1}">next</a> <a href="/">home</a></p>\n<p>'
    )
    suffix = "</p>\n</body>\n</html>\n"
    pad = page_size(n) - len(prefix) - len(suffix)
    body = (prefix + _PADDING[: max(pad, 0)] + suffix).encode("ascii")
    if len(_page_cache) >= _PAGE_CACHE_MAX:
        _page_cache.clear()
    _page_cache[n] = body
    return body


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def _make_png() -> bytes:
    """A valid 2x2 RGB PNG."""
    width = height = 2
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"\x00\xff\x00\x00\x00\xff\x00" + b"\x00\x00\x00\xff\xff\xff\xff"
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def _make_pdf() -> bytes:
    """A small valid one-page PDF with a correct xref table."""
    content = b"BT /F1 18 Tf 20 40 Td (scraper_project demo) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _charset_page(title: str, head_extra: str = "") -> str:
    return (
        f"<!DOCTYPE html>\n<html>\n<head>\n{head_extra}<title>{title}</title>\n"
        f"</head>\n<body>\n<p>{title}</p>\n</body>\n</html>\n"
    )


_TITLE_DECOYS: Final = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
    "<!-- <title>Comment decoy</title> -->\n"
    '<script>var t="<title>Script decoy</title>";</script>\n'
    "<title> Real &amp; true\n   title </title>\n</head>\n<body>\n"
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    "<title>SVG decoy</title></svg>\n<p>decoys</p>\n</body>\n</html>\n"
)
LONG_TITLE: Final = ("Lorem ipsum dolor sit amet " * 200)[:4999] + "."
CONTROL_TITLE: Final = "Control\x01chars\x07 and\ttab\nnewline"

_INDEX_LINKS: Final = [
    *(f"/page/{i}" for i in range(10)),
    "/status/404",
    "/status/500",
    "/redirect?to=/page/1",
    "/redirect/chain/3",
    "/title/decoys",
    "/charset/latin1",
    "/binary/png",
    "/json",
    "/robots.txt",
]


def _index_body() -> bytes:
    items = "".join(f'<li><a href="{u}">{u}</a></li>\n' for u in _INDEX_LINKS)
    return _html_bytes("scraper_project demo site", f"<ul>\n{items}</ul>\n")


Static = tuple[int, Headers, bytes]


def _static(body: bytes, content_type: bytes = HTML_UTF8, status: int = 200) -> Static:
    return status, [(b"content-type", content_type)], body


def _redirect_static(location: bytes) -> Static:
    headers = [(b"content-type", HTML_UTF8), (b"location", location)]
    return 302, headers, _html_bytes("Redirect")


_GZIP_PLAIN: Final = _html_bytes("Gzipped", "<p>This body is gzip-compressed.</p>\n")

STATIC_ROUTES: Final[dict[str, Static]] = {
    "/": _static(_index_body()),
    "/charset/latin1": _static(
        _charset_page("Café crème").encode("iso-8859-1"),
        b"text/html; charset=iso-8859-1",
    ),
    "/charset/cp1251-meta": _static(
        _charset_page("Привет мир", '<meta charset="windows-1251">\n').encode("cp1251"),
        b"text/html",
    ),
    "/charset/utf8-bom": _static(
        b"\xef\xbb\xbf" + _charset_page("Grüße").encode("utf-8"), b"text/html"
    ),
    "/charset/header-wins": _static(
        _charset_page("Señor", '<meta charset="utf-8">\n').encode("iso-8859-1"),
        b"text/html; charset=iso-8859-1",
    ),
    "/charset/utf16": _static(
        b"\xff\xfe" + _charset_page("Ünïcödé").encode("utf-16-le"), b"text/html"
    ),
    "/title/decoys": _static(_TITLE_DECOYS.encode("utf-8")),
    "/title/none": _static(
        b'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n</head>\n'
        b"<body>\n<h1>No title here</h1>\n</body>\n</html>\n"
    ),
    "/title/long": _static(_html_bytes(LONG_TITLE)),
    "/title/control": _static(
        (
            '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            f"<title>{CONTROL_TITLE}</title>\n</head>\n<body>\n</body>\n</html>\n"
        ).encode()
    ),
    "/binary/png": _static(_make_png(), b"image/png"),
    "/binary/pdf": _static(_make_pdf(), b"application/pdf"),
    "/json": _static(
        json.dumps({"ok": True, "site": "scraper_project demo", "items": [1, 2, 3]}).encode(
            "utf-8"
        ),
        b"application/json",
    ),
    "/empty": _static(b"", b"text/html"),
    "/gzip": (
        200,
        [(b"content-type", HTML_UTF8), (b"content-encoding", b"gzip")],
        gzip.compress(_GZIP_PLAIN, compresslevel=6, mtime=0),
    ),
    "/robots.txt": _static(b"User-agent: *\nDisallow: /private/\n", b"text/plain; charset=utf-8"),
    "/loop": _redirect_static(b"/loop"),
    "/loop/a": _redirect_static(b"/loop/b"),
    "/loop/b": _redirect_static(b"/loop/a"),
}

_NOT_FOUND: Final = _html_bytes("Not found", "<p>No such page.</p>\n")
_SHUTTING_DOWN: Final = _html_bytes("Shutting down")
_PRIVATE: Final = _html_bytes("Private", "<p>Robots should not fetch this.</p>\n")
_LARGE_HEAD: Final = (
    b'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
    b"<title>Large</title>\n</head>\n<body>\n<p>"
)
_LARGE_TAIL: Final = b"</p>\n</body>\n</html>\n"
_DRIP_HEAD: Final = b"<!DOCTYPE html><html><head><title>Drip</title></head><body>"


def _status_body(code: int) -> bytes:
    return _html_bytes(f"Status {code}", f"<p>This page answers {code}.</p>\n")


def _slice_large(start: int, end: int, size: int) -> bytes:
    """Bytes [start, end) of the virtual ``/large`` document of ``size`` bytes."""
    head_len, tail_len = len(_LARGE_HEAD), len(_LARGE_TAIL)
    if size < head_len + tail_len:
        return (_LARGE_HEAD + _LARGE_TAIL)[start:end]
    tail_start = size - tail_len
    out = bytearray()
    if start < head_len:
        out += _LARGE_HEAD[start : min(end, head_len)]
    lo, hi = max(start, head_len), min(end, tail_start)
    while lo < hi:
        offset = (lo - head_len) % LARGE_CHUNK
        take = min(hi - lo, LARGE_CHUNK)
        out += _FILLER2[offset : offset + take]
        lo += take
    if end > tail_start:
        out += _LARGE_TAIL[max(start, tail_start) - tail_start : end - tail_start]
    return bytes(out)


def large_chunks(size: int) -> Iterator[bytes]:
    """The ``/large?size=N`` body as 64 KiB chunks."""
    for start in range(0, size, LARGE_CHUNK):
        yield _slice_large(start, min(start + LARGE_CHUNK, size), size)


def drip_body(size: int) -> bytes:
    """Body dripped by ``/drip?bytes=N``."""
    if size <= len(_DRIP_HEAD):
        return _DRIP_HEAD[:size]
    return _DRIP_HEAD + b"." * (size - len(_DRIP_HEAD))


# --------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------


@dataclass(slots=True)
class RequestRecord:
    """One recorded request (times are taken when the request arrives)."""

    index: int
    time: float
    monotonic: float
    method: str
    path: str
    host: str | None
    user_agent: str | None
    client: str | None
    client_port: int | None
    status: int | None = None
    #: Requests in progress when this one arrived, itself included: the
    #: concurrency a client really reached, measured on the server's side.
    in_flight: int = 0

    def as_dict(self) -> dict[str, Any]:
        # Hand-written: dataclasses.asdict deep-copies and is ~10x slower.
        return {
            "index": self.index,
            "time": self.time,
            "monotonic": self.monotonic,
            "method": self.method,
            "path": self.path,
            "host": self.host,
            "user_agent": self.user_agent,
            "client": self.client,
            "client_port": self.client_port,
            "status": self.status,
            "in_flight": self.in_flight,
        }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _target(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = (
        bytes(raw).decode("latin-1")
        if raw
        else quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~")
    )
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


class SiteState:
    """Mutable state of one site: request log, ``/fail`` counters, log file."""

    def __init__(
        self,
        *,
        log_file: str | os.PathLike[str] | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=max(max_records, 0))
        self.total = 0
        self.in_flight = 0
        self.fail_counts: dict[str, int] = {}
        self._strings: dict[str, str] = {}
        self._log: IO[str] | None = (
            open(log_file, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if log_file is not None
            else None
        )

    def _intern(self, value: str | None) -> str | None:
        # Hosts and user agents repeat a lot: share the string objects.
        if value is None:
            return None
        shared = self._strings.get(value)
        if shared is not None:
            return shared
        if len(self._strings) < 10_000:
            self._strings[value] = value
        return value

    def record(self, scope: Scope) -> RequestRecord:
        client = scope.get("client")
        rec = RequestRecord(
            index=self.total,
            time=time.time(),
            monotonic=time.monotonic(),
            method=self._intern(scope.get("method", "GET")) or "GET",
            path=_target(scope),
            host=self._intern(_header(scope, b"host")),
            user_agent=self._intern(_header(scope, b"user-agent")),
            client=self._intern(str(client[0])) if client else None,
            client_port=int(client[1]) if client else None,
        )
        self.in_flight += 1
        rec.in_flight = self.in_flight
        self.total += 1
        self.records.append(rec)
        return rec

    def finish(self, rec: RequestRecord) -> None:
        """Called when a request ends (answered or abandoned): log-file line."""
        self.in_flight -= 1
        if self._log is not None and not self._log.closed:
            self._log.write(json.dumps(rec.as_dict(), ensure_ascii=False) + "\n")
            self._log.flush()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        if not self.records:
            return []
        skip = max(0, since - self.records[0].index)
        return [r.as_dict() for r in itertools.islice(self.records, skip, None)]

    def stats(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for rec in self.records:
            key = str(rec.status)
            statuses[key] = statuses.get(key, 0) + 1
        return {"total": self.total, "kept": len(self.records), "statuses": statuses}

    def reset(self) -> None:
        self.records.clear()
        self.total = 0
        self.fail_counts.clear()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


def _query(scope: Scope) -> dict[str, str]:
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    if not raw:
        return {}
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _parse_int(text: str) -> int | None:
    if not text or len(text) > _MAX_INT_DIGITS or not text.isascii():
        return None
    if not text.isdigit():
        return None
    return int(text)


def _int_param(query: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    if name not in query:
        return default
    value = _parse_int(query[name])
    if value is None or not lo <= value <= hi:
        raise _BadRequest(f"{name} must be an integer in [{lo}, {hi}]")
    return value


def _float_param(query: dict[str, str], name: str, default: float, lo: float, hi: float) -> float:
    if name not in query:
        return default
    try:
        value = float(query[name])
    except ValueError:
        raise _BadRequest(f"{name} must be a number") from None
    if not lo <= value <= hi:  # also rejects NaN
        raise _BadRequest(f"{name} must be in [{lo}, {hi}]")
    return value


def _header_value(text: str) -> bytes:
    if not text.isascii() or not text.isprintable():
        raise _BadRequest("header value must be printable ASCII")
    return text.encode("ascii")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Headers | None = None,
    content_type: bytes | None = HTML_UTF8,
) -> None:
    out: Headers = []
    if content_type is not None:
        out.append((b"content-type", content_type))
    if headers:
        out.extend(headers)
    no_body = status in (204, 304)
    if not no_body:
        out.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if no_body else body})


async def _send_static(send: Send, static: Static) -> None:
    status, headers, body = static
    await _respond(send, status, body, headers, content_type=None)


class _Watch:
    """Background watch for "stop now": client disconnect or site shutdown.

    Reads ``receive()`` until ``http.disconnect`` and waits on the app's
    shutdown event; ``event`` is set by whichever comes first.
    """

    def __init__(self, receive: Receive, shutdown: asyncio.Event) -> None:
        self.event = asyncio.Event()
        self.disconnected = False
        self._tasks = [
            asyncio.ensure_future(self._client(receive)),
            asyncio.ensure_future(self._stop(shutdown)),
        ]

    async def _client(self, receive: Receive) -> None:
        await _wait_disconnect(receive)
        self.disconnected = True
        self.event.set()

    async def _stop(self, shutdown: asyncio.Event) -> None:
        await shutdown.wait()
        self.event.set()

    @property
    def interrupted(self) -> bool:
        return self.event.is_set()

    async def sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; return True early if interrupted."""
        if delay <= 0:
            await asyncio.sleep(0)
            return self.event.is_set()
        try:
            await asyncio.wait_for(self.event.wait(), delay)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------

Handler = Callable[[Scope, Receive, Send, str], Awaitable[None]]


class DemoApp:
    """The demo site as an ASGI application (see module docstring for routes).

    Layering: ``/__*`` control routes and request recording sit outside the
    optional ``middleware``; every other route runs inside it.  A middleware
    that rejects a request (e.g. with 429) therefore still sees it recorded,
    with the status it answered.
    """

    def __init__(
        self,
        *,
        state: SiteState | None = None,
        middleware: Middleware | None = None,
    ) -> None:
        self.state = state if state is not None else SiteState()
        #: Set by :meth:`begin_shutdown`; long-running routes end promptly.
        self.shutdown_event = asyncio.Event()
        routes: ASGIApp = self.routes
        self.inner: ASGIApp = middleware(routes) if middleware is not None else routes
        self._prefix: list[tuple[str, Handler]] = [
            ("/page/", self._page),
            ("/status/", self._status),
            ("/redirect/chain/", self._chain),
            ("/fail/", self._fail),
            ("/private/", self._private),
        ]
        self._exact: dict[str, Handler] = {
            "/redirect": self._redirect,
            "/large": self._large,
            "/slow": self._slow,
            "/hang": self._hang,
            "/drip": self._drip,
            "/headers": self._headers,
            "/urls": self._urls,
        }

    def begin_shutdown(self) -> None:
        """Make ``/hang``, ``/slow`` (503) and ``/drip``, ``/large`` end now."""
        self.shutdown_event.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return  # websockets are not supported: the server rejects them
        if scope["path"].startswith("/__"):
            await self._control(scope, send)
            return
        rec = self.state.record(scope)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                rec.status = int(message["status"])
            await send(message)

        try:
            await self.inner(scope, receive, recording_send)
        finally:
            self.state.finish(rec)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.state.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _control(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == "/__requests":
            since = _parse_int(_query(scope).get("since", "0")) or 0
            body = json.dumps(self.state.requests(since), ensure_ascii=False)
        elif path == "/__reset":
            self.state.reset()
            body = json.dumps({"reset": True})
        elif path == "/__stats":
            body = json.dumps(self.state.stats())
        else:
            await _respond(send, 404, _NOT_FOUND)
            return
        await _respond(send, 200, body.encode("utf-8"), content_type=b"application/json")

    async def routes(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The public routes (the part a middleware wraps)."""
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(
                send,
                405,
                _html_bytes("Method not allowed"),
                [(b"allow", b"GET, HEAD")],
            )
            return
        path: str = scope["path"]
        try:
            static = STATIC_ROUTES.get(path)
            if static is not None:
                await _send_static(send, static)
                return
            handler = self._exact.get(path)
            if handler is not None:
                await handler(scope, receive, send, "")
                return
            for prefix, prefixed in self._prefix:
                if path.startswith(prefix):
                    await prefixed(scope, receive, send, path[len(prefix) :])
                    return
        except _BadRequest as exc:
            body = _html_bytes("Bad request", f"<p>{html.escape(str(exc))}</p>\n")
            await _respond(send, 400, body)
            return
        await _respond(send, 404, _NOT_FOUND)

    # -- handlers ----------------------------------------------------------

    async def _page(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        n = _parse_int(arg)
        if n is None:
            await _respond(send, 404, _NOT_FOUND)
            return
        await _respond(send, 200, page_body(n))

    async def _status(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        code = _parse_int(arg)
        if code is None or not 200 <= code <= 599:
            raise _BadRequest("status must be an integer in [200, 599]")
        headers: Headers = []
        query = _query(scope)
        if "retry_after" in query:
            headers.append((b"retry-after", _header_value(query["retry_after"])))
        await _respond(send, code, _status_body(code), headers)

    async def _redirect(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        query = _query(scope)
        code = _int_param(query, "code", 302, 300, 399)
        if code == 304:
            raise _BadRequest("304 is not a redirect")
        target = query.get("to", "/")
        location = quote(target, safe=":/?#[]@!$&'()*+,;=%~").encode("ascii")
        await _respond(send, code, _html_bytes("Redirect"), [(b"location", location)])

    async def _chain(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        n = _parse_int(arg)
        if n is None:
            await _respond(send, 404, _NOT_FOUND)
            return
        location = f"/redirect/chain/{n - 1}" if n > 0 else "/page/0"
        headers = [(b"location", location.encode("ascii"))]
        await _respond(send, 302, _html_bytes("Redirect"), headers)

    async def _fail(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        query = _query(scope)
        times = _int_param(query, "times", 1, 0, 10**9)
        status = _int_param(query, "status", 503, 200, 599)
        headers: Headers = []
        if "retry_after" in query:
            headers.append((b"retry-after", _header_value(query["retry_after"])))
        seen = self.state.fail_counts.get(arg, 0) + 1
        self.state.fail_counts[arg] = seen
        if seen <= times:
            await _respond(send, status, _html_bytes(f"Failing {arg}"), headers)
        else:
            await _respond(send, 200, _html_bytes(f"Recovered {arg}"))

    async def _private(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        await _respond(send, 200, _PRIVATE)

    async def _urls(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        """A URL list of this site's pages (``?count=N&start=S``), so that
        crawls can take their list from a URL."""
        query = _query(scope)
        count = _int_param(query, "count", 100, 0, 10_000_000)
        start = _int_param(query, "start", 0, 0, 10**9)
        host = _header(scope, b"host") or "127.0.0.1"
        base = f"http://{host}"
        body = "".join(f"{base}/page/{i}\n" for i in range(start, start + count))
        await _respond(send, 200, body.encode("ascii"), content_type=b"text/plain; charset=utf-8")

    async def _headers(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        echoed: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            name = bytes(key).decode("latin-1").lower()
            text = bytes(value).decode("latin-1")
            echoed[name] = f"{echoed[name]}, {text}" if name in echoed else text
        body = json.dumps(echoed, ensure_ascii=False).encode("utf-8")
        await _respond(send, 200, body, content_type=b"application/json")

    async def _large(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        size = _int_param(_query(scope), "size", DEFAULT_LARGE_SIZE, 0, MAX_LARGE_SIZE)
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", HTML_UTF8)]})
        if scope["method"] == "HEAD" or size == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        watch = _Watch(receive, self.shutdown_event)
        try:
            for chunk in large_chunks(size):
                if watch.interrupted:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(0)  # let the watcher run
            if not watch.disconnected:  # on shutdown: end the stream early
                await send({"type": "http.response.body", "body": b""})
        finally:
            await watch.close()

    async def _slow(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        delay = _float_param(_query(scope), "delay", 1.0, 0.0, MAX_DELAY)
        watch = _Watch(receive, self.shutdown_event)
        try:
            interrupted = await watch.sleep(delay)
        finally:
            await watch.close()
        if not interrupted:
            body = _html_bytes("Slow", f"<p>Waited {delay} s.</p>\n")
            await _respond(send, 200, body)
        elif not watch.disconnected:
            await _respond(send, 503, _SHUTTING_DOWN)

    async def _hang(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        watch = _Watch(receive, self.shutdown_event)
        try:
            await watch.event.wait()
        finally:
            await watch.close()
        if not watch.disconnected:
            await _respond(send, 503, _SHUTTING_DOWN)

    async def _drip(self, scope: Scope, receive: Receive, send: Send, arg: str) -> None:
        query = _query(scope)
        size = _int_param(query, "bytes", 10, 0, MAX_DRIP_BYTES)
        interval = _float_param(query, "interval", 0.5, 0.0, MAX_DELAY)
        headers: Headers = [
            (b"content-type", HTML_UTF8),
            (b"content-length", str(size).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD" or size == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        body = drip_body(size)
        watch = _Watch(receive, self.shutdown_event)
        try:
            for i in range(size):
                if await watch.sleep(interval):
                    if not watch.disconnected:  # shutdown: finish at once
                        await send({"type": "http.response.body", "body": body[i:]})
                    return
                more = i < size - 1
                piece = body[i : i + 1]
                await send({"type": "http.response.body", "body": piece, "more_body": more})
        finally:
            await watch.close()


def build_app(
    *,
    log_file: str | os.PathLike[str] | None = None,
    max_records: int = DEFAULT_MAX_RECORDS,
    middleware: Middleware | None = None,
    state: SiteState | None = None,
) -> DemoApp:
    """Build the demo site.

    ``log_file``: append one JSON line per request (written when it ends).
    ``max_records``: how many recent requests ``/__requests`` keeps (0: none).
    ``middleware``: wraps the public routes (not ``/__*`` nor the recorder),
    e.g. ``build_app(middleware=lambda app: RateLimit(app, rate=10))``.
    ``state``: share a :class:`SiteState` (otherwise a fresh one is made).
    """
    if state is None:
        state = SiteState(log_file=log_file, max_records=max_records)
    elif log_file is not None:
        raise ValueError("pass log_file to SiteState when giving a state")
    return DemoApp(state=state, middleware=middleware)
