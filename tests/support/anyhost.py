"""An HTTP/1.1 server answering any Host, on several loopback addresses at once.

The name-resolution tests need one web server that host names of every kind
(IPv4 only, IPv6 only, both, a dead first address) lead to: it listens on
the same port of each address given (default ``127.0.0.1``, ``127.0.0.3``
and ``::1``; nothing listens on ``127.0.0.2``, whose port refuses). It runs
its own asyncio loop in a thread (as ``rawserver.RawServer``)::

    with AnyHostServer() as web:
        crawl([f"http://dual.test:{web.port}/"], ...)
        assert web.requests[0].local == "::1"

``/robots.txt`` is a 404; any other path a small HTML page whose title is
``<Host header> <target>``. Requests in absolute form (as sent to a proxy)
are answered the same way, so the server also serves as an HTTP proxy that
answers everything itself. Keep-alive; every request is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
import time
from dataclasses import dataclass

from tests.support.loopthread import LoopThreadServer

DEFAULT_ADDRESSES = ("127.0.0.1", "127.0.0.3", "::1")
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """One request: the address it arrived on, its Host header and target,
    when it arrived (``time.monotonic()``)."""

    local: str
    host: str
    target: str
    time: float = 0.0


class AnyHostServer(LoopThreadServer):
    """See the module docstring."""

    thread_name = "anyhost-server"

    def __init__(self, addresses: tuple[str, ...] = DEFAULT_ADDRESSES) -> None:
        super().__init__()
        self.addresses = addresses
        self.port = 0
        self._requests: list[Seen] = []
        self._lock = threading.Lock()
        self._servers: list[asyncio.Server] = []

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._requests)

    async def _unbind(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _bind(self) -> None:
        # The first address picks a free port; the others take the same one
        # (a few tries if it is taken on one of them).
        for _ in range(20):
            servers: list[asyncio.Server] = []
            try:
                for address in self.addresses:
                    server = await asyncio.start_server(
                        self._serve, address, self.port if servers else 0
                    )
                    if not servers:
                        self.port = server.sockets[0].getsockname()[1]
                    servers.append(server)
            except OSError:
                for server in servers:
                    server.close()
                self.port = 0
                continue
            self._servers = servers
            return
        raise OSError(f"no port free on all of {self.addresses}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = str(writer.get_extra_info("sockname")[0])
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                if len(head) > _MAX_HEAD:
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    return
                method, target = parts[0], parts[1]
                host = ""
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "host":
                        host = value.strip()
                with self._lock:
                    self._requests.append(Seen(local, host, target, time.monotonic()))
                if target.endswith("/robots.txt"):
                    status, body = b"404 Not Found", b"not found\n"
                else:
                    title = html.escape(f"{host} {target}")
                    status = b"200 OK"
                    body = f"<!DOCTYPE html><html><head><title>{title}</title></head></html>\n".encode()
                writer.write(
                    b"HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n%s"
                    % (status, len(body), b"" if method == "HEAD" else body)
                )
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
