"""A raw TCP server for malformed-HTTP cases (stdlib only).

:class:`RawServer` runs its own asyncio event loop in a background thread, so
it works from synchronous tests and next to a Twisted/asyncio reactor without
touching that reactor's loop::

    with RawServer() as raw:
        crawl([raw.url + "/reset", raw.url + "/truncated"])
        assert raw.paths() == ["/reset", "/truncated"]

Each connection serves exactly one request: the request line is read, the
remaining headers are skipped up to the blank line, then the path decides:

``/reset``      close with a TCP RST (SO_LINGER on, timeout 0), no response
``/close``      close cleanly without sending anything
``/truncated``  200 with ``Content-Length: 1000`` but only 20 body bytes
``/malformed``  ``HTTP/1.1 abc nonsense`` status line, then close
``/garbage``    256 deterministic non-HTTP bytes, then close
``/hang``       never answer (until the client closes or the server stops)
``/ok``         valid small HTML 200, title "Raw OK", ``Connection: close``
other paths     404, title "Raw not found", ``Connection: close``

Hostile endpoints (resource exhaustion). The bombs are 200 ``text/html``
responses with ``Content-Length`` whose body decompresses to
:data:`BOMB_SIZE` (100 MiB) zero bytes; each is built once, lazily, in a worker
thread, and cached (see :func:`bomb_body`):

``/bomb/gzip``     ``Content-Encoding: gzip`` (level 9, ~100 KB)
``/bomb/deflate``  ``Content-Encoding: deflate`` (zlib format, level 9)
``/bomb/br``       ``Content-Encoding: br`` (brotli, a few hundred bytes)
``/bomb/zstd``     ``Content-Encoding: zstd`` (one frame, content size not
                   declared, as a streaming server would send it)
``/bomb/nested``   ``Content-Encoding: gzip, gzip``: gzip of the gzip bomb
``/huge-headers``  200 with :data:`HUGE_HEADER_COUNT` header lines of
                   :data:`HUGE_HEADER_LINE` bytes each (CRLF included), then a
                   small HTML body (title "Huge headers")
``/endless``       ``Transfer-Encoding: chunked`` HTML that never ends: a chunk
                   every 10 ms until the client closes or the server stops
                   (closed without a last chunk after :data:`ENDLESS_LIMIT` s)
``/slow-drip``     ``Content-Length: 1000``, then one body byte per second
                   (closed after :data:`DRIP_LIMIT` s)
``/header-drip``   the status line, then one header line per second, never a
                   blank line (closed after :data:`DRIP_LIMIT` s)

The slow ones stop within ~50 ms of the client closing (EOF or a reset) and
of :meth:`RawServer.stop`.

Extra canned answers can be given as ``RawServer(responses={"/x": b"..."})``:
those bytes are sent verbatim, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Mapping
from types import TracebackType
from urllib.parse import urlsplit

OK_BODY = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
    b"<title>Raw OK</title></head><body><p>ok</p></body></html>\n"
)
NOT_FOUND_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Raw not found</title></head><body></body></html>\n"
)
TRUNCATED_DECLARED = 1000
TRUNCATED_BODY = b"<html><title>Trunc</"  # 20 of the 1000 announced bytes
MALFORMED = b"HTTP/1.1 abc nonsense\r\n\r\n"
_rng = random.Random(20240501)
GARBAGE = b"\x00\xff\xfe\x01" + bytes(_rng.randrange(256) for _ in range(252))

_MAX_HEADER_LINES = 200

BOMB_SIZE = 100 * 1024 * 1024  # decompressed size of every /bomb/* body
BOMB_ENCODINGS = {
    "gzip": "gzip",
    "deflate": "deflate",
    "br": "br",
    "zstd": "zstd",
    "nested": "gzip, gzip",
}  # /bomb/<name> -> its Content-Encoding header
HUGE_HEADER_COUNT = 2000
HUGE_HEADER_LINE = 100  # bytes per header line, CRLF included
HUGE_HEADERS_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Huge headers</title></head><body></body></html>\n"
)
ENDLESS_LIMIT = 60.0  # seconds
ENDLESS_INTERVAL = 0.01
DRIP_LIMIT = 120.0  # seconds
DRIP_DECLARED = 1000
DRIP_BODY = (b"<!DOCTYPE html>\n<html><head><title>Slow drip</title></head><body>" + b"." * 1000)[
    :DRIP_DECLARED
]
_POLL = 0.05  # how often slow endpoints look for a closed client / a stop

_ZEROS = bytes(1024 * 1024)
_bombs: dict[str, bytes] = {}
_bombs_lock = threading.RLock()  # "nested" builds "gzip" inside


def _compress_zeros(compress: Callable[[bytes], bytes], flush: Callable[[], bytes]) -> bytes:
    """:data:`BOMB_SIZE` zero bytes through a streaming compressor (1 MiB at a time)."""
    parts = [compress(_ZEROS) for _ in range(BOMB_SIZE // len(_ZEROS))]
    parts.append(flush())
    return b"".join(parts)


def _zlib_bomb(wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return _compress_zeros(compressor.compress, compressor.flush)


def _build_bomb(name: str) -> bytes:
    if name == "gzip":
        return _zlib_bomb(31)  # wbits 16 + 15: gzip header and trailer
    if name == "deflate":
        return _zlib_bomb(15)  # zlib header and checksum (HTTP "deflate")
    if name == "nested":
        outer = zlib.compressobj(9, zlib.DEFLATED, 31)
        return outer.compress(bomb_body("gzip")) + outer.flush()
    if name == "br":
        import brotli

        compressor = brotli.Compressor(quality=9)
        return _compress_zeros(compressor.process, compressor.finish)
    if name == "zstd":
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3).compressobj()
        return _compress_zeros(compressor.compress, compressor.flush)
    raise KeyError(name)


def bomb_body(name: str) -> bytes:
    """The compressed body of ``/bomb/<name>`` (built on first use, then cached)."""
    with _bombs_lock:
        body = _bombs.get(name)
        if body is None:
            body = _bombs[name] = _build_bomb(name)
        return body


def _huge_headers_response() -> bytes:
    lines = [b"HTTP/1.1 200 OK\r\n"]
    for i in range(HUGE_HEADER_COUNT):
        prefix = b"X-Filler-%04d: " % i
        lines.append(prefix + b"x" * (HUGE_HEADER_LINE - len(prefix) - 2) + b"\r\n")
    lines.append(
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(HUGE_HEADERS_BODY)
    )
    return b"".join(lines) + HUGE_HEADERS_BODY


def _response(status: str, body: bytes, content_type: bytes = b"text/html") -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode("ascii") + b"\r\n"
        b"Content-Type: " + content_type + b"; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    return head + body


class RawServer:
    """Malformed-HTTP server on 127.0.0.1 (port 0 by default), own thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        responses: Mapping[str, bytes] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._responses = dict(responses or {})
        self._startup_timeout = startup_timeout
        self._port: int | None = None
        self._lock = threading.Lock()
        self._paths: list[str] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- public API --------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("RawServer is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def paths(self) -> list[str]:
        """Request targets received so far (path and query), in order."""
        with self._lock:
            return list(self._paths)

    def clear(self) -> None:
        with self._lock:
            self._paths.clear()

    def start(self) -> RawServer:
        if self._thread is not None:
            raise RuntimeError("RawServer already started")
        self._thread = threading.Thread(
            target=self._run, name=f"RawServer-{id(self):x}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self._startup_timeout):
            self.stop()
            raise RuntimeError("RawServer did not start in time")
        if self._error is not None:
            self.stop()
            raise RuntimeError("RawServer failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection, stop the loop and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("RawServer thread did not stop")
        self._thread = None

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- event loop thread -------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported through start()
            self._error = exc
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(
            self._handle, self.host, self._requested_port, reuse_address=True
        )
        try:
            self._port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop_event.wait()
        finally:
            server.close()
            await self._close_connections()
            await server.wait_closed()

    async def _close_connections(self, timeout: float = 2.0) -> None:
        """Abort every connection and wait for the handlers; cancel the ones
        still busy after ``timeout``.

        Connections accepted just before the stop may not have a running
        handler yet: all the loop's tasks are waited for (a late handler sees
        the stop and aborts at once), and writers that appear meanwhile are
        aborted too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        current = asyncio.current_task()
        while True:
            # Aborting the transports ends pending reads (EOF).
            for writer in list(self._writers):
                writer.transport.abort()
            others = asyncio.all_tasks() - {current}
            if not others:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
                break
            await asyncio.wait(others, timeout=min(remaining, _POLL))
        # Let the transports' connection_lost callbacks (which close the
        # sockets) run before the loop stops.
        for _ in range(3):
            await asyncio.sleep(0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self._stop_event is not None and self._stop_event.is_set():
                writer.transport.abort()  # accepted while stopping
                return
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # client went away or sent an over-long line
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio would log a cancelled handler)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        if not request_line:
            return
        parts = request_line.decode("latin-1").split()
        method = parts[0].upper() if parts else ""
        target = parts[1] if len(parts) > 1 else ""
        for _ in range(_MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
        if "://" in target:  # absolute-form (proxy style) request target
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        with self._lock:
            self._paths.append(target)
        path = target.split("?", 1)[0]

        if path in self._responses:
            await self._send_and_close(writer, self._responses[path])
        elif path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif path == "/close":
            writer.close()
            await writer.wait_closed()
        elif path == "/truncated":
            head = (
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n" % TRUNCATED_DECLARED
            )
            await self._send_and_close(writer, head + TRUNCATED_BODY)
        elif path == "/malformed":
            await self._send_and_close(writer, MALFORMED)
        elif path == "/garbage":
            await self._send_and_close(writer, GARBAGE)
        elif path == "/hang":
            while await reader.read(65536):
                pass  # until the client closes (or stop() cancels us)
        elif path.startswith("/bomb/") and path[6:] in BOMB_ENCODINGS:
            name = path[6:]
            body = await asyncio.get_running_loop().run_in_executor(None, bomb_body, name)
            head = (
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: text/html\r\n"
                b"Content-Encoding: " + BOMB_ENCODINGS[name].encode("ascii") + b"\r\n"
                b"Content-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % len(body)
            )
            await self._send_and_close(writer, head if method == "HEAD" else head + body)
        elif path == "/huge-headers":
            await self._send_and_close(writer, _huge_headers_response())
        elif path == "/endless":
            await self._endless(reader, writer)
        elif path == "/slow-drip":
            await self._slow_drip(reader, writer)
        elif path == "/header-drip":
            await self._header_drip(reader, writer)
        elif path == "/ok":
            data = _response("200 OK", OK_BODY)
            if method == "HEAD":
                data = data[: len(data) - len(OK_BODY)]
            await self._send_and_close(writer, data)
        else:
            await self._send_and_close(writer, _response("404 Not Found", NOT_FOUND_BODY))

    # -- slow endpoints ------------------------------------------------------

    def _gone(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """The client closed (EOF or reset) or the server is stopping."""
        return (
            (self._stop_event is not None and self._stop_event.is_set())
            or reader.at_eof()
            or writer.transport.is_closing()
        )

    async def _pause(
        self, seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Wait ``seconds``; ``False`` (early) if the client or the server is gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._gone(reader, writer):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, _POLL))
        return False

    async def _trickle(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pieces: Callable[[int], bytes | None],
        interval: float,
        limit: float,
    ) -> None:
        """Send ``pieces(0)``, ``pieces(1)``... every ``interval`` seconds until
        it returns ``None``, the client or the server is gone, or ``limit``
        seconds have passed; then close the connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        n = 0
        while loop.time() < deadline:
            piece = pieces(n)
            if piece is None:
                break
            writer.write(piece)
            await writer.drain()
            n += 1
            if not await self._pause(interval, reader, writer):
                break
        writer.transport.close()

    async def _endless(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        start = b"<!DOCTYPE html>\n<html><head><title>Endless</title></head><body>\n"

        def chunk(n: int) -> bytes:
            data = start if n == 0 else b"<p>chunk %d</p>\n" % n
            return (head if n == 0 else b"") + b"%x\r\n%s\r\n" % (len(data), data)

        await self._trickle(reader, writer, chunk, ENDLESS_INTERVAL, ENDLESS_LIMIT)

    async def _slow_drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % DRIP_DECLARED
        )

        def byte(n: int) -> bytes | None:
            if n >= len(DRIP_BODY):
                return None
            return (head if n == 0 else b"") + DRIP_BODY[n : n + 1]

        await self._trickle(reader, writer, byte, 1.0, DRIP_LIMIT)

    async def _header_drip(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        def header(n: int) -> bytes:
            line = b"X-Drip-%d: %d\r\n" % (n, n)
            return (b"HTTP/1.1 200 OK\r\n" if n == 0 else b"") + line

        await self._trickle(reader, writer, header, 1.0, DRIP_LIMIT)

    @staticmethod
    async def _send_and_close(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
