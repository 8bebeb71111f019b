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
from collections.abc import Mapping
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
            # Aborting the transports ends pending reads (EOF); cancel the
            # handlers only if some are still busy after that.
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = list(self._tasks)
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=2.0)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
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
        elif path == "/ok":
            data = _response("200 OK", OK_BODY)
            if method == "HEAD":
                data = data[: len(data) - len(OK_BODY)]
            await self._send_and_close(writer, data)
        else:
            await self._send_and_close(writer, _response("404 Not Found", NOT_FOUND_BODY))

    @staticmethod
    async def _send_and_close(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
