"""A small static HTTP/1.1 keep-alive server for the speed benchmarks.

    python bench/speed/server.py --root DIR [--port 0] [--delay 0.2]

Serves the files under ``--root`` from memory (read once at start-up) with
``Content-Length`` and ``Content-Type: text/html; charset=utf-8``; unknown
paths (``/robots.txt`` included, unless the file exists) get a 404. With
``--delay S`` every response, 404s included, is sent S seconds after its
request arrived (non-blocking: many connections wait at once). GET and HEAD
only; requests with a body are read and answered 405.

It prints ``PORT <n>`` on stdout once listening. Control endpoints (not
counted, never delayed):

- ``GET /__bench__/stats``: JSON ``{"requests": [[arrival, sent, path, status], ...]}``
  (``time.monotonic()`` seconds of this process) for every request since
  start or the last reset;
- ``GET /__bench__/reset``: clears that record.

Used as the fallback of the throughput scenario when nginx is missing, and
for the latency and rate scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import deque
from pathlib import Path
from time import monotonic

CONTROL = b"/__bench__/"
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}
MAX_HEAD = 64 * 1024


class Site:
    def __init__(self, root: Path | None, delay: float) -> None:
        self.files: dict[bytes, bytes] = {}
        if root is not None:
            for path in root.rglob("*"):
                if path.is_file():
                    rel = path.relative_to(root).as_posix()
                    self.files[b"/" + rel.encode()] = path.read_bytes()
        self.delay = delay
        # [arrival, sent, path, status] per request; sent is filled in later.
        self.log: list[list[object]] = []


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.loop = asyncio.get_running_loop()
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        # (ready_at, payload, close, log_entry) in arrival order.
        self.queue: deque[tuple[float, bytes, bool, list[object] | None]] = deque()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        while not self.closing:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._respond(monotonic(), 400, b"", b"", close=True, head=False)
                return
            head = self.buffer[:end]
            rest = self.buffer[end + 4 :]
            length = 0
            lines = head.split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ")
            except ValueError:
                self._respond(monotonic(), 400, b"", b"", close=True, head=False)
                return
            keep_alive = version == b"HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"connection":
                    token = value.strip().lower()
                    if token == b"close":
                        keep_alive = False
                    elif token == b"keep-alive":
                        keep_alive = True
                elif name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        self._respond(monotonic(), 400, b"", b"", close=True, head=False)
                        return
            if len(rest) < length:
                return  # wait for the whole body
            self.buffer = rest[length:]
            self._handle(method, target, keep_alive, has_body=length > 0)

    def _handle(self, method: bytes, target: bytes, keep_alive: bool, has_body: bool) -> None:
        arrival = monotonic()
        path = target.split(b"?", 1)[0]
        if path.startswith(CONTROL):
            self._control(path[len(CONTROL) :], keep_alive)
            return
        if method not in (b"GET", b"HEAD") or has_body:
            self._respond(arrival, 405, path, b"", close=not keep_alive, head=False)
            return
        body = self.site.files.get(path)
        status = 200 if body is not None else 404
        self._respond(
            arrival, status, path, body or b"", close=not keep_alive, head=method == b"HEAD"
        )

    def _control(self, command: bytes, keep_alive: bool) -> None:
        if command == b"stats":
            body = json.dumps({"requests": self.site.log}).encode()
        elif command == b"reset":
            self.site.log = []
            body = b"{}"
        else:
            body = b""
        status = 200 if body else 404
        self._queue(0.0, self._payload(status, body, not keep_alive, False), not keep_alive, None)

    def _payload(self, status: int, body: bytes, close: bool, head: bool) -> bytes:
        headers = (
            b"HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: %s\r\n\r\n"
            % (status, REASONS[status], len(body), b"close" if close else b"keep-alive")
        )
        return headers if head else headers + body

    def _respond(
        self, arrival: float, status: int, path: bytes, body: bytes, *, close: bool, head: bool
    ) -> None:
        entry: list[object] = [arrival, None, path.decode("latin-1"), status]
        self.site.log.append(entry)
        payload = self._payload(status, body, close, head)
        self._queue(arrival + self.site.delay if self.site.delay else 0.0, payload, close, entry)

    def _queue(self, ready: float, payload: bytes, close: bool, entry: list[object] | None) -> None:
        if close:
            self.closing = True
        self.queue.append((ready, payload, close, entry))
        if ready:
            self.loop.call_at(self.loop.time() + max(0.0, ready - monotonic()), self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        # Responses go out in request order; each one no earlier than its ready time.
        now = monotonic()
        while self.queue and self.queue[0][0] <= now and self.transport is not None:
            _, payload, close, entry = self.queue.popleft()
            self.transport.write(payload)
            if entry is not None:
                entry[1] = monotonic()
            if close:
                self.transport.close()
                self.queue.clear()
                return
        if self.queue and self.transport is not None:
            # A timer may fire a hair early: look again at the head's ready time.
            self.loop.call_at(self.loop.time() + max(0.0, self.queue[0][0] - now), self._flush)


async def serve(root: Path | None, port: int, delay: float) -> None:
    site = Site(root, delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPProtocol(site), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="directory to serve")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each response")
    args = parser.parse_args()
    asyncio.run(serve(args.root, args.port, args.delay))
    sys.exit(0)


if __name__ == "__main__":
    main()
