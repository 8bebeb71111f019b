"""Fixtures for the rate-limit library tests: a fake clock and a coroutine runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from scraper_project.ratelimit.testing import FakeClock

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # pytest-twisted keeps the reactor's asyncio loop marked as running in the
    # main thread, so a fresh loop can only run in another thread. Nothing here
    # sleeps for real: the tests pass FakeClock.sleep or their own fake sleep.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=10)


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine to completion on a fresh event loop."""
    return _run


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 0.0."""
    return FakeClock()
