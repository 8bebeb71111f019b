"""What a server's rate-limit header fields say: a quota and a pause.

Read, most specific first:

* draft-ietf-httpapi-ratelimit-headers (-08 and later, structured fields,
  RFC 9651): ``RateLimit-Policy: "default";q=100;w=10`` (a quota of ``q``
  requests per ``w`` seconds) and ``RateLimit: "default";r=0;t=30`` (``r``
  left, more in ``t`` seconds).
* draft -07: ``RateLimit-Policy: 100;w=10`` and
  ``RateLimit: limit=100, remaining=0, reset=30``.
* drafts -00 to -06 and the common ``X-RateLimit-*``:
  ``RateLimit-Limit: 100, 100;w=10`` (or ``X-RateLimit-Limit``),
  ``...-Remaining: 0`` and ``...-Reset: 30`` (seconds, or, when larger than
  a year of seconds, a Unix time as GitHub sends).

What comes out: the quota as requests/second (the lowest ``q / w`` of the
policies counted in requests) and a pause (``t`` when nothing remains). A
limit without a window counts only on the first request of a window
(``remaining == limit - 1``), where ``reset`` is the window's length.
Malformed fields are ignored, as the draft says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import http_sf

__all__ = ["HINT_FIELDS", "Hints", "read_hints"]

#: Field names whose presence makes a response worth reading.
HINT_FIELDS = (
    "RateLimit-Policy",
    "RateLimit",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
)

#: A reset larger than this is a Unix time, not a number of seconds.
_EPOCH_THRESHOLD = 365 * 86400


@dataclass(frozen=True)
class Hints:
    """What the fields say; ``None``: nothing."""

    quota: float | None = None  # requests per second
    pause: float | None = None  # seconds with nothing left


def _parse(value: bytes | None, kind: str) -> Any:
    if value is None:
        return None
    try:
        return http_sf.parse(value, tltype=kind)
    except (ValueError, TypeError):  # StructuredFieldError is a ValueError
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _policies(value: bytes | None) -> float | None:
    """The lowest quota of a ``RateLimit-Policy`` list (current or -07)."""
    quota = None
    for item in _parse(value, "list") or ():
        if not isinstance(item, tuple) or len(item) != 2:
            continue
        bare, params = item
        if isinstance(bare, str):  # current draft: "name";q=..;w=..
            q = _int(params.get("q"))
            unit = params.get("qu", "requests")
        else:  # -07: 100;w=10
            q, unit = _int(bare), "requests"
        w = _int(params.get("w"))
        if q is not None and w and unit == "requests":
            quota = _min(quota, q / w)
    return quota


def _service_limits(value: bytes | None) -> float | None:
    """The pause a current-draft ``RateLimit`` list asks for (``r=0``)."""
    pause = None
    for item in _parse(value, "list") or ():
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            continue
        params = item[1]
        r, t = _int(params.get("r")), _int(params.get("t"))
        if r == 0 and t:
            pause = _max(pause, float(t))
    return pause


def _reset_seconds(value: int | None, now: float) -> float | None:
    if value is None:
        return None
    if value > _EPOCH_THRESHOLD:
        return max(0.0, value - now)
    return float(value)


def _legacy(
    limit_field: bytes | None, remaining: bytes | None, reset: bytes | None, now: float
) -> Hints:
    """``RateLimit-Limit`` / ``X-RateLimit-Limit`` and their companions."""
    items = _parse(limit_field, "list") or ()
    limit = None
    quota = None
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            continue
        n = _int(item[0])
        w = _int(item[1].get("w"))
        if n is None:
            continue
        if limit is None:
            limit = n
        if w:
            quota = _min(quota, n / w)
    left = _int(_first(_parse(remaining, "item")))
    seconds = _reset_seconds(_int(_first(_parse(reset, "item"))), now)
    if quota is None and limit and left == limit - 1 and seconds and seconds >= 1:
        quota = limit / seconds  # the first request of a window: reset = its length
    pause = seconds if left == 0 and seconds else None
    return Hints(quota, pause)


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, tuple) and len(item) == 2 else None


def read_hints(get: Callable[[str], bytes | None], now: float) -> Hints | None:
    """Read the rate-limit fields of a response; ``None`` if they say nothing
    (absent, malformed, or no quota in requests and something left).

    :param get: Returns a field's value (several lines joined by ``", "``), or
        ``None`` when absent.
    :param now: The current Unix time, for resets given as a Unix time.
    """
    policy = get("RateLimit-Policy")
    current = get("RateLimit")
    quota = _policies(policy)
    pause = None
    if current is not None:
        pause = _service_limits(current)
        draft7 = _parse(current, "dictionary")
        if pause is None and isinstance(draft7, dict) and "remaining" in draft7:
            remaining = _int(_first(draft7.get("remaining")))
            reset = _int(_first(draft7.get("reset")))
            if remaining == 0 and reset:
                pause = float(reset)
    for prefix in ("RateLimit-", "X-RateLimit-"):
        limit_field = get(prefix + "Limit")
        remaining_field = get(prefix + "Remaining")
        if limit_field is None and remaining_field is None:
            continue
        legacy = _legacy(limit_field, remaining_field, get(prefix + "Reset"), now)
        quota = _min(quota, legacy.quota)
        pause = _max(pause, legacy.pause)
    if quota is None and pause is None:
        return None
    return Hints(quota, pause)
