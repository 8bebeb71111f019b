"""A test server whose asyncio loop runs in a thread of its own.

It works from synchronous tests, next to the crawler's reactor (whose loop
it never touches) and in a benchmark's process. A subclass binds its
sockets in :meth:`LoopThreadServer._bind` and closes them in
:meth:`LoopThreadServer._unbind`, both on the server's loop::

    with MyServer() as server:   # start(): bound when it returns
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Self

START_TIMEOUT = 10.0


class LoopThreadServer:
    """Start, stop and the thread; see the module docstring."""

    thread_name = "test-server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    async def _bind(self) -> None:
        raise NotImplementedError

    async def _unbind(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"{self.thread_name} did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            raise RuntimeError(f"{self.thread_name} failed to start: {self._error}")
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self._bind()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self._unbind()
