"""Tests for the local servers: the demo site (subprocess) and RawServer."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scraper_project.demo.site import (
    LONG_TITLE,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    build_app,
    page_size,
)
from tests.support.rawserver import GARBAGE, MALFORMED, TRUNCATED_BODY, RawServer
from tests.support.servers import REPO_ROOT, DemoSite, demo_site, fetch

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "requests.jsonl"


@pytest.fixture(scope="module")
def site(log_path: Path) -> Iterator[DemoSite]:
    with demo_site(log_file=log_path) as running:
        yield running


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


def title_of(body: bytes, encoding: str = "utf-8") -> str:
    match = re.search(r"<title>(.*?)</title>", body.decode(encoding), re.S)
    assert match is not None
    return match.group(1)


def raw_exchange(url: str, path: str, timeout: float = 5.0) -> bytes:
    """Send a GET over a plain socket and read until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x.test\r\n\r\n".encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


# -- demo site ---------------------------------------------------------------


def test_serve_announces_url_and_index(site: DemoSite) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", site.url)
    result = site.get("/")
    assert result.status == 200
    assert result.headers["Content-Type"] == "text/html; charset=utf-8"
    assert title_of(result.body) == "scraper_project demo site"
    assert b'href="/page/1"' in result.body


@pytest.mark.parametrize("n", [0, 1, 7, 12345, 999_999])
def test_pages_are_deterministic_and_sized(site: DemoSite, n: int) -> None:
    first = site.get(f"/page/{n}")
    second = site.get(f"/page/{n}")
    assert first.status == 200
    assert first.body == second.body
    assert len(first.body) == page_size(n)
    assert 2048 <= len(first.body) <= 10240
    assert title_of(first.body) == f"Page {n}"
    head = site.get(f"/page/{n}", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(page_size(n))


@pytest.mark.parametrize("path", ["/page/-1", "/page/abc", "/page/", "/nope"])
def test_unknown_paths_are_404(site: DemoSite, path: str) -> None:
    result = site.get(path)
    assert result.status == 404
    assert title_of(result.body) == "Not found"


def test_status_codes(site: DemoSite) -> None:
    for code in (404, 418, 500, 503, 599):
        result = site.get(f"/status/{code}")
        assert result.status == code
        assert title_of(result.body) == f"Status {code}"
    no_content = site.get("/status/204")
    assert (no_content.status, no_content.body) == (204, b"")
    assert site.get("/status/100").status == 400
    assert site.get("/status/600").status == 400


def test_redirects(site: DemoSite) -> None:
    moved = site.get("/redirect?to=/page/3&code=301", follow_redirects=False)
    assert moved.status == 301
    assert moved.headers["Location"] == "/page/3"
    absolute = site.get("/redirect?to=http://b.test/x", follow_redirects=False)
    assert (absolute.status, absolute.headers["Location"]) == (302, "http://b.test/x")
    step = site.get("/redirect/chain/2", follow_redirects=False)
    assert step.headers["Location"] == "/redirect/chain/1"
    last = site.get("/redirect/chain/0", follow_redirects=False)
    assert last.headers["Location"] == "/page/0"
    followed = site.get("/redirect/chain/3")
    assert followed.url == site.url + "/page/0"
    assert title_of(followed.body) == "Page 0"
    assert site.get("/loop", follow_redirects=False).headers["Location"] == "/loop"
    a = site.get("/loop/a", follow_redirects=False)
    b = site.get("/loop/b", follow_redirects=False)
    assert (a.headers["Location"], b.headers["Location"]) == ("/loop/b", "/loop/a")


def test_charsets(site: DemoSite) -> None:
    latin1 = site.get("/charset/latin1")
    assert latin1.headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert "<title>Café crème</title>".encode("iso-8859-1") in latin1.body

    cp1251 = site.get("/charset/cp1251-meta")
    assert cp1251.headers["Content-Type"] == "text/html"
    assert b'<meta charset="windows-1251">' in cp1251.body
    assert title_of(cp1251.body, "cp1251") == "Привет мир"

    bom = site.get("/charset/utf8-bom")
    assert bom.headers["Content-Type"] == "text/html"
    assert bom.body.startswith(b"\xef\xbb\xbf")
    assert title_of(bom.body, "utf-8-sig") == "Grüße"

    wins = site.get("/charset/header-wins")
    assert wins.headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert b'<meta charset="utf-8">' in wins.body
    assert b"<title>Se\xf1or</title>" in wins.body

    utf16 = site.get("/charset/utf16")
    assert utf16.headers["Content-Type"] == "text/html"
    assert utf16.body.startswith(b"\xff\xfe")
    assert title_of(utf16.body, "utf-16") == "Ünïcödé"


def test_titles(site: DemoSite) -> None:
    decoys = site.get("/title/decoys").body.decode()
    order = [
        decoys.index("<!-- <title>Comment decoy</title> -->"),
        decoys.index('"<title>Script decoy</title>"'),
        decoys.index("<title> Real &amp; true\n   title </title>"),
        decoys.index("<svg"),
    ]
    assert order == sorted(order)
    assert decoys.index("</head>") < order[3]
    assert b"<title>" not in site.get("/title/none").body
    long_title = title_of(site.get("/title/long").body)
    assert long_title == LONG_TITLE
    assert len(long_title) == 5000
    control = title_of(site.get("/title/control").body)
    assert "\x01" in control
    assert "\x07" in control
    assert "\t" in control
    assert "\n" in control


def test_binary_json_empty_gzip(site: DemoSite) -> None:
    png = site.get("/binary/png")
    assert png.headers["Content-Type"] == "image/png"
    assert png.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.body.endswith(b"IEND\xaeB`\x82")
    pdf = site.get("/binary/pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.body.startswith(b"%PDF-1.4")
    assert pdf.body.rstrip().endswith(b"%%EOF")
    data = site.get("/json")
    assert data.headers["Content-Type"] == "application/json"
    assert json.loads(data.body)["ok"] is True
    empty = site.get("/empty")
    assert (empty.status, empty.body) == (200, b"")
    assert empty.headers["Content-Type"] == "text/html"
    zipped = site.get("/gzip")  # urllib does not decode Content-Encoding
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert title_of(gzip.decompress(zipped.body)) == "Gzipped"


def test_robots_private_headers(site: DemoSite) -> None:
    robots = site.get("/robots.txt")
    assert robots.body == b"User-agent: *\nDisallow: /private/\n"
    assert robots.headers["Content-Type"].startswith("text/plain")
    assert title_of(site.get("/private/x").body) == "Private"
    echoed = site.get("/headers", headers={"X-Probe": "42", "User-Agent": "probe/1"})
    assert echoed.headers["Content-Type"] == "application/json"
    fields = json.loads(echoed.body)
    assert fields["x-probe"] == "42"
    assert fields["user-agent"] == "probe/1"


def test_streaming_routes(site: DemoSite) -> None:
    large = site.get("/large?size=200000")
    assert len(large.body) == 200_000
    assert large.headers["Transfer-Encoding"] == "chunked"
    assert title_of(large.body[:200]) == "Large"
    assert large.body.endswith(b"</html>\n")
    assert len(site.get("/large?size=10").body) == 10

    started = time.monotonic()
    slow = site.get("/slow?delay=0.3")
    assert time.monotonic() - started >= 0.3
    assert title_of(slow.body) == "Slow"

    started = time.monotonic()
    drip = site.get("/drip?bytes=4&interval=0.05")
    assert time.monotonic() - started >= 0.2
    assert drip.headers["Content-Length"] == "4"
    assert drip.body == b"<!DO"
    assert site.get("/slow?delay=abc").status == 400


def _reads_until_close(sock: socket.socket, timeout: float) -> bool:
    """True if the peer closes within ``timeout``; False if it goes quiet."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def _log_paths(log_path: Path) -> list[str]:
    lines = log_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["path"] for line in lines]


@pytest.mark.parametrize("path", ["/hang", "/slow?delay=30", "/drip?bytes=100"])
def test_abandoned_requests_end_on_disconnect(site: DemoSite, log_path: Path, path: str) -> None:
    # A log-file line is written when the request handler finishes: it must
    # appear soon after the client hangs up, long before the route would end.
    marker = f"{path}{'&' if '?' in path else '?'}probe={time.monotonic_ns()}"
    host, port = site.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {marker} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
        assert not _reads_until_close(sock, 0.3)  # /drip sends a few bytes only
    deadline = time.monotonic() + 5
    while marker not in _log_paths(log_path):
        assert time.monotonic() < deadline, f"{path} still running after disconnect"
        time.sleep(0.05)


def test_fail_counters_and_reset(site: DemoSite) -> None:
    site.reset()
    url = "/fail/k1?times=2&status=503&retry_after=7"
    first = site.get(url)
    assert (first.status, first.headers["Retry-After"]) == (503, "7")
    assert site.get(url).status == 503
    recovered = site.get(url)
    assert recovered.status == 200
    assert title_of(recovered.body) == "Recovered k1"
    assert site.get("/fail/other?times=1&status=429").status == 429
    site.reset()
    assert site.get(url).status == 503


def test_request_log(site: DemoSite) -> None:
    site.reset()
    site.get("/page/5", headers={"Host": "a.test", "User-Agent": "ua-one"})
    site.get("/status/404?x=1", headers={"Host": "b.test", "User-Agent": "ua-two"})
    site.get("/page/6", method="HEAD")
    records = site.requests()
    assert [r["path"] for r in records] == ["/page/5", "/status/404?x=1", "/page/6"]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert [r["host"] for r in records[:2]] == ["a.test", "b.test"]
    assert [r["user_agent"] for r in records[:2]] == ["ua-one", "ua-two"]
    assert [r["status"] for r in records] == [200, 404, 200]
    assert [r["method"] for r in records] == ["GET", "GET", "HEAD"]
    assert records[0]["client"] == "127.0.0.1"
    assert records[0]["monotonic"] <= records[1]["monotonic"]
    assert abs(records[0]["time"] - time.time()) < 60
    assert [r["path"] for r in site.requests(since=2)] == ["/page/6"]
    assert site.stats()["total"] == 3  # /__ routes are never recorded


def test_urls_command() -> None:
    def run(*args: str) -> list[str]:
        command = [sys.executable, "-m", "scraper_project.demo", "urls", *args]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        return done.stdout.splitlines()

    base = "http://127.0.0.1:8000"
    assert run("--base", base + "/", "--count", "3") == [f"{base}/page/{n}" for n in range(3)]
    mixed = run("--base", base, "--mixed")
    assert any(line.startswith("#") for line in mixed)
    assert "" in mixed
    assert "ftp://example.invalid/x" in mixed
    assert "not a url" in mixed
    assert f"{base}/private/x" in mixed
    assert f"{base}/status/404" in mixed
    urls = [line for line in mixed if line.startswith(base)]
    assert len(urls) > len(set(urls))  # a duplicate line


def test_sigterm_with_request_in_flight_exits_quickly() -> None:
    with demo_site() as own:
        results: list[int] = []
        thread = threading.Thread(
            target=lambda: results.append(own.get("/hang", timeout=20).status)
        )
        thread.start()
        deadline = time.monotonic() + 5
        while not any(r["path"] == "/hang" for r in own.requests()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        started = time.monotonic()
        code = own.stop()
        assert time.monotonic() - started < 5
        assert code == 0
        thread.join(10)
        assert results == [503]  # /hang answers "Shutting down" on exit


def test_keep_alive_requests_are_fast(site: DemoSite) -> None:
    # Regression guard: without TCP_NODELAY each keep-alive request took ~40 ms.
    host, port = site.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        started = time.monotonic()
        for n in range(30):
            conn.request("GET", f"/page/{n}")
            response = conn.getresponse()
            assert len(response.read()) == page_size(n)
        assert time.monotonic() - started < 0.6
    finally:
        conn.close()


def _run_in_thread(fn: Callable[[], Any]) -> Any:
    # Sync tests share the thread with the Twisted/asyncio reactor's loop:
    # run private event loops in a helper thread instead.
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(30)
    assert result, "in-process ASGI call failed"
    return result[0]


def _asgi_get(app: ASGIApp, path: str) -> tuple[int, bytes]:
    async def call() -> tuple[int, bytes]:
        sent: list[Message] = []
        scope: Scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"c.test")],
            "client": ("127.0.0.1", 1234),
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return int(sent[0]["status"]), body

    result: tuple[int, bytes] = _run_in_thread(lambda: asyncio.run(call()))
    return result


def test_build_app_middleware_hook() -> None:
    def deny_13(inner: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/page/13":
                await send({"type": "http.response.start", "status": 429})
                await send({"type": "http.response.body", "body": b"slow down"})
                return
            await inner(scope, receive, send)

        return middleware

    app = build_app(middleware=deny_13)
    assert _asgi_get(app, "/page/13") == (429, b"slow down")
    status, body = _asgi_get(app, "/page/12")
    assert (status, len(body)) == (200, page_size(12))
    status, body = _asgi_get(app, "/__requests")  # outside the middleware
    assert status == 200
    records = json.loads(body)
    assert [(r["path"], r["status"]) for r in records] == [
        ("/page/13", 429),
        ("/page/12", 200),
    ]
    assert records[0]["host"] == "c.test"


# -- RawServer -----------------------------------------------------------------


def test_raw_ok(raw: RawServer) -> None:
    result = fetch(raw.url + "/ok")
    assert result.status == 200
    assert result.headers["Connection"] == "close"
    assert title_of(result.body) == "Raw OK"
    assert fetch(raw.url + "/missing").status == 404
    assert "/ok" in raw.paths()


def test_raw_truncated_malformed_garbage_close(raw: RawServer) -> None:
    truncated = raw_exchange(raw.url, "/truncated")
    head, _, body = truncated.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in head
    assert body == TRUNCATED_BODY
    assert len(body) == 20
    assert raw_exchange(raw.url, "/malformed") == MALFORMED
    garbage = raw_exchange(raw.url, "/garbage")
    assert garbage == GARBAGE
    assert not garbage.startswith(b"HTTP")
    assert raw_exchange(raw.url, "/close") == b""


def test_raw_reset(raw: RawServer) -> None:
    with pytest.raises(ConnectionResetError):
        raw_exchange(raw.url, "/reset")


def test_raw_hang_and_clean_shutdown() -> None:
    server = RawServer().start()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        started = time.monotonic()
        server.stop()  # closes the hung connection and joins the thread
        assert time.monotonic() - started < 5
        sock.settimeout(5)
        assert sock.recv(1) == b""
    assert server.paths() == ["/hang"]
    thread_name = f"RawServer-{id(server):x}"
    assert thread_name not in {t.name for t in threading.enumerate()}
