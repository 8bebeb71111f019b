"""Retry delays: exponential backoff with full jitter, and ``Retry-After``.

Pure functions with the randomness and the clock passed in, so they are
unit-tested without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "parse_retry_after"]


def backoff_delay(retry: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Delay before retry number ``retry`` (1 for the first retry).

    Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a
    uniform draw in ``[0, min(cap, base * 2 ** (retry - 1))]``. Retries of many
    URLs failing at once spread out instead of coming back in waves.

    ``rand`` returns a float in ``[0, 1)`` (``random.random``).
    """
    if retry < 1:
        raise ValueError(f"retry must be >= 1, got {retry!r}")
    ceiling = min(cap, base * 2.0 ** min(retry - 1, 62))
    return ceiling * rand()


def parse_retry_after(value: bytes | str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None`` if absent
    or unparseable.

    Both forms of RFC 9110 section 10.2.3: delay-seconds (``120``) and an
    HTTP-date (``Wed, 21 Oct 2026 07:28:00 GMT``), the latter relative to
    ``now`` (seconds since the epoch). A date in the past means 0.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms: GMT by definition
        return None
    delay = when.timestamp() - now
    return max(0.0, delay) if math.isfinite(delay) else None
