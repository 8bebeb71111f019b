"""Serve an ASGI app with uvicorn on a socket we bind ourselves.

Binding first lets ``port=0`` pick a free port whose number we know before
uvicorn starts; the URL is announced only once uvicorn is accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from scraper_project.demo.site import ASGIApp

#: Seconds uvicorn waits for in-flight requests (e.g. ``/hang``) on shutdown.
GRACEFUL_SHUTDOWN_TIMEOUT = 2


class QuietServer(uvicorn.Server):
    """uvicorn server that does not re-raise SIGINT/SIGTERM after shutdown.

    Plain uvicorn re-raises the captured signal once it has shut down, which
    would kill the process by signal (or raise KeyboardInterrupt); here the
    caller simply gets control back and can exit with status 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound (not yet listening) TCP socket; ``port=0`` picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets
    # only when proto says TCP; without it keep-alive requests stall ~40 ms
    # (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` for a bound socket (wildcards shown as loopback)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def make_config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # record the real peer, never X-Forwarded-For
        server_header=False,
        ws="none",
        backlog=4096,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
    )


async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` until uvicorn is told to exit (SIGINT/SIGTERM).

    ``on_ready(url)`` is called once the server accepts connections;
    ``on_shutdown()`` as soon as it starts shutting down (e.g. the demo app's
    ``begin_shutdown`` so that ``/hang`` and friends do not delay the exit).
    """
    sock = bind_socket(host, port)
    url = socket_url(sock)
    server = QuietServer(make_config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("uvicorn stopped during startup")
            await asyncio.sleep(0.01)
        if on_ready is not None:
            on_ready(url)
        while not task.done():
            if server.should_exit and on_shutdown is not None:
                on_shutdown()
                on_shutdown = None
            await asyncio.wait({task}, timeout=0.05)
        await task
    finally:
        if not task.done():
            server.should_exit = True
            await task
        sock.close()
