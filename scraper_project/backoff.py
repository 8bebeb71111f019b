"""Retry delays: exponential backoff with full jitter, and ``Retry-After``.

Pure functions with the randomness and the clock passed in, so they are
unit-tested without sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

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

    Both forms of RFC 9110 section 10.2.3: delay-seconds (``120``, ASCII
    digits only) and an HTTP-date in any of its three formats (section 5.6.7:
    ``Wed, 21 Oct 2026 07:28:00 GMT``, the obsolete RFC 850
    ``Wednesday, 21-Oct-26 07:28:00 GMT`` and asctime
    ``Wed Oct 21 07:28:00 2026``, all GMT), relative to ``now`` (seconds
    since the epoch). A date in the past means 0. Never raises.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if _DELAY.fullmatch(text):  # not str.isdigit(): it accepts "²", int() does not
        return float(int(text))
    try:
        when = _http_date(text, now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    delay = when - now
    return max(0.0, delay) if math.isfinite(delay) else None


_DELAY: Final = re.compile(r"[0-9]+")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_MONTH: Final = "(" + "|".join(_MONTHS) + ")"
_TIME: Final = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
_ASCTIME: Final = re.compile(
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} ([ 0-9][0-9]) {_TIME} ([0-9]{{4}})"
)
_RFC850: Final = re.compile(rf"[A-Za-z]+, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT")


def _http_date(text: str, now: float) -> float | None:
    """An HTTP-date as seconds since the epoch (``None``: not one)."""
    if match := _ASCTIME.fullmatch(text):
        month, day, *clock, year = match.groups()
        return _utc(int(year), month, int(day), clock)
    if match := _RFC850.fullmatch(text):
        day, month, yy, *clock = match.groups()
        # RFC 9110 5.6.7: a two-digit year more than 50 years in the future
        # is the most recent past year with the same last two digits.
        this_year = datetime.fromtimestamp(now, UTC).year
        year = this_year - this_year % 100 + int(yy)
        if year > this_year + 50:
            year -= 100
        elif year < this_year - 50:
            year += 100
        return _utc(year, month, int(day), clock)
    when = parsedate_to_datetime(text)  # IMF-fixdate, and lenient variants
    if when.tzinfo is None:  # "-0000" or no zone: not an HTTP-date
        return None
    return when.timestamp()


def _utc(year: int, month: str, day: int, clock: list[str]) -> float:
    hour, minute, second = map(int, clock)
    stamp = datetime(year, _MONTHS.index(month) + 1, day, hour, minute, second, tzinfo=UTC)
    return stamp.timestamp()
