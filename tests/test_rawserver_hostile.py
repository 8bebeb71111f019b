"""The hostile endpoints of :class:`tests.support.rawserver.RawServer`.

Raw sockets with short timeouts: only the status line, the headers and the
first bytes are looked at; bombs are decompressed a few MiB at most.
"""

from __future__ import annotations

import socket
import struct
import time
import zlib
from collections.abc import Iterator

import brotli
import pytest
import zstandard

from tests.support.rawserver import (
    BOMB_ENCODINGS,
    BOMB_SIZE,
    DRIP_DECLARED,
    HUGE_HEADER_COUNT,
    HUGE_HEADER_LINE,
    HUGE_HEADERS_BODY,
    RawServer,
)

pytestmark = pytest.mark.timeout(60)

PEEK = 4 * 1024 * 1024  # decompressed bytes checked per bomb


@pytest.fixture
def server() -> Iterator[RawServer]:
    """A private server: these tests look at its connections and stop it."""
    with RawServer() as running:
        yield running


def _connect(server: RawServer, path: str, method: str = "GET") -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode("ascii"))
    return sock


def _read_head(sock: socket.socket, limit: int = 1024 * 1024) -> tuple[list[bytes], bytes]:
    """Header lines (status line first) and the body bytes already received."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed inside the headers: {data[-200:]!r}"
        data += chunk
        assert len(data) < limit
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), rest


def _read_exactly(sock: socket.socket, data: bytes, size: int) -> bytes:
    while len(data) < size:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def _headers(lines: list[bytes]) -> dict[str, str]:
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.decode("latin-1").partition(":") for line in lines[1:])
    }


def _fetch(server: RawServer, path: str) -> tuple[list[bytes], bytes]:
    with _connect(server, path) as sock:
        lines, rest = _read_head(sock)
        length = int(_headers(lines)["content-length"])
        body = _read_exactly(sock, rest, length)
        assert sock.recv(1) == b""  # Connection: close, nothing after the body
    return lines, body


def _zlib_peek(body: bytes, wbits: int) -> tuple[bytes, int]:
    """The first PEEK decompressed bytes, and the total decompressed size."""
    decompressor = zlib.decompressobj(wbits)
    first = decompressor.decompress(body, PEEK)
    total = len(first)
    while decompressor.unconsumed_tail:
        total += len(decompressor.decompress(decompressor.unconsumed_tail, PEEK))
    total += len(decompressor.flush())
    assert decompressor.eof
    return first, total


@pytest.mark.parametrize("name", sorted(BOMB_ENCODINGS))
def test_bomb(server: RawServer, name: str) -> None:
    lines, body = _fetch(server, f"/bomb/{name}")
    assert lines[0] == b"HTTP/1.1 200 OK"
    headers = _headers(lines)
    assert headers["content-encoding"] == BOMB_ENCODINGS[name]
    assert headers["content-type"] == "text/html"
    assert len(body) < 200_000  # a bomb: tiny on the wire
    if name == "gzip":
        first, total = _zlib_peek(body, 31)
        assert total == BOMB_SIZE
    elif name == "deflate":
        assert body[0] == 0x78  # zlib header, not raw deflate
        first, total = _zlib_peek(body, 15)
        assert total == BOMB_SIZE
    elif name == "nested":  # "gzip, gzip": undo the last one applied first
        inner = zlib.decompress(body, 31)
        assert inner[:2] == b"\x1f\x8b"
        first, total = _zlib_peek(inner, 31)
        assert total == BOMB_SIZE
    elif name == "br":
        first = brotli.Decompressor().process(body, output_buffer_limit=PEEK)
    else:
        assert name == "zstd"
        with zstandard.ZstdDecompressor().stream_reader(body) as reader:
            first = reader.read(PEEK)
    assert len(first) >= PEEK
    assert first.count(0) == len(first)


def test_bomb_head(server: RawServer) -> None:
    with _connect(server, "/bomb/br", method="HEAD") as sock:
        lines, rest = _read_head(sock)
        assert rest == b""
        assert sock.recv(1) == b""
    assert _headers(lines)["content-encoding"] == "br"


def test_huge_headers(server: RawServer) -> None:
    lines, body = _fetch(server, "/huge-headers")
    assert lines[0] == b"HTTP/1.1 200 OK"
    fillers = [line for line in lines if line.startswith(b"X-Filler-")]
    assert len(fillers) == HUGE_HEADER_COUNT
    assert {len(line) + 2 for line in fillers} == {HUGE_HEADER_LINE}
    assert body == HUGE_HEADERS_BODY


def _wait_idle(server: RawServer, timeout: float = 2.0) -> float:
    """Seconds until the server has no connection handler left."""
    start = time.monotonic()
    while server._tasks:
        assert time.monotonic() - start < timeout, "handler still running"
        time.sleep(0.01)
    return time.monotonic() - start


def _unchunk(data: bytes) -> tuple[list[bytes], bool]:
    """Complete chunks in ``data`` and whether the last (0) chunk was seen."""
    chunks: list[bytes] = []
    while b"\r\n" in data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks, True
        if len(rest) < size + 2:
            break
        assert rest[size : size + 2] == b"\r\n"
        chunks.append(rest[:size])
        data = rest[size + 2 :]
    return chunks, False


def test_endless(server: RawServer) -> None:
    with _connect(server, "/endless") as sock:
        lines, data = _read_head(sock)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            data += sock.recv(65536)
        assert len(server._tasks) == 1
    assert lines[0] == b"HTTP/1.1 200 OK"
    headers = _headers(lines)
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    chunks, ended = _unchunk(data)
    assert not ended
    assert chunks[0].startswith(b"<!DOCTYPE html>")
    assert b"<title>Endless</title>" in chunks[0]
    assert len(chunks) >= 5  # one every 10 ms
    assert _wait_idle(server) < 1.0  # the client closed: the server noticed


def test_slow_drip(server: RawServer) -> None:
    with _connect(server, "/slow-drip") as sock:
        lines, body = _read_head(sock)
        body = _read_exactly(sock, body, 1)
        started = time.monotonic()
        body = _read_exactly(sock, body, 2)
        waited = time.monotonic() - started
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert _headers(lines)["content-length"] == str(DRIP_DECLARED)
    assert body == b"<!"
    assert 0.5 < waited < 2.0  # one byte a second
    assert _wait_idle(server) < 1.0


def test_header_drip(server: RawServer) -> None:
    with _connect(server, "/header-drip") as sock:
        data = b""
        while data.count(b"\r\n") < 2:
            data += sock.recv(65536)
        started = time.monotonic()
        while data.count(b"\r\n") < 3:
            data += sock.recv(65536)
        waited = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 200 OK\r\nX-Drip-0: 0\r\nX-Drip-1: 1\r\n")
    assert b"\r\n\r\n" not in data
    assert 0.5 < waited < 2.0  # one line a second
    assert _wait_idle(server) < 1.0


def test_client_reset_ends_slow_endpoints(server: RawServer) -> None:
    for path in ("/endless", "/slow-drip", "/header-drip"):
        sock = _connect(server, path)
        assert sock.recv(10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        assert _wait_idle(server) < 1.0, path


def _closed_by_server(sock: socket.socket) -> bool:
    """Read to the end: True on EOF or a reset (False: still open after 2 s)."""
    sock.settimeout(2)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_stop_is_prompt_with_slow_clients() -> None:
    server = RawServer().start()
    socks = [
        _connect(server, path)
        for path in ("/endless", "/slow-drip", "/header-drip", "/hang", "/bomb/gzip")
    ]
    try:
        for sock in socks[:3]:
            assert sock.recv(10)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        paths = server.paths()
        for sock in socks:
            assert _closed_by_server(sock), (socks.index(sock), paths)
    finally:
        for sock in socks:
            sock.close()
