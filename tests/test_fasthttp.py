"""The lean asyncio download handler (issue #9): real crawls with it
configured, and the handler driven directly (against a capturing server) for
what the report does not show."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    StopDownload,
)
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.asyncio import call_later
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from scraper_project.errors import classify
from scraper_project.fasthttp import MAX_HEADERS, FastHTTPDownloadHandler
from scraper_project.handlers import CANCELLED_KEY, NOT_ATTEMPTED_KEY
from tests.crawl import crawl, write_list
from tests.support.aio import in_task
from tests.support.rawserver import TRUNCATED_BODY, RawServer, bomb_body
from tests.support.servers import DemoSite

HANDLER = "scraper_project.fasthttp.FastHTTPDownloadHandler"
FAST: dict[str, Any] = {
    "DOWNLOAD_HANDLERS": {"http": HANDLER, "https": HANDLER},
    "ROBOTSTXT_OBEY": False,
}

LATIN1_BODY = b"<title>Latin-1 head</title>"
LATIN1_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"X-Name: caf\xe9\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(LATIN1_BODY)
) + LATIN1_BODY
TOO_BIG_ANNOUNCED = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\nhello"
MANY_HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-H%d: %d\r\n" % (i, i) for i in range(MAX_HEADERS + 1))
    + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _error_class(row: dict[str, Any]) -> str:
    return str(row["error"]).split(":")[0]


@pytest.fixture(scope="module")
def raw() -> Any:
    responses = {"/latin1": LATIN1_PAGE, "/too-big": TOO_BIG_ANNOUNCED, "/many": MANY_HEADERS}
    with RawServer(responses=responses) as server:
        yield server


# -- real crawls ------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_outcomes(site: DemoSite, raw: RawServer, tmp_path: Path) -> None:
    port = site.url.rsplit(":", 1)[1]
    expect = {
        f"{site.url}/page/1": "",
        f"http://site.test:{port}/page/2": "",  # RESOLVE_HOSTS, through the reactor
        f"{site.url}/redirect/chain/2": "",
        f"{site.url}/gzip": "",  # decompressed by the middleware, not the handler
        f"{site.url}/status/404": "",
        f"{site.url}/large?size=200000": "",  # chunked (no Content-Length)
        f"{site.url}/binary/png": "",
        f"{raw.url}/latin1": "",  # a header that is not UTF-8
        f"{raw.url}/ok": "",
        f"http://nowhere.test:{port}/": "dns_error",  # RESOLVE_HOSTS_ONLY: no query
        f"http://127.0.0.1:{_closed_port()}/": "connection_refused",
        f"{site.url}/slow?delay=30": "timeout",
        f"{raw.url}/truncated": "truncated",
        f"{site.url}/large?size=3000000": "too_large",  # streamed past DOWNLOAD_MAXSIZE
        f"{raw.url}/too-big": "too_large",  # announced by Content-Length
        f"{raw.url}/bomb/gzip": "too_large",  # decompression bomb
        f"{raw.url}/reset": "connection_lost",
        f"{raw.url}/close": "connection_lost",
        f"{raw.url}/malformed": "malformed_response",
        f"{raw.url}/garbage": "malformed_response",
        f"{raw.url}/huge-headers": "malformed_response",  # 2000 header lines
        f"{raw.url}/many": "malformed_response",  # MAX_HEADERS + 3 lines
        f"{raw.url}/header-drip": "timeout",
        f"{raw.url}/slow-drip": "timeout",
        f"https://127.0.0.1:{port}/page/1": "tls_error",  # TLS to a plain HTTP port
    }
    settings = {**FAST, "DOWNLOAD_TIMEOUT": 2, "DOWNLOAD_MAXSIZE": 1_000_000}
    # Built on first use (100 MiB compressed): under load that alone took
    # longer than the 2 s DOWNLOAD_TIMEOUT, and the row was a timeout.
    bomb_body("gzip")
    started = time.monotonic()
    result = await crawl(write_list(tmp_path / "u.txt", expect), tmp_path, settings)
    assert time.monotonic() - started < 20
    rows = {r["url"]: r for r in result.rows}
    assert set(rows) == set(expect)
    for url, error in expect.items():
        assert _error_class(rows[url]) == error, rows[url]
    page = rows[f"{site.url}/page/1"]
    assert (page["status"], page["title"], page["final_url"]) == (200, "Page 1", page["url"])
    assert page["length"] == len(site.get("/page/1").body)
    assert rows[f"http://site.test:{port}/page/2"]["title"] == "Page 2"
    assert rows[f"{site.url}/gzip"]["title"] == "Gzipped"
    chain = rows[f"{site.url}/redirect/chain/2"]
    assert chain["redirects"] == 3
    assert chain["status"] == 200
    assert rows[f"{site.url}/status/404"]["status"] == 404
    assert rows[f"{site.url}/large?size=200000"]["length"] == 200000
    assert rows[f"{site.url}/binary/png"]["content_type"] == "image/png"
    assert rows[f"{raw.url}/latin1"]["title"] == "Latin-1 head"
    assert rows[f"{raw.url}/ok"]["title"] == "Raw OK"
    assert "not in RESOLVE_HOSTS" in rows[f"http://nowhere.test:{port}/"]["error"]
    assert "headers larger than the limit" in rows[f"{raw.url}/huge-headers"]["error"]
    assert result.stats["finish_reason"] == "finished"


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_keep_alive(site: DemoSite, tmp_path: Path) -> None:
    """Connections are reused: 40 pages over at most 2 connections."""
    lines = [f"{site.url}/page/{i}?keepalive" for i in range(40)]
    settings = {**FAST, "CONCURRENT_REQUESTS": 2, "CONCURRENT_REQUESTS_PER_DOMAIN": 2}
    since = len(site.requests())
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    assert [r["status"] for r in result.rows] == [200] * 40
    records = [r for r in site.requests(since) if "keepalive" in r["path"]]
    assert len(records) == 40
    ports = {r["client_port"] for r in records}
    assert 1 <= len(ports) <= 2, ports


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_retries_the_same_failures(raw: RawServer, tmp_path: Path) -> None:
    """RETRY_EXCEPTIONS: a lost connection is retried, a DNS error is not."""
    lines = [f"{raw.url}/close?retry", "http://nowhere.test/"]
    settings = {**FAST, "RETRY_ENABLED": True, "RETRY_TIMES": 1, "RETRY_BACKOFF_BASE": 0.01}
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    rows = {r["url"]: r for r in result.rows}
    assert rows[f"{raw.url}/close?retry"]["attempts"] == 2
    # Lost on a new connection: not sent again by the handler (as Twisted).
    assert raw.paths().count("/close?retry") == 2
    assert rows["http://nowhere.test/"]["attempts"] == 1


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_ssrf_guard(site: DemoSite, tmp_path: Path) -> None:
    port = site.url.rsplit(":", 1)[1]
    since = len(site.requests())
    lines = [
        f"{site.url}/page/51?fast-ssrf",  # an IP literal: checked, not resolved
        f"http://[::1]:{port}/page/52?fast-ssrf",
        f"http://metadata.test:{port}/latest/meta-data/",
        f"http://local.test:{port}/page/53?fast-ssrf",
    ]
    settings = {
        **FAST,
        "PAGES_BLOCK_PRIVATE_ADDRESSES": True,
        "RESOLVE_HOSTS": {"metadata.test": "169.254.169.254", "local.test": "127.0.0.1"},
    }
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    assert len(result.rows) == 4
    for row in result.rows:
        assert _error_class(row) == "blocked_address", row
        assert "a non-public address" in row["error"]
    assert not [r for r in site.requests(since) if "fast-ssrf" in r["path"]]

    # Every redirect hop goes through the guard.
    settings["PAGES_ALLOWED_ADDRESSES"] = ["127.0.0.1/32"]
    settings["RESOLVE_HOSTS"] = {"intranet.test": "10.0.0.7"}
    hop = f"{site.url}/redirect?to=http://intranet.test:{port}/x"
    result = await crawl(
        write_list(tmp_path / "v.txt", [hop]), tmp_path, settings, report="v.jsonl"
    )
    (row,) = result.rows
    assert _error_class(row) == "blocked_address", row
    assert row["final_url"] == f"http://intranet.test:{port}/x"


class CancelWhenHanging:
    """Test extension: once ``HANG`` downloads of ``/hang`` have reached the
    downloader, cancel every download (as GracefulShutdown does)."""

    HANG = 5

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.hanging = 0
        crawler.signals.connect(self._reached, signals.request_reached_downloader)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CancelWhenHanging:
        return cls(crawler)

    def _reached(self, request: Request, spider: Spider) -> None:
        if "/hang" in request.url:
            self.hanging += 1
            if self.hanging == self.HANG:
                call_later(0.5, self._cancel)  # well into the downloads

    def _cancel(self) -> None:
        assert self.crawler.engine is not None
        assert self.crawler.stats is not None
        handlers = self.crawler.engine.downloader.handlers._handlers
        cancelled = 0
        fast = {id(h): h for h in handlers.values() if isinstance(h, FastHTTPDownloadHandler)}
        for handler in fast.values():
            cancelled += handler.cancel_all()
        self.crawler.stats.set_value("test/cancelled", cancelled)
        self.crawler.stats.set_value("test/cancelled_at", time.monotonic())


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_cancel_all(site: DemoSite, raw: RawServer, tmp_path: Path) -> None:
    """cancel_all() during /hang downloads (DOWNLOAD_TIMEOUT=30): cancelled
    rows at once, then nothing new is downloaded."""
    hang = CancelWhenHanging.HANG
    lines = [f"{site.url}/page/{i}?fast-cancel" for i in range(5)]
    lines += [f"{raw.url}/hang?n={i}" for i in range(hang)]
    extensions = get_project_settings().getdict("EXTENSIONS")
    extensions[f"{__name__}.CancelWhenHanging"] = 500
    settings = {
        **FAST,
        "DOWNLOAD_TIMEOUT": 30,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "EXTENSIONS": extensions,
    }
    started = time.monotonic()
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    assert time.monotonic() - started < 10
    stats = result.stats
    assert stats["test/cancelled"] == hang
    assert time.monotonic() - stats["test/cancelled_at"] < 5  # the crawl ended promptly
    rows = {r["url"]: r for r in result.rows}
    assert len(rows) == len(lines)
    for line in lines:
        expected = "cancelled" if "/hang" in line else ""
        assert _error_class(rows[line]) == expected, rows[line]
    assert stats["finish_reason"] == "finished"


# -- the handler itself ----------------------------------------------------------
# Each test body runs as an asyncio task, as downloads do in a crawl.


def _handler(settings: dict[str, Any] | None = None) -> FastHTTPDownloadHandler:
    crawler = get_crawler(Spider, settings or {})
    crawler.spider = crawler._create_spider("t")
    return FastHTTPDownloadHandler.from_crawler(crawler)


Reply = Callable[[bytes], bytes | None]


class Capture:
    """An HTTP/1.1 server on the test's loop that records what it receives.

    ``reply(request_bytes)`` gives the bytes to send back (``None``: close
    the connection); a connection serves requests until ``reply`` closes it
    (or after one answer with ``close_after_reply``).
    """

    def __init__(self, reply: Reply, *, tls: bool = False) -> None:
        self.reply = reply
        self.tls = tls
        self.close_after_reply = False
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                data = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(data)
                answer = self.reply(data)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
def capture() -> Iterator[Callable[[Reply], Any]]:
    """``await capture(reply)`` (in the test's task) starts a :class:`Capture`."""
    servers: list[Capture] = []

    async def start(reply: Reply, tls: ssl.SSLContext | None = None) -> Capture:
        server = Capture(reply, tls=tls is not None)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def _ok(body: bytes = b"<title>x</title>", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_response(raw: RawServer) -> None:
    handler = _handler()
    try:
        request = Request(f"{raw.url}/latin1#fragment", meta={"download_timeout": 5})
        response = await handler.download_request(request)
        assert isinstance(response, HtmlResponse)
        assert response.status == 200
        assert response.url == f"{raw.url}/latin1"  # as the Twisted client: no fragment
        assert response.headers[b"X-Name"] == b"caf\xe9"  # bytes as received
        assert response.headers.getlist("content-length") == [b"%d" % len(LATIN1_BODY)]
        assert response.body == LATIN1_BODY
        assert str(response.ip_address) == "127.0.0.1"
        assert response.protocol == "HTTP/1.1"
        assert 0 < request.meta["download_latency"] < 5
        # Not decompressed: HttpCompressionMiddleware's job (within DOWNLOAD_MAXSIZE).
        bomb = await handler.download_request(Request(f"{raw.url}/bomb/gzip"))
        assert type(bomb).__name__ == "Response"  # encoded: not a TextResponse
        assert bomb.headers[b"Content-Encoding"] == b"gzip"
        assert len(bomb.body) < 200_000
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_request_bytes_and_reuse(capture: Any) -> None:
    server = await capture(lambda data: _ok(extra=b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"))
    handler = _handler()
    try:
        first = Request(
            f"{server.url}/a/b;p?q=1&r=%20#frag",
            headers={"X-One": "1", "Proxy-Authorization": "Basic eDp5"},
        )
        response = await handler.download_request(first)
        assert response.headers.getlist("Set-Cookie") == [b"a=1", b"b=2"]
        post = Request(f"{server.url}/post", method="POST", body=b"k=v")
        empty_post = Request(f"{server.url}/post", method="POST")
        injected = Request(f"{server.url}/x", headers={"X-Evil": "a\r\nX-Injected: 1"})
        for request in (post, empty_post, injected):
            assert (await handler.download_request(request)).status == 200
        host = server.url.split("//", 1)[1].encode()
        assert server.requests[0] == (
            b"GET /a/b;p?q=1&r=%20 HTTP/1.1\r\nHost: " + host + b"\r\nX-One: 1\r\n\r\n"
        )
        assert server.requests[1].endswith(b"\r\nContent-Length: 3\r\n\r\nk=v")
        assert server.requests[2].endswith(b"\r\nContent-Length: 0\r\n\r\n")
        assert b"\r\nX-Injected" not in server.requests[3]
        assert server.connections == 1  # one kept-alive connection for all four
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_pool_full_drops_the_longest_idle_connection(capture: Any) -> None:
    """With room for 2 idle connections, the third host's connection stays
    and the one idle the longest goes; a host's entry goes with its last
    connection (a list of a million hosts leaves nothing behind)."""
    servers = [await capture(lambda data: _ok()) for _ in range(3)]
    handler = _handler({"CONCURRENT_REQUESTS": 2})
    try:
        for server in servers:  # 0, 1, 2: the pool is full at 2; 0 goes
            assert (await handler.download_request(Request(f"{server.url}/"))).status == 200
        assert handler._idle_count == 2
        for server in (servers[2], servers[1], servers[0]):
            assert (await handler.download_request(Request(f"{server.url}/"))).status == 200
        assert [server.connections for server in servers] == [2, 1, 1]
        # Idle now: 1 and 0. A fourth host's connection pushes 1 out; then its
        # server closes it: the client forgets the connection and the host.
        closing = await capture(lambda data: _ok())
        closing.close_after_reply = True
        assert (await handler.download_request(Request(f"{closing.url}/"))).status == 200
        for _ in range(200):
            if handler._idle_count < 2:
                break
            await asyncio.sleep(0.01)
        port = int(servers[0].url.rsplit(":", 1)[1])
        assert list(handler._idle) == [("http", "127.0.0.1", port)]
        assert handler._idle_count == 1
    finally:
        await handler.close()
    assert not handler._idle
    assert handler._idle_count == 0


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_connections_not_reused(capture: Any) -> None:
    """Connection: close, HTTP/1.0 and HEAD responses end their connection."""
    answers = [
        _ok(extra=b"Connection: close\r\n"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",  # the HEAD
        _ok(),
    ]
    server = await capture(lambda data: answers[len(server.requests) - 1])
    handler = _handler()
    try:
        for method in ("GET", "GET", "GET", "HEAD", "GET"):
            response = await handler.download_request(Request(f"{server.url}/", method=method))
            assert response.status == 200
        assert response.protocol == "HTTP/1.1"
        # close, 1.0, (1.0 keep-alive reused by the HEAD), HEAD: 4 connections
        assert server.connections == 4
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_stale_connection_is_retried(capture: Any) -> None:
    """The server closes a kept-alive connection without saying so: the next
    request goes out again on a new connection."""
    server = await capture(lambda data: None if len(server.requests) == 2 else _ok())
    handler = _handler()
    try:
        assert (await handler.download_request(Request(f"{server.url}/1"))).status == 200
        assert (await handler.download_request(Request(f"{server.url}/2"))).status == 200
        assert server.connections == 2
        assert len(server.requests) == 3
        # Not for POST: the server may have acted on it.
        server.reply = lambda data: None
        with pytest.raises(DownloadFailedError) as info:
            await handler.download_request(Request(f"{server.url}/3", method="POST", body=b"x"))
        assert classify(info.value)[0] == "connection_lost"
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_read_until_close_and_interim(capture: Any) -> None:
    server = await capture(
        lambda data: (
            b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"
        )
    )
    server.close_after_reply = True
    handler = _handler()
    try:
        response = await handler.download_request(Request(f"{server.url}/"))
        assert response.status == 200
        assert b"X-Interim" not in response.headers
        assert isinstance(response, TextResponse)
        assert response.body == b"until close"
        assert response.flags == ["partial"]  # as the Twisted client
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_timeout(raw: RawServer) -> None:
    handler = _handler({"DOWNLOAD_TIMEOUT": 60})
    try:
        request = Request(f"{raw.url}/hang?timeout", meta={"download_timeout": 0.5})
        started = time.monotonic()
        with pytest.raises(DownloadTimeoutError) as info:
            await handler.download_request(request)
        assert 0.4 < time.monotonic() - started < 2
        assert "took longer than 0.5 seconds" in str(info.value)
        assert classify(info.value)[0] == "timeout"
        current = asyncio.current_task()
        assert current is not None
        assert current.cancelling() == 0
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_cancel_all_directly(raw: RawServer) -> None:
    handler = _handler()
    try:
        request = Request(f"{raw.url}/hang?direct", meta={"download_timeout": 30})
        download = asyncio.ensure_future(handler.download_request(request))
        await asyncio.sleep(0.3)
        assert not download.done()
        started = time.monotonic()
        assert handler.cancel_all() == 1
        assert handler.stopping
        with pytest.raises(DownloadCancelledError) as info:
            await asyncio.wait_for(download, 2)
        assert time.monotonic() - started < 1
        assert request.meta[CANCELLED_KEY] is True
        assert not download.cancelled()  # an exception, not a cancelled task
        assert download.cancelling() == 0  # type: ignore[attr-defined]
        assert classify(info.value, cancelled=True)[0] == "cancelled"
        assert handler.cancel_all() == 0

        late = Request(f"{raw.url}/ok?late")
        with pytest.raises(DownloadCancelledError):
            await handler.download_request(late)
        assert late.meta[NOT_ATTEMPTED_KEY] is True
        assert CANCELLED_KEY not in late.meta
        assert "/ok?late" not in raw.paths()
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_other_cancellations_propagate(raw: RawServer) -> None:
    """A cancellation that is not cancel_all()'s stays a cancellation."""
    handler = _handler()
    try:
        request = Request(f"{raw.url}/hang?other", meta={"download_timeout": 30})
        download = asyncio.ensure_future(handler.download_request(request))
        await asyncio.sleep(0.3)
        download.cancel()
        with pytest.raises(asyncio.CancelledError):
            await download
        assert CANCELLED_KEY not in request.meta
        assert not handler.stopping
        response = await handler.download_request(Request(f"{raw.url}/ok?after"))
        assert response.status == 200
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_dataloss(raw: RawServer) -> None:
    handler = _handler()
    try:
        with pytest.raises(ResponseDataLossError) as info:
            await handler.download_request(Request(f"{raw.url}/truncated?fail"))
        assert classify(info.value)[0] == "truncated"
        request = Request(f"{raw.url}/truncated", meta={"download_fail_on_dataloss": False})
        response = await handler.download_request(request)
        assert response.flags == ["dataloss"]
        assert response.body == TRUNCATED_BODY
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_maxsize_and_warnsize(
    site: DemoSite, raw: RawServer, caplog: pytest.LogCaptureFixture
) -> None:
    handler = _handler({"DOWNLOAD_WARNSIZE": 1000})
    try:
        request = Request(f"{site.url}/large?size=300000", meta={"download_maxsize": 100_000})
        with pytest.raises(DownloadCancelledError) as info:
            await handler.download_request(request)
        assert classify(info.value, maxsize=100_000)[0] == "too_large"
        assert "max size (100000)" in str(info.value)
        with pytest.raises(DownloadCancelledError, match="Expected to receive 99999999"):
            await handler.download_request(
                Request(f"{raw.url}/too-big", meta={"download_maxsize": 1000})
            )
        response = await handler.download_request(Request(f"{site.url}/large?size=5000"))
        assert len(response.body) == 5000
        assert "warn size (1000)" in caplog.text
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_signals(site: DemoSite) -> None:
    """headers_received and bytes_received, StopDownload included."""
    handler = _handler()
    crawler = handler.crawler
    seen: list[str] = []

    def on_headers(headers: Any, body_length: Any, request: Request, spider: Spider) -> None:
        seen.append(f"headers {body_length}")
        if "stop-headers" in request.url:
            raise StopDownload(fail=False)

    def on_bytes(data: bytes, request: Request, spider: Spider) -> None:
        seen.append("bytes")
        if "stop-bytes" in request.url:
            raise StopDownload(fail=True)

    crawler.signals.connect(on_headers, signals.headers_received)
    crawler.signals.connect(on_bytes, signals.bytes_received)
    try:
        response = await handler.download_request(Request(f"{site.url}/page/1?stop-headers"))
        assert response.flags == ["download_stopped"]
        assert response.body == b""
        assert seen == [f"headers {response.headers[b'Content-Length'].decode()}"]  # type: ignore[union-attr]
        with pytest.raises(StopDownload) as info:
            await handler.download_request(Request(f"{site.url}/page/1?stop-bytes"))
        assert info.value.response is not None
        assert info.value.response.body
        assert seen[-1] == "bytes"
    finally:
        crawler.signals.disconnect(on_headers, signals.headers_received)
        crawler.signals.disconnect(on_bytes, signals.bytes_received)
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_proxied_requests_use_the_twisted_client(raw: RawServer) -> None:
    """meta["proxy"] (HttpProxyMiddleware, from the environment too): the
    request goes through CancellableHTTP11DownloadHandler, created then."""
    handler = _handler()
    try:
        request = Request("http://proxied.test/ok?proxied", meta={"proxy": raw.url})
        response = await handler.download_request(request)
        assert response.status == 200
        assert b"Raw OK" in response.body
        assert "/ok?proxied" in raw.paths()  # asked to the proxy, in absolute form
        assert handler._fallback is not None
        assert handler.cancel_all() == 0
        assert handler._fallback.stopping
    finally:
        await handler.close()


def _server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, bytes]:
    """A TLS context with a new self-signed certificate for 127.0.0.1 (and
    the certificate, DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_https(capture: Any, tmp_path: Path) -> None:
    """Not verified by default (as Scrapy); DOWNLOAD_VERIFY_CERTIFICATES
    refuses a self-signed certificate (tls_error)."""
    context, der = _server_tls(tmp_path)
    server = await capture(lambda data: _ok(), context)
    handler = _handler()
    try:
        first = await handler.download_request(Request(f"{server.url}/a"))
        second = await handler.download_request(Request(f"{server.url}/b"))
        assert (first.status, second.status) == (200, 200)
        assert first.certificate == der
        assert server.connections == 1  # kept alive over TLS too
        assert server.requests[0].startswith(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:")
    finally:
        await handler.close()
    strict = _handler({"DOWNLOAD_VERIFY_CERTIFICATES": True})
    try:
        with pytest.raises(DownloadFailedError) as info:
            await strict.download_request(Request(f"{server.url}/c"))
        assert classify(info.value)[0] == "tls_error"
    finally:
        await strict.close()
