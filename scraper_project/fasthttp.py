"""A lean asyncio HTTP/1.1 download handler (issue #9, speed).

Scrapy's Twisted HTTP/1.1 client and its aiohttp handler cost 0.3-0.4 ms of
CPU per page in the download path alone. This handler speaks HTTP/1.1 itself:
an :class:`asyncio.Protocol` per connection, the response parsed by
``httptools`` (llhttp, in C), keep-alive connections reused. It keeps the
contract of :class:`scraper_project.handlers.CancellableHTTP11DownloadHandler`,
so either can be the ``DOWNLOAD_HANDLERS`` for http and https:

- :meth:`FastHTTPDownloadHandler.cancel_all` cancels the downloads in
  progress (``meta[CANCELLED_KEY]``, :class:`DownloadCancelledError`), and
  once stopping new downloads fail at once (``meta[NOT_ATTEMPTED_KEY]``);
- names are resolved by the crawl's :class:`~scraper_project.resolver.AsyncResolver`
  (on the asyncio loop, cached: a known name costs a dict lookup), so
  ``RESOLVE_HOSTS``, ``RESOLVE_HOSTS_ONLY``, ``DNS_*``, ``DNSCACHE_*`` and the
  SSRF guard (IP literals included when it is on) apply to every new
  connection, on every redirect hop; IP literals are not resolved otherwise.
  The lookup is not part of ``DOWNLOAD_TIMEOUT`` (it has ``DNS_TIMEOUT``):
  the download timer starts once the addresses are known. A name with
  several addresses is connected with Happy Eyeballs (RFC 8305,
  ``aiohappyeyeballs``): IPv6 and IPv4 interleaved, the next address tried
  ``HAPPY_EYEBALLS_DELAY`` after the previous one unless that one failed
  sooner, so one dead address never fails the request;
- failures are the Scrapy exceptions the Twisted client raises (so that
  ``RETRY_EXCEPTIONS`` retries the same ones), with the cause attached, which
  :func:`scraper_project.errors.classify` understands: a response that cannot
  be parsed (or whose headers pass the limits below) is a
  :class:`DownloadFailedError` caused by a :class:`MalformedResponseError`
  (``malformed_response``);
- ``DOWNLOAD_MAXSIZE``, ``DOWNLOAD_WARNSIZE``, ``DOWNLOAD_FAIL_ON_DATALOSS``
  (and their meta keys), ``DOWNLOAD_TIMEOUT`` (connection and whole response),
  ``DOWNLOAD_BIND_ADDRESS``, the TLS settings (``_make_ssl_context``, as the
  aiohttp handler: certificates are not verified unless
  ``DOWNLOAD_VERIFY_CERTIFICATES``; a bad ``DOWNLOAD_TLS_MIN_VERSION``,
  ``DOWNLOAD_TLS_MAX_VERSION`` or ``DOWNLOADER_CLIENT_TLS_CIPHERS`` is a
  :class:`TLSSettingsError` when the handler is built) and the
  ``headers_received`` / ``bytes_received`` signals (sent only when something
  listens) work as with Scrapy's handlers;
- the pool keeps at most ``CONCURRENT_REQUESTS_PER_DOMAIN`` idle connections
  per (scheme, host, port), as Twisted's pool does, and at most
  ``CONCURRENT_REQUESTS`` in all (the one idle the longest is closed to make
  room); a connection is dropped after any error,
  ``Connection: close``, HTTP/1.0 without keep-alive, a HEAD request, a
  response not read to its end or one whose framing is doubtful (both
  ``Content-Length`` and ``Transfer-Encoding``, or ``Transfer-Encoding`` in
  HTTP/1.0: RFC 9112 section 6.3); a request that fails on a reused connection
  before any byte of its response is sent again once on a new connection
  (idempotent methods only, as Twisted's pool does);
- a body is framed as RFC 9112 section 6.3 says: ``Transfer-Encoding`` whose
  last coding is ``chunked`` is chunked (it wins over ``Content-Length``);
  any other ``Transfer-Encoding`` is read until the connection closes;
- bodies are not decompressed (``HttpCompressionMiddleware`` does it, within
  ``DOWNLOAD_MAXSIZE``).

Not supported: proxies (requests with ``meta["proxy"]`` go to
:class:`~scraper_project.handlers.CancellableHTTP11DownloadHandler`, created
on first use), per-request ``meta["bindaddress"]`` (an error is logged, once
per handler, as Scrapy's handlers without it do; ``DOWNLOAD_BIND_ADDRESS``
applies), ``DOWNLOADER_CLIENTCONTEXTFACTORY`` (a Twisted object: a warning
says it is ignored except for proxied requests), HTTP/2. Response headers are
limited to :data:`MAX_HEADERS` lines and :data:`MAX_HEADER_BYTES` bytes (the
Twisted client has no such limit). Header lines without a colon are a parse
error (the Twisted client skips them). tests/test_framing.py compares the
framing with h11's and lists the deliberate differences.

Like ``handlers.py``, it relies on private parts of Scrapy 2.19
(``_base_http``, ``_download_handlers``, ``Response._headers``), which is why
the project pins Scrapy below 2.20.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Final, cast

import httptools
from aiohappyeyeballs import start_connection
from pydispatch import dispatcher  # type: ignore[import-untyped]
from scrapy import signals
from scrapy.core.downloader.handlers._base_http import BaseHttpDownloadHandler
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    StopDownload,
    UnsupportedURLSchemeError,
    UsageError,
)
from scrapy.http import Headers, HtmlResponse
from scrapy.responsetypes import responsetypes
from scrapy.settings import BaseSettings
from scrapy.utils._download_handlers import (
    check_stop_download,
    get_dataloss_msg,
    get_maxsize_msg,
    get_warnsize_msg,
    make_response,
    normalize_bind_address,
)
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.ssl import _log_sslobj_debug_info, _make_ssl_context
from twisted.internet.error import ConnectionDone
from twisted.web._newclient import ParseError

from scraper_project.cancel import CANCELLED_KEY, NOT_ATTEMPTED_KEY
from scraper_project.resolver import AsyncResolver
from scraper_project.urls import InvalidURL

if TYPE_CHECKING:
    from aiohappyeyeballs import AddrInfoType
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scraper_project.handlers import CancellableHTTP11DownloadHandler

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "FastHTTPDownloadHandler",
    "MalformedResponseError",
    "TLSSettingsError",
]

logger = logging.getLogger(__name__)

# Browsers accept big header blocks (Chrome: 256 KiB); real pages with
# hundreds of Set-Cookie or security headers exist. Beyond this, a response
# is malformed_response (hostile input, tests/test_hostile.py).
MAX_HEADERS: Final = 1000  # header lines of a response (interim 1xx ones included)
MAX_HEADER_BYTES: Final = 256 * 1024  # status line and header lines

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_IDEMPOTENT: Final = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
_BODY_EXPECTED: Final = frozenset(("POST", "PUT", "PATCH"))
# Request headers the handler writes itself (Scrapy's handlers never send
# Proxy-Authorization to the origin).
_SKIPPED: Final = frozenset((b"Content-Length", b"Transfer-Encoding", b"Proxy-Authorization"))
_PROTOCOLS: Final = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_NETLOC_CACHE_MAX: Final = 10_000
_ANY_ID: Final = id(dispatcher.Any)


class MalformedResponseError(ParseError):
    """The response is not HTTP/1.x, or not one this handler accepts (headers
    past the limits). A Twisted ``ParseError``: ``malformed_response``."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        super().__init__(reason, data)  # type: ignore[no-untyped-call]

    def __str__(self) -> str:
        return str(self.args[0])


class TLSSettingsError(UsageError, ValueError):
    """A TLS setting the handler cannot use, raised when it is built. A
    ``UsageError`` (the command line's one-line error, exit code 2) and the
    ``ValueError`` Scrapy's own handlers raise."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_help=False)


_TLS_VERSIONS: Final = "TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3"


def _tls_context(settings: BaseSettings) -> ssl.SSLContext:
    """The handler's TLS context, as Scrapy's ``_make_ssl_context`` makes
    it, minus the default CA certificates (``DOWNLOAD_VERIFY_CERTIFICATES``:
    loaded on the first https request, they cost ~25 ms). Raise
    :class:`TLSSettingsError` naming the setting that is wrong."""
    names = (
        "DOWNLOAD_TLS_MIN_VERSION",
        "DOWNLOAD_TLS_MAX_VERSION",
        "DOWNLOADER_CLIENT_TLS_CIPHERS",
    )
    values = {name: settings.get(name) for name in names}
    try:
        context = _make_ssl_context(BaseSettings({**values, "DOWNLOAD_VERIFY_CERTIFICATES": False}))
    except ValueError as exc:  # Scrapy's "Unknown DOWNLOAD_TLS_MIN_VERSION value: x"
        raise TLSSettingsError(f"{exc} (expected {_TLS_VERSIONS})") from None
    except ssl.SSLError as exc:  # only set_ciphers() raises it
        ciphers = values["DOWNLOADER_CLIENT_TLS_CIPHERS"]
        reason = str(exc.args[-1] if exc.args else exc).rstrip(".")
        raise TLSSettingsError(
            f"Invalid DOWNLOADER_CLIENT_TLS_CIPHERS value: {ciphers} ({reason}; "
            "expected an OpenSSL cipher list such as ECDHE+AESGCM)"
        ) from None
    except Exception as exc:
        shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
        raise TLSSettingsError(f"Invalid TLS settings ({shown}): {exc}") from None
    low, high = values["DOWNLOAD_TLS_MIN_VERSION"], values["DOWNLOAD_TLS_MAX_VERSION"]
    if low is not None and high is not None and context.minimum_version > context.maximum_version:
        raise TLSSettingsError(
            f"DOWNLOAD_TLS_MIN_VERSION ({low}) is above DOWNLOAD_TLS_MAX_VERSION ({high}): "
            "no TLS version is left"
        )
    return context


class _Abort(Exception):
    """Raised from a parser callback to stop parsing (the state says why)."""


class _NeedAddresses(Exception):
    """A new connection is needed and its name is not resolved (nor cached):
    the handler looks it up outside the download timer, then goes on.
    ``retried``: the request was already sent on a kept-alive connection that
    turned out closed (the new connection is its one resend)."""

    def __init__(self, *, retried: bool) -> None:
        super().__init__()
        self.retried = retried


def _is_ip(host: str) -> bool:
    if not (host[-1].isdigit() or ":" in host):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Target:
    """What a URL's scheme and netloc give (cached per handler).
    ``lookup``: the host goes through the resolver (a name, or an IP literal
    the SSRF guard must check)."""

    __slots__ = ("host", "host_header", "key", "lookup", "port", "tls")

    def __init__(self, scheme: str, host: str, port: int, *, guarded: bool) -> None:
        self.host = host
        self.port = port
        self.tls = scheme == "https"
        self.key = (scheme, host, port)
        self.lookup = guarded or not _is_ip(host)
        name = f"[{host}]".encode() if ":" in host else host.encode("idna")
        if port != _DEFAULT_PORTS[scheme]:
            name += b":%d" % port
        self.host_header = name


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; the state of its current exchange."""

    __slots__ = (
        "body",
        "bytes_signal",
        "certificate",
        "dataloss",
        "done",
        "error",
        "expected",
        "got_data",
        "handler",
        "head",
        "head_bytes",
        "header_bytes",
        "header_count",
        "headers",
        "headers_done",
        "headers_signal",
        "idle_in",
        "interim",
        "ip_address",
        "keep_alive",
        "key",
        "lost",
        "maxsize",
        "parser",
        "partial",
        "request",
        "reusable",
        "size",
        "start",
        "status",
        "stop_download",
        "transport",
        "until_close",
        "waiter",
        "warned",
        "warnsize",
    )

    def __init__(self, handler: FastHTTPDownloadHandler, key: tuple[str, str, int]) -> None:
        self.handler = handler
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        # Accepted as browsers and the Twisted client do: Content-Length with
        # chunked (chunked wins), bare LF line ends, any byte in a value, and
        # a final response after a 1xx in HTTP/1.0 or with Connection: close
        # (llhttp would take the 1xx for the last message and reject the rest).
        # Bytes after the final response still end the connection
        # (on_message_begin); should_keep_alive() is not changed by it.
        self.parser.set_dangerous_leniencies(
            lenient_headers=True,
            lenient_chunked_length=True,
            lenient_optional_cr_before_lf=True,
            lenient_keep_alive=True,
        )
        self.ip_address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
        self.certificate: bytes | None = None
        self.lost = False  # the transport is gone (or going)
        self.idle_in: list[_Connection] | None = None  # the idle list holding it
        self.waiter: asyncio.Future[None] | None = None  # None: no exchange
        self.request: Request | None = None
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, list[bytes]] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.expected: int | None = None
        self.header_count = 0
        self.header_bytes = 0
        self.head_bytes = 0
        self.headers_done = False
        self.interim = False
        self.done = False
        self.partial = False
        self.dataloss = False
        self.keep_alive = False
        self.reusable = True  # False: the framing forbids reusing the connection
        self.until_close = False
        self.got_data = False
        self.warned = False
        self.error: BaseException | None = None
        self.stop_download: StopDownload | None = None

    # -- the exchange (called by the handler) -----------------------------------

    def begin(
        self,
        request: Request,
        data: bytes,
        maxsize: int,
        warnsize: int,
        *,
        headers_signal: bool,
        bytes_signal: bool,
    ) -> asyncio.Future[None]:
        assert self.transport is not None
        self.request = request
        self.head = request.method == "HEAD"
        self.maxsize = maxsize
        self.warnsize = warnsize
        self.headers_signal = headers_signal
        self.bytes_signal = bytes_signal
        self.start = time.monotonic()
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        if self.lost:  # closed by the server before the request was sent
            reason = ConnectionDone("Connection was closed cleanly.")
            self.error = DownloadFailedError(
                f"Connection lost before the request was sent: {reason}"
            )
            self.error.__cause__ = reason
            waiter.set_result(None)
        else:
            self.transport.write(data)
        return waiter

    def end(self) -> None:
        """Forget the exchange (before the connection is reused)."""
        self.waiter = None
        self.request = None
        self.reset()

    def abort(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None and not self.done:
            self.error = error

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.ip_address = ipaddress.ip_address(peer[0])
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.certificate = ssl_object.getpeercert(binary_form=True)
            if self.handler._tls_verbose_logging:
                _log_sslobj_debug_info(ssl_object)
        self.handler._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.done or self.error is not None or self.stop_download:
            # Bytes nobody asked for (an idle connection, after a complete or
            # failed response): the connection cannot be trusted any more.
            self.keep_alive = False
            self.abort()
            return
        self.got_data = True
        headers_done = self.headers_done
        if not headers_done:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if not self.done and self.error is None and self.stop_download is None:
                self.error = _malformed("unexpected protocol upgrade", data)
            self.keep_alive = False
        except httptools.HttpParserError as exc:
            if not self.done and self.error is None and self.stop_download is None:
                self.error = _malformed(str(exc) or type(exc).__name__, data)
            self.keep_alive = False
        else:
            if not self.headers_done and self.head_bytes > MAX_HEADER_BYTES:
                self._headers_too_large()
        if self.done or self.error is not None or self.stop_download is not None:
            self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost() follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.handler._connections.discard(self)
        if self.idle_in is not None:
            self.handler._forget_idle(self)
        if self.waiter is None or self.done or self.error is not None or self.stop_download:
            self._wake()
            return
        if not self.headers_done:
            reason: BaseException = exc or ConnectionDone("Connection was closed cleanly.")
            error = DownloadFailedError(
                f"Connection lost before the response was received: {reason}"
            )
            error.__cause__ = reason
            self.error = error
        elif self.until_close:
            # The body ends with the connection (Twisted: PotentialDataLoss).
            self.done = True
            self.partial = True
        else:
            self.dataloss = True
        self._wake()

    # -- httptools callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            raise _Abort  # a second response: not reusable

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self.header_bytes += len(name) + len(value) + 4
        if self.header_count > MAX_HEADERS or self.header_bytes > MAX_HEADER_BYTES:
            self._headers_too_large()
            raise _Abort
        name = name.title()
        values = self.headers.get(name)
        if values is None:
            self.headers[name] = [value.strip()]
        else:
            values.append(value.strip())

    def _headers_too_large(self) -> None:
        self._fail(
            _malformed(
                f"response headers larger than the limit ({MAX_HEADERS} lines, "
                f"{MAX_HEADER_BYTES} bytes)"
            )
        )

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx (101 is an upgrade: an error)
            self.interim = True
            return
        self.status = status
        self.headers_done = True
        request = self.request
        assert request is not None
        request.meta["download_latency"] = time.monotonic() - self.start
        headers = self.headers
        lengths = headers.get(b"Content-Length")
        encodings = headers.get(b"Transfer-Encoding")
        no_body = self.head or status in (204, 304)
        if encodings is None:
            if lengths is not None:
                try:
                    self.expected = int(lengths[-1])
                except ValueError:
                    self.expected = None
            self.until_close = lengths is None and not no_body
        else:
            # RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length;
            # chunked only if it is the last coding, else read until close (as
            # llhttp does). Both headers, or Transfer-Encoding in HTTP/1.0,
            # may be a smuggling attempt: the connection is not reused.
            self.until_close = not no_body and _last_coding(encodings) != b"chunked"
            if lengths is not None or self.parser.get_http_version() == "1.0":
                self.reusable = False
        expected = self.expected
        maxsize = self.maxsize
        if maxsize and expected and expected > maxsize:
            message = get_maxsize_msg(expected, maxsize, request, expected=True)
            logger.warning(message)
            self.error = DownloadCancelledError(message)
            raise _Abort
        warnsize = self.warnsize
        if warnsize and expected and expected > warnsize:
            self.warned = True
            logger.warning(get_warnsize_msg(expected, warnsize, request, expected=True))
        if self.headers_signal:
            stop = check_stop_download(
                signals.headers_received,
                self.handler.crawler,
                request,
                headers=_headers(headers),
                body_length=expected,
            )
            if stop is not None:
                self.stop_download = stop
                raise _Abort
        if self.head:
            # llhttp would wait for the body a HEAD response announces.
            self.done = True
            raise _Abort

    def on_body(self, data: bytes) -> None:
        self.body.append(data)
        size = self.size = self.size + len(data)
        request = self.request
        assert request is not None
        if self.bytes_signal:
            stop = check_stop_download(
                signals.bytes_received, self.handler.crawler, request, data=data
            )
            if stop is not None:
                self.stop_download = stop
                raise _Abort
        maxsize = self.maxsize
        if maxsize and size > maxsize:
            message = get_maxsize_msg(size, maxsize, request, expected=False)
            logger.warning(message)
            self.body.clear()
            self.error = DownloadCancelledError(message)
            raise _Abort
        warnsize = self.warnsize
        if warnsize and size > warnsize and not self.warned:
            self.warned = True
            logger.warning(get_warnsize_msg(size, warnsize, request, expected=False))

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            self.headers = {}
            return
        self.done = True
        self.keep_alive = self.reusable and self.parser.should_keep_alive()


def _last_coding(values: list[bytes]) -> bytes:
    """The last transfer coding of ``Transfer-Encoding`` header values
    (lowercase; b"" if there is none)."""
    for value in reversed(values):
        for part in reversed(value.split(b",")):
            coding = part.split(b";", 1)[0].strip()
            if coding:
                return coding.lower()
    return b""


def _malformed(reason: str, data: bytes = b"") -> DownloadFailedError:
    """What the Twisted client raises for a response it cannot parse:
    ``DownloadFailedError`` (retried) caused by a ``ParseError``."""
    error = DownloadFailedError(f"malformed response: {reason}")
    error.__cause__ = MalformedResponseError(reason, data[:64])
    return error


def _headers(raw: dict[bytes, list[bytes]]) -> Headers:
    """Scrapy Headers from title-cased names (what Headers.normkey gives)."""
    headers = Headers()
    dict.update(headers, raw)
    return headers


class FastHTTPDownloadHandler(BaseHttpDownloadHandler):
    """``DOWNLOAD_HANDLERS = {"http": ..., "https": ...}``."""

    lazy = False
    stopping = False

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self._timeout: float = settings.getfloat("DOWNLOAD_TIMEOUT")
        self._bind_address = normalize_bind_address(settings.get("DOWNLOAD_BIND_ADDRESS"))
        self._max_idle_per_host = max(1, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        self._max_idle = max(1, settings.getint("CONCURRENT_REQUESTS"))
        # Built now, so that a bad TLS setting stops the crawl at once (it
        # would otherwise fail every https request).
        self._ssl = _tls_context(settings)
        self._verify_certificates = settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES")
        self._ca_error: str | None = None  # why the CA certificates could not be loaded
        self._bindaddress_logged = False
        if settings.getpriority("DOWNLOADER_CLIENTCONTEXTFACTORY") not in (None, 0):
            logger.warning(
                "DOWNLOADER_CLIENTCONTEXTFACTORY (%(factory)s) is ignored by "
                "FastHTTPDownloadHandler; it applies only to requests through a proxy "
                "(Twisted's client). Direct https requests use DOWNLOAD_VERIFY_CERTIFICATES "
                "(%(verify)s), DOWNLOAD_TLS_MIN_VERSION, DOWNLOAD_TLS_MAX_VERSION and "
                "DOWNLOADER_CLIENT_TLS_CIPHERS.",
                {
                    "factory": settings.get("DOWNLOADER_CLIENTCONTEXTFACTORY"),
                    "verify": self._verify_certificates,
                },
                extra={"setting": "DOWNLOADER_CLIENTCONTEXTFACTORY"},
            )
        # Idle connections by (scheme, host, port), most recent last; a key
        # goes when its list empties (a list of a million hosts leaves none).
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        # All idle connections, least recently released first.
        self._idle_lru: dict[_Connection, None] = {}
        self._connections: set[_Connection] = set()
        self._targets: dict[tuple[str, str], _Target] = {}
        self._inflight: dict[Request, asyncio.Task[Any]] = {}
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._expired: set[asyncio.Task[Any]] = set()
        self._sender_id = id(crawler.signals.sender)
        self._fallback: CancellableHTTP11DownloadHandler | None = None
        self._resolver = AsyncResolver.for_crawler(crawler)
        self._happy_eyeballs_delay = self._resolver.happy_eyeballs_delay
        self._bind_family: int | None = None
        self._local_addr_infos: list[AddrInfoType] | None = None
        if self._bind_address is not None:
            host, port = self._bind_address[:2]
            self._bind_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            local = (host, port, 0, 0) if ":" in host else (host, port)
            self._local_addr_infos = [(self._bind_family, socket.SOCK_STREAM, 6, "", local)]

    @staticmethod
    def check_settings(settings: BaseSettings) -> None:
        """Raise :class:`TLSSettingsError` (a ``UsageError``) if the TLS
        settings cannot be used: for ``scrapy crawl``'s checks before anything
        starts (Scrapy logs a handler that fails to load and fails every
        request of its schemes instead)."""
        _tls_context(settings)

    # -- the handler API ---------------------------------------------------------

    async def download_request(self, request: Request) -> Response:
        if self.stopping:
            request.meta[NOT_ATTEMPTED_KEY] = True
            raise DownloadCancelledError("not attempted: the crawl is stopping")
        meta = request.meta
        if meta.get("proxy"):
            return await self._proxied(request)
        if meta.get("bindaddress") and not self._bindaddress_logged:
            self._bindaddress_logged = True
            # Scrapy 2.19's handlers without it say the same (logged once here).
            logger.error(
                "The 'bindaddress' request meta key is not supported by "
                "FastHTTPDownloadHandler and will be ignored (DOWNLOAD_BIND_ADDRESS "
                "applies; requests with meta['proxy'] honour it).",
                extra={"bindaddress": str(meta["bindaddress"])},
            )
        task = asyncio.current_task()
        assert task is not None
        timeout: float = meta.get("download_timeout") or self._timeout
        inflight = self._inflight
        inflight[request] = task
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        try:
            target, path = self._target(request)
            addresses: tuple[str, ...] | None = None
            if target.lookup and target.key not in self._idle:
                # Resolved before the download timer starts: DNS_TIMEOUT
                # bounds the lookup, DOWNLOAD_TIMEOUT what follows.
                resolver = self._resolver
                addresses = resolver.cached(target.host)
                if addresses is None:
                    addresses = await resolver.resolve(target.host)
            started = loop.time()
            timer = loop.call_later(timeout, self._expire, task)
            try:
                return await self._download(request, meta, target, path, addresses)
            except _NeedAddresses as need:
                # A new connection after all (the idle ones were gone): look
                # the name up with the download timer stopped, then go on.
                timer.cancel()
                left = timeout - (loop.time() - started)
                addresses = await self._resolver.resolve(target.host)
                timer = loop.call_later(max(left, 0), self._expire, task)
                return await self._download(
                    request, meta, target, path, addresses, reuse=not need.retried
                )
        except asyncio.CancelledError:
            cancelled = task in self._cancelled
            expired = task in self._expired
            if not (cancelled or expired):
                raise
            self._cancelled.discard(task)
            self._expired.discard(task)
            for _ in range(cancelled + expired):
                task.uncancel()
            if task.cancelling():
                raise  # also cancelled by someone else
            if cancelled:
                raise DownloadCancelledError("cancelled: the crawl is stopping") from None
            url = request.url.split("#", 1)[0]
            raise DownloadTimeoutError(
                f"Getting {url} took longer than {timeout} seconds."
            ) from None
        finally:
            if timer is not None:
                timer.cancel()
            del inflight[request]
            if self._expired or self._cancelled:
                self._expired.discard(task)
                self._cancelled.discard(task)

    def _ssl_context(self) -> ssl.SSLContext:
        context = self._ssl
        if self._verify_certificates:
            # Loading the default certificates takes ~25 ms: not for
            # http-only lists. A failure is kept, and fails each https
            # request as a Scrapy exception (tls_error), never a bare one.
            if self._ca_error is None:
                try:
                    context.check_hostname = True
                    context.verify_mode = ssl.CERT_REQUIRED
                    context.load_default_certs()
                except Exception as exc:
                    self._ca_error = f"{type(exc).__name__}: {exc}"
                else:
                    self._verify_certificates = False  # done
                    return context
            error = DownloadFailedError(
                f"Cannot load the CA certificates to verify with: {self._ca_error}"
            )
            error.__cause__ = ssl.SSLError(self._ca_error)
            raise error
        return context

    def cancel_all(self) -> int:
        """Stop accepting downloads and cancel those in progress; return how
        many were cancelled."""
        self.stopping = True
        cancelled = 0
        for request, task in list(self._inflight.items()):
            request.meta[CANCELLED_KEY] = True
            if task not in self._cancelled and task.cancel():
                self._cancelled.add(task)
            cancelled += 1
        if self._fallback is not None:
            cancelled += self._fallback.cancel_all()
        return cancelled

    async def close(self) -> None:
        for connection in list(self._connections):
            connection.abort()
        for connection in self._idle_lru:
            connection.idle_in = None
        self._idle.clear()
        self._idle_lru.clear()
        if self._fallback is not None:
            await self._fallback.close()

    # -- internals ---------------------------------------------------------------------

    def _expire(self, task: asyncio.Task[Any]) -> None:
        if task.cancel():
            self._expired.add(task)

    async def _proxied(self, request: Request) -> Response:
        if self._fallback is None:
            from scraper_project.handlers import CancellableHTTP11DownloadHandler

            self._fallback = CancellableHTTP11DownloadHandler(self.crawler)
        return await self._fallback.download_request(request)

    def _target(self, request: Request) -> tuple[_Target, str]:
        parsed = urlparse_cached(request)
        scheme = parsed.scheme
        netloc = parsed.netloc
        target = self._targets.get((scheme, netloc))
        if target is None:
            if scheme not in _DEFAULT_PORTS:
                raise UnsupportedURLSchemeError(f"Unsupported URL scheme: {scheme!r}")
            host = parsed.hostname
            if not host:
                raise UnsupportedURLSchemeError(f"No host in {request.url}")
            try:
                port = parsed.port or _DEFAULT_PORTS[scheme]
            except ValueError as exc:
                raise UnsupportedURLSchemeError(str(exc)) from exc
            if len(self._targets) >= _NETLOC_CACHE_MAX:
                self._targets.clear()
            try:
                target = _Target(scheme, host, port, guarded=self._resolver.block_private)
            except UnicodeError as exc:
                # An empty or over-long label (a redirect to http://a..b/):
                # no such host can exist. invalid_url, not a bare UnicodeError.
                raise InvalidURL(f"invalid host {host!r} in {request.url}: {exc}") from None
            self._targets[scheme, netloc] = target
        path = parsed.path or "/"
        if parsed.params:
            path = f"{path};{parsed.params}"
        if parsed.query:
            path = f"{path}?{parsed.query}"
        return target, path

    def _serialize(self, request: Request, target: _Target, path: str) -> bytes:
        method = request.method
        raw_headers: dict[bytes, list[bytes]] = request.headers
        parts = [f"{method} {path} HTTP/1.1\r\n".encode()]
        lines = 1
        if not dict.__contains__(raw_headers, b"Host"):
            parts.append(b"Host: " + target.host_header + b"\r\n")
            lines += 1
        for name, values in dict.items(raw_headers):
            if name in _SKIPPED:
                continue
            for value in values:
                parts.append(b"%s: %s\r\n" % (name, value))
                lines += 1
        body = request.body
        if body or method in _BODY_EXPECTED:
            parts.append(b"Content-Length: %d\r\n" % len(body))
            lines += 1
        parts.append(b"\r\n")
        head = b"".join(parts)
        if head.count(b"\n") != lines + 1 or head.count(b"\r") != lines + 1:
            head = self._sanitized(parts)
        return head + body if body else head

    @staticmethod
    def _sanitized(parts: list[bytes]) -> bytes:
        """Line breaks inside a header become spaces (as Twisted does)."""
        fixed = [b" ".join(part[:-2].splitlines()) + b"\r\n" for part in parts[:-1]]
        return b"".join(fixed) + b"\r\n"

    def _wants(self, signal: object) -> bool:
        connections = dispatcher.connections
        for key in (self._sender_id, _ANY_ID):
            table = connections.get(key)
            if table and (table.get(signal) or table.get(dispatcher.Any)):
                return True
        return False

    def _addr_infos(self, addresses: tuple[str, ...], port: int) -> list[AddrInfoType]:
        infos: list[AddrInfoType] = []
        family = self._bind_family
        for ip in addresses:
            if ":" in ip:
                if family != socket.AF_INET:
                    infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            elif family != socket.AF_INET6:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return infos

    async def _connect(self, target: _Target, addresses: tuple[str, ...] | None) -> _Connection:
        """A new connection to ``target``: to the host itself (an IP literal)
        or, with Happy Eyeballs, to the first of ``addresses`` that answers."""
        loop = asyncio.get_running_loop()
        connection = _Connection(self, target.key)
        context = self._ssl_context() if target.tls else None
        hostname = target.host if context is not None else None
        try:
            if addresses is None:
                await loop.create_connection(
                    lambda: connection,
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=hostname,
                    local_addr=self._bind_address,
                )
            else:
                infos = self._addr_infos(addresses, target.port)
                if not infos:
                    raise OSError(
                        f"no address of the family of DOWNLOAD_BIND_ADDRESS "
                        f"among {', '.join(addresses)}"
                    )
                sock = await start_connection(
                    infos,
                    happy_eyeballs_delay=self._happy_eyeballs_delay,
                    interleave=1,
                    local_addr_infos=self._local_addr_infos,
                )
                try:
                    await loop.create_connection(
                        lambda: connection, sock=sock, ssl=context, server_hostname=hostname
                    )
                except BaseException:
                    sock.close()
                    raise
        except ConnectionRefusedError as exc:
            raise DownloadConnectionRefusedError(
                f"Connection to {target.host}:{target.port} refused: {exc}"
            ) from exc
        except OSError as exc:  # ssl.SSLError included
            raise DownloadFailedError(
                f"Connection to {target.host}:{target.port} failed: {exc}"
            ) from exc
        return connection

    @property
    def _idle_count(self) -> int:
        return len(self._idle_lru)

    def _take(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle[-1]
            self._forget_idle(connection)
            if not connection.lost:
                return connection
        return None

    def _release(self, connection: _Connection) -> None:
        connection.end()
        if connection.lost:
            return
        key = connection.key
        idle = self._idle.get(key)
        if idle is not None and len(idle) >= self._max_idle_per_host:
            self._drop_idle(idle[0])
        if len(self._idle_lru) >= self._max_idle:
            # The pool is full: the connection idle the longest goes, whatever
            # its host (hosts of a long list come and go).
            self._drop_idle(next(iter(self._idle_lru)))
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = []
        idle.append(connection)
        connection.idle_in = idle
        self._idle_lru[connection] = None

    def _forget_idle(self, connection: _Connection) -> None:
        """Take an idle ``connection`` out of the pool (it stays open)."""
        idle = connection.idle_in
        assert idle is not None
        connection.idle_in = None
        idle.remove(connection)
        del self._idle_lru[connection]
        if not idle and self._idle.get(connection.key) is idle:
            del self._idle[connection.key]

    def _drop_idle(self, connection: _Connection) -> None:
        self._forget_idle(connection)
        connection.close()

    async def _download(
        self,
        request: Request,
        meta: dict[str, Any],
        target: _Target,
        path: str,
        addresses: tuple[str, ...] | None,
        *,
        reuse: bool = True,
    ) -> Response:
        data = self._serialize(request, target, path)
        maxsize: int = meta.get("download_maxsize", self._default_maxsize)
        warnsize: int = meta.get("download_warnsize", self._default_warnsize)
        headers_signal = self._wants(signals.headers_received)
        bytes_signal = self._wants(signals.bytes_received)
        connection = self._take(target.key) if reuse else None
        retry = connection is not None and request.method in _IDEMPOTENT
        if connection is None:
            if addresses is None and target.lookup:
                raise _NeedAddresses(retried=False)
            connection = await self._connect(target, addresses)
        while True:
            waiter = connection.begin(
                request,
                data,
                maxsize,
                warnsize,
                headers_signal=headers_signal,
                bytes_signal=bytes_signal,
            )
            try:
                await waiter
            except BaseException:
                connection.abort()
                raise
            if retry and connection.error is not None and not connection.got_data:
                # A kept-alive connection the server had closed: once more,
                # on a new connection.
                connection.abort()
                retry = False
                if addresses is None and target.lookup:
                    addresses = self._resolver.cached(target.host)
                    if addresses is None:
                        raise _NeedAddresses(retried=True)
                connection = await self._connect(target, addresses)
                continue
            break
        return self._response(request, meta, connection)

    def _response(
        self, request: Request, meta: dict[str, Any], connection: _Connection
    ) -> Response:
        error = connection.error
        if error is not None:
            connection.abort()
            raise error
        url = request.url
        if "#" in url:
            url = url.split("#", 1)[0]
        parts = connection.body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        raw_headers = connection.headers
        headers = _headers(raw_headers)
        protocol = _PROTOCOLS.get(connection.parser.get_http_version()) or (
            f"HTTP/{connection.parser.get_http_version()}"
        )
        status = connection.status
        ip_address = connection.ip_address
        certificate = connection.certificate
        stop_download = connection.stop_download
        flags: list[str] | None = None
        if stop_download is not None:
            connection.abort()
            connection.end()
            return make_response(
                url=url,
                status=status,
                headers=headers,
                body=body,
                certificate=certificate,
                ip_address=ip_address,
                protocol=protocol,
                stop_download=stop_download,
            )
        if connection.dataloss:
            connection.abort()
            connection.end()
            if not meta.get("download_fail_on_dataloss", self._fail_on_dataloss):
                flags = ["dataloss"]
            else:
                if not self._fail_on_dataloss_warned:
                    logger.warning(get_dataloss_msg(url))
                    self._fail_on_dataloss_warned = True
                expected = connection.expected
                detail = f"{connection.size} of {expected} bytes" if expected else "no last chunk"
                raise ResponseDataLossError(f"Connection closed before the body ended ({detail})")
        elif connection.partial:
            flags = ["partial"]
        if connection.keep_alive and not connection.lost and not connection.head:
            self._release(connection)
        else:
            connection.close()
            connection.end()
        content_types = raw_headers.get(b"Content-Type")
        encodings = raw_headers.get(b"Content-Encoding")
        if (
            content_types is not None
            and (encodings is None or not encodings[-1])
            and content_types[-1].split(b";", 1)[0].strip().lower() == b"text/html"
        ):
            cls: type[Response] = HtmlResponse
        else:
            cls = responsetypes.from_args(headers=headers, url=url, body=body)
        response = cls(
            url=url,
            status=status,
            body=body,
            flags=flags,
            certificate=certificate,
            ip_address=ip_address,
            protocol=protocol,
        )
        # Response() copies (and renormalizes) the Headers it is given.
        response._headers = headers
        return response
