"""Run a pytest-twisted test body as an asyncio task of the reactor's loop
(as downloads run in a crawl), so it can use asyncio primitives."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from scrapy.utils.defer import deferred_from_coro


def in_task(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Any]:
    """Decorator, under ``@pytest_twisted.ensureDeferred``."""

    @functools.wraps(test)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        await deferred_from_coro(test(*args, **kwargs))

    return wrapper
