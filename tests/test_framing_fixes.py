"""HTTP-client fixes of issue #14: body framing by RFC 9112 section 6.3,
connections not reused after doubtful framing, a redirect to a host that
cannot exist reported as invalid_url."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from scrapy import Request

from scraper_project.errors import classify
from scraper_project.urls import InvalidURL
from tests.crawl import crawl, write_list
from tests.support.aio import in_task
from tests.support.rawserver import RawServer
from tests.test_fasthttp import FAST, _handler
from tests.test_fasthttp import capture as capture_fixture

capture = capture_fixture  # the fixture, under its name

CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_chunked_not_last_is_read_until_close(capture: Any) -> None:
    """Transfer-Encoding: chunked, gzip: the body is whatever comes until the
    server closes (a complete body, flagged partial as any read-until-close
    one), not a data loss. Here the raw bytes are chunked-looking: they are
    not decoded, as the last coding is not chunked."""
    server = await capture(
        lambda data: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" + CHUNKED_HELLO
    )
    server.close_after_reply = True
    handler = _handler()
    try:
        response = await handler.download_request(Request(f"{server.url}/a"))
        assert response.status == 200
        assert response.body == CHUNKED_HELLO
        assert response.flags == ["partial"]
        # The same codings on two header lines are one list (RFC 9110 5.3).
        server.reply = lambda data: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"
            b"Content-Length: 3\r\n\r\n" + CHUNKED_HELLO
        )
        response = await handler.download_request(Request(f"{server.url}/b"))
        assert (response.body, response.flags) == (CHUNKED_HELLO, ["partial"])
        # chunked last (after another coding, any case): chunked.
        server.reply = lambda data: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n" + CHUNKED_HELLO
        )
        response = await handler.download_request(Request(f"{server.url}/c"))
        assert (response.body, response.flags) == (b"hello", [])
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_doubtful_framing_does_not_reuse_the_connection(capture: Any) -> None:
    """Content-Length with chunked (chunked wins, as browsers and Twisted do)
    and Transfer-Encoding in HTTP/1.0 may be request smuggling: the body is
    read, the connection is closed (RFC 9112 section 6.3)."""
    answers = {
        b"/both": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"/http10": (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    }

    def reply(data: bytes) -> bytes:
        path = data.split(b" ", 2)[1]
        return answers[path] + CHUNKED_HELLO

    server = await capture(reply)
    handler = _handler()
    try:
        for path, connections in (("/both", 1), ("/both", 2), ("/http10", 3), ("/chunked", 4)):
            response = await handler.download_request(Request(f"{server.url}{path}"))
            assert (response.status, response.body, response.flags) == (200, b"hello", [])
            assert server.connections == connections, path
        # The plain chunked response's connection was kept and is reused.
        assert (await handler.download_request(Request(f"{server.url}/chunked"))).body == b"hello"
        assert server.connections == 4
    finally:
        await handler.close()


@pytest.mark.parametrize("host", ["a..b.test", "x" * 64 + ".test", ".lead.test"])
@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_host_that_cannot_exist_is_invalid_url(host: str) -> None:
    """An empty or over-long label: encode('idna') raised a bare UnicodeError."""
    handler = _handler()
    try:
        with pytest.raises(InvalidURL) as info:
            await handler.download_request(Request(f"http://{host}:8080/page"))
        assert classify(info.value) == (
            "invalid_url",
            f"invalid host {host!r} in http://{host}:8080/page: encoding with 'idna' codec "
            "failed (UnicodeError: label empty or too long)",
        )
    finally:
        await handler.close()


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_redirect_to_a_host_that_cannot_exist(tmp_path: Path) -> None:
    """A real crawl: the redirect is followed, and its target's row says
    invalid_url with the reason (not "error: UnicodeError")."""
    long_label = "x" * 64
    responses = {
        "/empty": b"HTTP/1.1 302 Found\r\nLocation: http://a..b/\r\nContent-Length: 0\r\n\r\n",
        "/long": (
            b"HTTP/1.1 301 Moved\r\nLocation: https://%s.example/x\r\nContent-Length: 0\r\n\r\n"
            % long_label.encode()
        ),
    }
    with RawServer(responses=responses) as raw:
        urls = [f"{raw.url}/empty", f"{raw.url}/long"]
        result = await crawl(write_list(tmp_path / "u.txt", urls), tmp_path, FAST)
    rows = {row["url"]: row for row in result.rows}
    assert set(rows) == set(urls)
    empty, long = rows[urls[0]], rows[urls[1]]
    assert empty["error"].startswith("invalid_url: invalid host 'a..b' in http://a..b/"), empty
    assert long["error"].startswith(
        f"invalid_url: invalid host '{long_label}.example' in https://{long_label}.example/x"
    ), long
    assert result.stats["report/error/invalid_url"] == 2
