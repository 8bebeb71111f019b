"""Map download failures to the report's stable error classes.

The ``error`` column is ``<class>: <detail>``. The class is one of
:data:`ERROR_CLASSES` and never changes for a given kind of failure, so users
can filter on it; the detail is the human message, on one line, bounded.
"""

from __future__ import annotations

import ssl
from typing import Final

from OpenSSL import SSL
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from twisted.internet import defer
from twisted.internet import error as txerror
from twisted.python.failure import Failure
from twisted.web import _newclient

from scraper_project.dns import NameResolutionError
from scraper_project.resolver import BlockedAddressError
from scraper_project.title import clean_text
from scraper_project.urls import InvalidURL

# Twisted's private marker for a body cut short.
_DataLoss: type[Exception] = getattr(_newclient, "_DataLoss", ResponseDataLossError)

__all__ = ["ERROR_CLASSES", "MAX_ERROR_LENGTH", "classify", "format_error"]

MAX_ERROR_LENGTH: Final = 300

ERROR_CLASSES: Final = (
    "invalid_url",
    "dns_error",
    "connection_refused",
    "connection_lost",
    "connection_error",
    "timeout",
    "tls_error",
    "too_large",
    "truncated",
    "malformed_response",
    "redirect_loop",
    "too_many_redirects",
    "robots_forbidden",
    "blocked_address",
    "cancelled",
    "not_attempted",
    "skipped",
    "error",
)

_Table = tuple[tuple[tuple[type[BaseException], ...], str], ...]

# Order matters: the first matching type wins. The builtin OSErrors and ssl's
# errors are the causes the asyncio download handler (fasthttp) attaches.
_BY_TYPE: Final[_Table] = (
    ((BlockedAddressError,), "blocked_address"),
    ((CannotResolveHostError, txerror.DNSLookupError), "dns_error"),
    (
        (DownloadConnectionRefusedError, txerror.ConnectionRefusedError, ConnectionRefusedError),
        "connection_refused",
    ),
    (
        (
            DownloadTimeoutError,
            txerror.TimeoutError,
            txerror.TCPTimedOutError,
            TimeoutError,
        ),
        "timeout",
    ),
    ((ResponseDataLossError, _DataLoss), "truncated"),
    (
        (SSL.Error, txerror.SSLError, txerror.VerifyError, txerror.CertificateError, ssl.SSLError),
        "tls_error",
    ),
    ((_newclient.ParseError, _newclient.BadHeaders), "malformed_response"),
    (
        (
            txerror.ConnectionLost,
            txerror.ConnectionDone,
            _newclient.ConnectionAborted,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
        ),
        "connection_lost",
    ),
    ((txerror.ConnectError, ConnectionError), "connection_error"),
    ((UnsupportedURLSchemeError, InvalidURL), "invalid_url"),
)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: ``__cause__`` chains and Twisted's reasons."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 16:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        reasons = getattr(current, "reasons", None)
        if isinstance(current, _newclient._WrapperException) and reasons:
            stack.extend(r.value for r in reversed(reasons) if isinstance(r, Failure) and r.value)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
    return seen


def _detail(exc: BaseException) -> str:
    message = str(exc).strip()
    if isinstance(exc, _newclient._WrapperException) and getattr(exc, "reasons", None):
        return "; ".join(
            _detail(r.value) for r in exc.reasons if isinstance(r, Failure) and r.value
        )
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def classify(exc: BaseException, *, maxsize: int = 0, cancelled: bool = False) -> tuple[str, str]:
    """Return ``(error_class, detail)`` for a failed download.

    ``cancelled`` says whether this project cancelled the download (deadline,
    shutdown). Scrapy cancels a download whose streamed body passes
    ``DOWNLOAD_MAXSIZE`` without saying why, so any other cancellation is
    reported as ``too_large`` (``maxsize`` is quoted in the detail).
    """
    if isinstance(exc, IgnoreRequest):
        message = str(exc)
        lowered = message.lower()
        if "robots.txt" in lowered:
            return "robots_forbidden", message
        if "redirect loop" in lowered:
            return "redirect_loop", message
        if "max redirections" in lowered:
            return "too_many_redirects", message
        if "download_maxsize" in lowered:  # HttpCompressionMiddleware: a bomb
            return "too_large", message
        return "error", message or "request ignored"
    causes = _causes(exc)
    innermost = causes[-1]
    if isinstance(exc, ResponseDataLossError):
        # Whatever cut the body short (a bad chunk is also a parse error).
        return "truncated", _detail(innermost)
    for cause in causes:
        if isinstance(cause, (DownloadCancelledError, defer.CancelledError)) and "max size" in str(
            cause
        ):
            return "too_large", str(cause)
    for candidate in reversed(causes):
        for types, name in _BY_TYPE:
            if isinstance(candidate, types):
                if isinstance(candidate, (BlockedAddressError, InvalidURL)) and candidate.args:
                    # The reason alone, as for the list's own invalid_url rows.
                    return name, str(candidate.args[0])
                if isinstance(candidate, NameResolutionError):
                    # "nxdomain: ...", "servfail: ...", "timeout: ...",
                    # "no_address: ...": filterable after the class.
                    return name, str(candidate)
                return name, _detail(candidate)
    for cause in causes:
        if isinstance(cause, (DownloadCancelledError, defer.CancelledError)):
            if cancelled:
                return "cancelled", _detail(cause)
            return "too_large", f"body larger than DOWNLOAD_MAXSIZE ({maxsize} bytes)"
    if isinstance(exc, DownloadFailedError):
        return "connection_error", _detail(innermost)
    return "error", _detail(innermost)


def format_error(error_class: str, detail: str, max_length: int = MAX_ERROR_LENGTH) -> str:
    """The report's ``error`` cell: ``class: detail`` on one bounded line."""
    detail = clean_text(detail, 0)
    text = f"{error_class}: {detail}" if detail else error_class
    return clean_text(text, max_length)
