"""Validation and normalisation of input URLs.

``normalize_url`` turns one line of a URL list into the canonical form used
both as the report's ``url`` column and as the deduplication key, or raises
:class:`InvalidURL` with a short human reason.

Normalisation follows RFC 3986 section 6.2.2 (syntax-based) plus the
scheme-based step of 6.2.3, and nothing that could change what a server
returns:

- scheme and host are lower-cased; internationalised host names become IDNA;
- the default port (80 for http, 443 for https) is dropped;
- the fragment is dropped (it is never sent to the server);
- percent-encodings of unreserved characters are decoded (``%7E`` -> ``~``)
  and the remaining escapes get upper-case hex digits;
- credentials (``user:password@``) are replaced by ``***@``: never echoed;
- characters that may not appear raw in a URL (spaces, non-ASCII) are
  percent-encoded as UTF-8, the way browsers send them;
- dot segments are removed and an empty path becomes ``/``.

The query string keeps its order: ``?b=1&a=2`` and ``?a=2&b=1`` are different
URLs to many servers.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from w3lib.url import safe_url_string

__all__ = [
    "DEFAULT_PORTS",
    "MAX_URL_LENGTH",
    "REDACTED_USERINFO",
    "InvalidURL",
    "escape_surrogates",
    "normalize_url",
    "request_url",
    "url_host",
]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_URL_LENGTH: Final = 2083  # the de-facto limit of browsers and Scrapy

_SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_PCT_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PCT_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A host name after IDNA encoding: letters, digits, hyphens, underscores
# (seen in the wild), dots.
_HOSTNAME_RE: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,62})(?:\.[a-z0-9_\-]{1,63})*\.?$")
_SURROGATE_RE: Final = re.compile("[\udc80-\udcff]")
_CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f]")


# Already-canonical ASCII URLs (the vast majority of real lists): lower-case
# scheme and host, no escapes, no fragment, no dot segments, no userinfo.
_FAST_RE: Final = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.\-]{0,251}[a-z0-9])?)(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9\-_~!$&()*+,;=:@/.]*)?(\?[A-Za-z0-9\-._~!$&()*+,;=:@/?]*)?"
)
_DOT_SEGMENT_RE: Final = re.compile(r"/\.\.?(?:/|$)")
# Origins (scheme, host, port) already checked by the fast path: lists repeat
# hosts, so most lines skip the host checks.
_FAST_ORIGINS: dict[tuple[str, str, str | None], str] = {}
_FAST_ORIGINS_MAX = 4096


REDACTED_USERINFO: Final = "***@"


def request_url(url: str) -> str:
    """The URL to fetch for a normalised ``url``: without its (redacted)
    userinfo."""
    if REDACTED_USERINFO not in url:
        return url
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}://{netloc.removeprefix(REDACTED_USERINFO)}{slash}{tail}"


class InvalidURL(ValueError):
    """A line that is not a fetchable http(s) URL; ``str(exc)`` is the reason."""


def _fix_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    if char in _UNRESERVED:
        return char
    return "%" + match.group(1).upper()


def _escape_surrogate(match: re.Match[str]) -> str:
    # Bytes that were not UTF-8 (decoded with surrogateescape) keep their
    # exact value as a percent-escape.
    return f"%{ord(match.group(0)) - 0xDC00:02X}"


def escape_surrogates(text: str) -> str:
    """Replace bytes that were not UTF-8 (lone surrogates from a
    ``surrogateescape`` decode) by ``%XX`` escapes, so the text can be encoded."""
    return _SURROGATE_RE.sub(_escape_surrogate, text) if _SURROGATE_RE.search(text) else text


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment == ".":
            if i == len(segments) - 1:
                output.append("")
            continue
        if segment == "..":
            if len(output) > 1:
                output.pop()
            if i == len(segments) - 1:
                output.append("")
            continue
        output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def _check_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidURL("invalid IPv6 address")
        try:
            ip = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidURL(f"invalid IPv6 address {host!r}") from None
        return f"[{ip.compressed}]"
    if not _HOSTNAME_RE.match(host):
        raise InvalidURL(f"invalid host {host!r}")
    if host.replace(".", "").isdigit():
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InvalidURL(f"invalid IPv4 address {host!r}") from None
    return host


def url_host(url: str) -> str:
    """The host of a URL :func:`normalize_url` returned (IDNA-encoded, lower
    case; an IPv6 literal keeps its brackets). A few string operations."""
    authority = url.partition("://")[2].partition("/")[0].partition("?")[0].rpartition("@")[2]
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.partition(":")[0]


def normalize_url(raw: str, max_length: int = MAX_URL_LENGTH) -> str:
    """Return the canonical form of ``raw`` or raise :class:`InvalidURL`.

    ``raw`` is one stripped input line. Lone surrogates from a
    ``surrogateescape`` decode (bytes that were not UTF-8) are kept as
    percent-escapes of the original bytes.

    ``max_length`` bounds the normalised URL (0 disables the check); longer
    URLs are rejected with a reason rather than dropped silently.
    """
    fast = _FAST_RE.fullmatch(raw)
    if fast is not None:
        result = _fast_path(raw, fast, max_length)
        if result is not None:
            return result
    if not raw:
        raise InvalidURL("empty")
    if _CONTROL_RE.search(raw):
        raise InvalidURL("contains control characters")
    match = _SCHEME_RE.match(raw)
    if match is None:
        if raw.startswith("//"):
            raise InvalidURL("missing scheme (scheme-relative URL)")
        if raw.startswith(("/", ".")):
            raise InvalidURL("relative URL")
        if " " in raw or "." not in raw.split("/", 1)[0]:
            raise InvalidURL("not a URL")
        raise InvalidURL(f"missing scheme (did you mean http://{raw.split('/', 1)[0]}/?)")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported scheme {scheme!r}")
    rest = raw[match.end() :]
    if not rest.startswith("//"):
        raise InvalidURL("missing host")
    if "\\" in rest.split("?", 1)[0].split("#", 1)[0]:
        # Browsers treat backslashes as slashes; servers do not. Refuse to guess.
        raise InvalidURL("backslash in URL")
    hostport = re.split("[/?#]", rest[2:], maxsplit=1)[0].rpartition("@")[2]
    if hostport.startswith("[") and ":" not in hostport.partition("]")[0]:
        raise InvalidURL("invalid IPv6 address")  # [v1.x] (IPvFuture) or garbage
    if _SURROGATE_RE.search(raw):
        raw = _SURROGATE_RE.sub(_escape_surrogate, raw)
    raw = _BAD_PCT_RE.sub("%25", raw)
    try:
        # Percent-encodes what must be, and IDNA-encodes the host.
        safe = safe_url_string(raw, encoding="utf-8")
        parts = urlsplit(safe)
        port = parts.port
    except ValueError as exc:
        reason = str(exc)
        if "port" in reason.lower():
            raise InvalidURL(f"invalid port {_port_text(rest)!r}") from None
        if "IPv" in reason:
            raise InvalidURL("invalid IPv6 address") from None
        raise InvalidURL(reason or "unparseable URL") from None
    except UnicodeError:
        raise InvalidURL("invalid international host name") from None
    return _rebuild(parts, scheme, port, max_length)


def _fast_path(raw: str, match: re.Match[str], max_length: int) -> str | None:
    """``raw`` normalised, for a URL that needs at most a slash or a default
    port removed; ``None`` sends it down the general path."""
    scheme, host, port, path, query = match.groups()
    origin_key = (scheme, host, port)
    origin = _FAST_ORIGINS.get(origin_key)
    if origin is None:
        origin = _fast_origin(scheme, host, port)
        if origin is None:
            return None
        if len(_FAST_ORIGINS) >= _FAST_ORIGINS_MAX:
            _FAST_ORIGINS.clear()
        _FAST_ORIGINS[origin_key] = origin
    if path and _DOT_SEGMENT_RE.search(path):
        return None
    url = f"{origin}{path or '/'}{query or ''}"
    if query == "?":
        url = url[:-1]
    if max_length and len(url) > max_length:
        return None
    return url


def _fast_origin(scheme: str, host: str, port: str | None) -> str | None:
    """``scheme://host[:port]`` normalised, or ``None`` for the general path."""
    if ".." in host or host.startswith("xn--"):
        return None
    if len(host) > 63 and any(len(label) > 63 for label in host.split(".")):
        return None  # the general path rejects it
    if host[-1].isdigit():  # IPv4, or not a host name
        parts = host.split(".")
        if len(parts) != 4 or not all(
            p.isdigit() and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts
        ):
            return None
    if port is None:
        return f"{scheme}://{host}"
    number = int(port)
    if number == 0 or number > 65535 or port[0] == "0":
        return None
    return (
        f"{scheme}://{host}" if number == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{number}"
    )


def _port_text(rest: str) -> str:
    hostport = re.split("[/?#]", rest[2:], maxsplit=1)[0].rpartition("@")[2]
    return hostport.rpartition("]")[2].partition(":")[2]


def _rebuild(parts: SplitResult, scheme: str, port: int | None, max_length: int) -> str:
    netloc = parts.netloc
    if "@" in netloc:
        # Credentials are never echoed (reports, logs); nor are they sent:
        # the crawler does no HTTP auth from URLs.
        userinfo, _, hostport = netloc.rpartition("@")
        userinfo = REDACTED_USERINFO
    else:
        userinfo, hostport = "", netloc
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidURL("missing host")
    if hostport.startswith("["):  # urlsplit strips the brackets of IP literals
        if ":" not in host:  # [v1.x] (IPvFuture) or garbage: not fetchable
            raise InvalidURL("invalid IPv6 address")
        host = f"[{host}]"
    elif ":" in host:
        raise InvalidURL(f"invalid host {host!r}")
    if hostport.endswith(":"):  # "http://host:/" is the default port
        port = None
    if port == 0:
        raise InvalidURL("invalid port 0")
    host = _check_host(host)
    if port is None or port == DEFAULT_PORTS[scheme]:
        netloc = userinfo + host
    else:
        netloc = f"{userinfo}{host}:{port}"
    path = _remove_dot_segments(_PCT_RE.sub(_fix_escape, parts.path)) or "/"
    query = _PCT_RE.sub(_fix_escape, parts.query)
    url = urlunsplit((scheme, netloc, path, query, ""))
    if max_length and len(url) > max_length:
        raise InvalidURL(f"URL longer than {max_length} characters ({len(url)})")
    return url
