"""Response framing against a reference: h11's reading of the same bytes.

Hypothesis builds responses from every combination of HTTP/1.0 or 1.1,
interim 1xx responses, status 200/204/304/404, GET or HEAD, Content-Length
(right, short, long, invalid, duplicated), Transfer-Encoding (chunked in any
case, after other codings, not last, on two lines, with chunk extensions and
trailers), Connection, a body cut short or followed by extra bytes, and a
server that closes or keeps the connection. A real loopback server sends
those bytes to the real FastHTTPDownloadHandler (its _Connection and
response building), whose verdict -- status, body, flags (partial,
dataloss), error class, and whether the connection is reused (a second
request on it) -- must equal h11's reading of the same bytes, adjusted only
by the differences we choose, each named in :func:`expected`:

- TE: h11 accepts only a single ``Transfer-Encoding: chunked``; we follow
  RFC 9112 section 6.3 (chunked if it is the last coding, else read until
  close), as llhttp and browsers do.
- CL + TE, or TE in HTTP/1.0: h11 reuses the connection; we close it
  (RFC 9112 6.3: possible request smuggling).
- Duplicate equal Content-Length (two lines or ``3, 3``): h11 takes it
  (RFC 9110 8.6 allows both); llhttp rejects it: malformed_response.
- HEAD: we never reuse the connection (llhttp cannot be told that a HEAD
  response has no body, so parsing stops at its headers).
- HTTP/1.0 with ``Connection: keep-alive``: h11 never reuses an HTTP/1.0
  connection; we do, as browsers do, when the body is delimited.

And one place where h11 cannot decide (:attr:`Verdict.or_malformed`): the
connection ends inside a chunk-size or trailer line that h11 has not seen
the end of; llhttp may already have found a bad byte there.

The handler runs on an asyncio loop in a thread of its own (pytest-twisted's
reactor greenlet cannot be entered from a synchronous hypothesis test); it is
the same code as in a crawl, with no resolver needed for 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from scraper_project.errors import classify
from scraper_project.fasthttp import FastHTTPDownloadHandler

SECOND = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
STEP_TIMEOUT = 10.0  # seconds, any one exchange (a disagreement ends in a timeout)


# -- the responses ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    version: bytes  # b"1.0" / b"1.1"
    interim: tuple[int, ...]  # 1xx responses before the final one
    status: int
    method: str
    length: str  # how Content-Length is sent: see _length_lines
    codings: tuple[bytes, ...]  # Transfer-Encoding header lines (b"" = none)
    connection: bytes | None
    body: bytes
    chunks: tuple[int, ...]  # chunk sizes (chunked framing)
    extensions: bool  # chunk extensions and a trailer
    cut: int  # bytes cut from the end of the body part (0: none)
    extra: bytes  # bytes sent after the response
    server_closes: bool
    notes: tuple[str, ...] = field(default=())

    def wire(self) -> bytes:
        lines = [b"HTTP/%s %d %s" % (self.version, code, _REASONS.get(code, b"X"))
                 for code in self.interim]  # fmt: skip
        head = [b"HTTP/%s %d %s" % (self.version, self.status, _REASONS.get(self.status, b"X"))]
        head += [b"Content-Type: text/plain"]
        head += _length_lines(self.length, len(self.body))
        head += [b"Transfer-Encoding: " + coding for coding in self.codings]
        if self.connection is not None:
            head.append(b"Connection: " + self.connection)
        interim = b"".join(line + b"\r\n\r\n" for line in lines)
        body = self._chunked() if self.is_chunked_on_wire() else self.body
        if self.cut:
            body = body[: max(0, len(body) - self.cut)]
        return interim + b"\r\n".join(head) + b"\r\n\r\n" + body + self.extra

    def is_chunked_on_wire(self) -> bool:
        return bool(self.codings) and _last_coding(self.codings) == b"chunked"

    def _chunked(self) -> bytes:
        out, rest = [], self.body
        for size in self.chunks:
            if not rest:
                break
            piece, rest = rest[:size], rest[size:]
            ext = b";x=1" if self.extensions else b""
            out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
        if rest:
            out.append(b"%x\r\n%s\r\n" % (len(rest), rest))
        trailer = b"X-Trailer: 1\r\n" if self.extensions else b""
        return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


_REASONS = {100: b"Continue", 101: b"Switching", 103: b"Early Hints", 200: b"OK",
            204: b"No Content", 304: b"Not Modified", 404: b"Not Found"}  # fmt: skip


def _length_lines(length: str, size: int) -> list[bytes]:
    """Content-Length header lines: none, right, short/long by 3, invalid,
    or duplicated (equal or not)."""
    return {
        "none": [],
        "right": [b"Content-Length: %d" % size],
        "short": [b"Content-Length: %d" % max(0, size - 3)],
        "long": [b"Content-Length: %d" % (size + 3)],
        "invalid": [b"Content-Length: 1x"],
        "negative": [b"Content-Length: -1"],
        "twice-same": [b"Content-Length: %d" % size] * 2,
        "list-same": [b"Content-Length: %d, %d" % (size, size)],
        "twice-differ": [b"Content-Length: %d" % size, b"Content-Length: %d" % (size + 1)],
    }[length]


def _last_coding(lines: tuple[bytes, ...] | list[bytes]) -> bytes:
    codings = [c.strip().lower() for line in lines for c in line.split(b",") if c.strip()]
    return codings[-1] if codings else b""


CODINGS = st.sampled_from(
    [(), (b"chunked",), (b"Chunked",), (b"gzip, chunked",), (b"chunked, gzip",), (b"gzip",),
     (b"identity",), (b"gzip", b"chunked"), (b"chunked", b"gzip"), (b"chunked", b"chunked")]
)  # fmt: skip

cases = st.builds(
    Case,
    version=st.sampled_from([b"1.1", b"1.0"]),
    interim=st.sampled_from([(), (100,), (103, 100), (101,)]),
    status=st.sampled_from([200, 204, 304, 404]),
    method=st.sampled_from(["GET", "HEAD"]),
    length=st.sampled_from(
        [
            "none",
            "right",
            "short",
            "long",
            "invalid",
            "negative",
            "twice-same",
            "list-same",
            "twice-differ",
        ]
    ),
    codings=CODINGS,
    connection=st.sampled_from([None, b"close", b"keep-alive", b"Keep-Alive", b"TE, close"]),
    body=st.binary(max_size=40),
    chunks=st.lists(st.integers(1, 16), max_size=4).map(tuple),
    extensions=st.booleans(),
    cut=st.sampled_from([0, 0, 0, 1, 4]),
    extra=st.sampled_from([b"", b"", b"junk", b"HTTP/1.1 200 OK\r\n\r\n"]),
    server_closes=st.booleans(),
)


# -- h11's reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "response" or an error class
    status: int = 0
    body: bytes = b""
    flags: tuple[str, ...] = ()
    reused: bool = False
    # h11 saw the connection end inside a line it had not finished (it reads
    # a line only once complete): truncated, or malformed if llhttp found a
    # bad byte in the part it had. Either verdict is right then.
    or_malformed: bool = field(default=False, compare=False)

    def admits(self, other: Verdict) -> bool:
        return other == self or (self.or_malformed and other.outcome == "malformed_response")


def h11_reading(wire: bytes, method: str, *, server_closes: bool) -> tuple[Verdict, bool]:
    """h11's verdict on ``wire`` as the answer to ``method``, and whether the
    server closes (it does when told to, or when h11 wants more bytes: the
    message then ends with the connection)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/1", headers=[("Host", "127.0.0.1")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(wire)
    status, body, until_close, closed = 0, b"", False, False
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                assert not closed
                closed = True
                conn.receive_data(b"")
            elif isinstance(event, h11.Response):
                status = event.status_code
                until_close = _until_close(event, method)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return Verdict("connection_lost"), closed
    except h11.RemoteProtocolError as exc:
        if status and closed:  # the connection ended inside the body
            partial_line = "unexpectedly closed" in str(exc)
            return Verdict(
                "response", status, body, ("dataloss",), or_malformed=partial_line
            ), closed
        return Verdict("malformed_response"), closed or server_closes
    closed = closed or server_closes
    reusable = (
        not closed
        and conn.our_state is h11.DONE
        and conn.their_state is h11.DONE
        and conn.trailing_data == (b"", False)
    )
    flags = ("partial",) if until_close else ()
    return Verdict("response", status, body, flags, reusable), closed


def _until_close(response: h11.Response, method: str) -> bool:
    if method == "HEAD" or response.status_code in (204, 304):
        return False
    names = {name.lower() for name, _ in response.headers}
    return b"transfer-encoding" not in names and b"content-length" not in names


def expected(case: Case) -> tuple[Verdict, bool]:
    """h11's reading of ``case``, adjusted for the differences we choose
    (module docstring), and whether the server closes."""
    wire = case.wire()
    reading, closes = h11_reading(wire, case.method, server_closes=case.server_closes)
    if case.codings and not _h11_takes(case.codings):
        # RFC 9112 6.3 framing, which h11 refuses. Its other checks stand
        # (read as HEAD: the head alone, without Transfer-Encoding) ...
        reframed = _reframe(wire, replace(case, codings=()))
        head = reframed[: _head_length(reframed)]
        checked, _ = h11_reading(head, "HEAD", server_closes=True)
        if checked.outcome != "response":
            return checked, closes
        # ... then h11 reads the body with the framing it understands:
        # chunked, or none (until close).
        chunked = case.is_chunked_on_wire()
        plain = replace(
            case,
            codings=(b"chunked",) if chunked else (),
            length=case.length if chunked else "none",
        )
        reading, closes = h11_reading(
            _reframe(wire, plain), case.method, server_closes=case.server_closes
        )
    if reading.outcome == "response" and case.length.endswith("-same"):
        return Verdict("malformed_response"), closes  # llhttp: duplicate Content-Length
    if reading.outcome != "response":
        return reading, closes
    if case.version == b"1.0":
        # We keep an HTTP/1.0 connection that asks for it when nothing else
        # forbids it (h11 never does).
        reused = (
            _keeps_alive(case.connection)
            and not closes
            and case.method != "HEAD"
            and not case.codings
            and _h11_reusable_as_11(case)
        )
        return replace(reading, reused=reused), closes
    if case.method == "HEAD" or (case.codings and case.length != "none"):
        return replace(reading, reused=False), closes
    return reading, closes


def _h11_takes(codings: tuple[bytes, ...]) -> bool:
    return len(codings) == 1 and codings[0].strip().lower() == b"chunked"


def _keeps_alive(connection: bytes | None) -> bool:
    tokens = {t.strip().lower() for t in (connection or b"").split(b",")}
    return b"keep-alive" in tokens and b"close" not in tokens


def _h11_reusable_as_11(case: Case) -> bool:
    """Whether h11 would reuse the same exchange in HTTP/1.1."""
    eleven = replace(case, version=b"1.1")
    return h11_reading(eleven.wire(), case.method, server_closes=case.server_closes)[0].reused


def _reframe(wire: bytes, plain: Case) -> bytes:
    """``wire`` with its head's framing headers replaced by ``plain``'s."""
    head_end = wire.index(b"\r\n\r\n", _final_head_start(wire)) + 4
    return plain.wire()[: _head_length(plain.wire())] + wire[head_end:]


def _final_head_start(wire: bytes) -> int:
    start = 0
    while wire.startswith(b"HTTP/", start) and wire[start + 9 : start + 10] == b"1":
        start = wire.index(b"\r\n\r\n", start) + 4
    return start


def _head_length(wire: bytes) -> int:
    return wire.index(b"\r\n\r\n", _final_head_start(wire)) + 4


# -- the client's reading ------------------------------------------------------------------


class _Loop:
    """An asyncio loop in a thread, for the handler and the server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT * 3)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class _Server:
    """Answers ``/1`` with the case's bytes (then closes if told to), any
    other request with :data:`SECOND`."""

    def __init__(self) -> None:
        self.wire = b""
        self.closes = False
        self.seen: list[tuple[int, bytes]] = []  # (connection number, path)
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                self.seen.append((number, path))
                if path != b"/1":
                    writer.write(SECOND)
                    continue
                writer.write(self.wire)
                await writer.drain()
                if self.closes:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _crawler() -> Any:
    crawler = get_crawler(Spider, {"DOWNLOAD_TIMEOUT": STEP_TIMEOUT})
    crawler.spider = crawler._create_spider("framing")
    return crawler


async def client_reading(server: _Server, url: str, case: Case, crawler: Any) -> Verdict:
    handler = FastHTTPDownloadHandler(crawler)
    server.seen.clear()
    server.connections = 0
    try:
        meta = {"download_fail_on_dataloss": False}
        try:
            response = await handler.download_request(
                Request(f"{url}/1", method=case.method, meta=meta)
            )
        except Exception as exc:
            return Verdict(classify(exc)[0])
        reused = False
        if not server.closes:
            second = await handler.download_request(Request(f"{url}/2"))
            assert second.body == b"second"
            reused = (1, b"/2") in server.seen
        return Verdict("response", response.status, response.body, tuple(response.flags), reused)
    finally:
        await handler.close()


@pytest.fixture(scope="module")
def wire_loop() -> Iterator[tuple[_Loop, _Server, str, Any]]:
    loop = _Loop()
    server = _Server()
    url = loop.run(server.start())
    yield loop, server, url, _crawler()
    assert server.server is not None
    server.server.close()
    loop.stop()


# Examples that once showed a difference (kept as regression cases).
_CHUNKED_GZIP = Case(b"1.1", (), 200, "GET", "none", (b"chunked, gzip",), None, b"hello",
                     (2,), False, 0, b"", False)  # fmt: skip
_BOTH = Case(b"1.1", (), 200, "GET", "right", (b"chunked",), None, b"hello", (2,), False, 0,
             b"", False)  # fmt: skip


@pytest.mark.timeout(300)
@settings(
    max_examples=int(os.environ.get("FRAMING_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
@example(case=_CHUNKED_GZIP)
@example(case=_BOTH)
@example(case=replace(_BOTH, version=b"1.0", length="none", connection=b"keep-alive"))
@example(
    case=replace(_CHUNKED_GZIP, version=b"1.0", interim=(100,), codings=())
)  # lenient_keep_alive
def test_framing_agrees_with_h11(wire_loop: tuple[_Loop, _Server, str, Any], case: Case) -> None:
    loop, server, url, crawler = wire_loop
    want, closes = expected(case)
    server.wire = case.wire()
    server.closes = closes
    got = loop.run(client_reading(server, url, case, crawler))
    assert want.admits(got), f"wire: {case.wire()!r}\nclient: {got}\nh11: {want}"
