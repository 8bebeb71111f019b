"""RateLimitMiddleware, driven directly with fake receive/send (no server)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from scraper_project.ratelimit.asgi import RateLimitMiddleware, client_ip
from scraper_project.ratelimit.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]
Message = dict[str, Any]


class HelloApp:
    """A tiny ASGI app that records the scopes it sees."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append(scope["type"])
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})


def http_scope(ip: str | None = "10.0.0.1", path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "client": None if ip is None else (ip, 40000),
    }


def request(run: Run, app: RateLimitMiddleware, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    run(app(scope, receive, send))
    return sent


def status(sent: list[Message]) -> int:
    return int(sent[0]["status"])


def headers(sent: list[Message]) -> dict[bytes, bytes]:
    return dict(sent[0]["headers"])


@pytest.fixture
def inner() -> HelloApp:
    return HelloApp()


def test_passes_through_then_429(run: Run, clock: FakeClock, inner: HelloApp) -> None:
    app = RateLimitMiddleware(inner, rate=2, burst=2, clock=clock)
    assert status(request(run, app, http_scope())) == 200
    sent = request(run, app, http_scope())
    assert status(sent) == 200
    assert sent[1]["body"] == b"hello"

    sent = request(run, app, http_scope())
    assert status(sent) == 429
    assert headers(sent)[b"retry-after"] == b"1"  # 0.5 s, rounded up
    assert headers(sent)[b"content-type"].startswith(b"text/plain")
    assert sent[1]["type"] == "http.response.body"
    assert b"Too Many Requests" in sent[1]["body"]
    assert headers(sent)[b"content-length"] == str(len(sent[1]["body"])).encode()
    assert inner.calls == ["http", "http"]  # the app never saw the third

    clock.advance(0.5)
    assert status(request(run, app, http_scope())) == 200


def test_retry_after_rounds_up_whole_seconds(run: Run, clock: FakeClock) -> None:
    app = RateLimitMiddleware(HelloApp(), rate=0.4, burst=1, clock=clock)
    request(run, app, http_scope())
    assert headers(request(run, app, http_scope()))[b"retry-after"] == b"3"  # 2.5 s
    clock.advance(2.0)
    assert headers(request(run, app, http_scope()))[b"retry-after"] == b"1"  # 0.5 s


def test_per_ip_independence(run: Run, clock: FakeClock) -> None:
    app = RateLimitMiddleware(HelloApp(), rate=1, burst=1, clock=clock)
    assert status(request(run, app, http_scope("10.0.0.1"))) == 200
    assert status(request(run, app, http_scope("10.0.0.1"))) == 429
    assert status(request(run, app, http_scope("10.0.0.2"))) == 200
    assert status(request(run, app, http_scope("::1"))) == 200
    assert len(app.buckets) == 3


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_non_http_scopes_pass_through(
    run: Run, clock: FakeClock, inner: HelloApp, scope_type: str
) -> None:
    app = RateLimitMiddleware(inner, rate=1, burst=1, clock=clock)
    for _ in range(5):
        request(run, app, {"type": scope_type, "client": ("10.0.0.1", 1)})
    assert inner.calls == [scope_type] * 5
    assert len(app.buckets) == 0


def test_exempt_paths(run: Run, clock: FakeClock) -> None:
    app = RateLimitMiddleware(HelloApp(), rate=1, burst=1, clock=clock, exempt_paths=["/health"])
    for _ in range(5):
        assert status(request(run, app, http_scope(path="/health"))) == 200
    assert status(request(run, app, http_scope(path="/"))) == 200
    assert status(request(run, app, http_scope(path="/"))) == 429


def test_no_client_is_not_limited(run: Run, clock: FakeClock) -> None:
    app = RateLimitMiddleware(HelloApp(), rate=1, burst=1, clock=clock)
    for _ in range(3):
        assert status(request(run, app, http_scope(ip=None))) == 200
    assert client_ip({"type": "http"}) is None


def test_custom_key_and_bounded_keys(run: Run, clock: FakeClock) -> None:
    def by_header(scope: Any) -> str | None:
        return dict(scope["headers"]).get(b"x-api-key", b"").decode() or None

    app = RateLimitMiddleware(HelloApp(), rate=1, burst=1, clock=clock, key=by_header, max_keys=10)
    for i in range(100):
        scope = http_scope()
        scope["headers"] = [(b"x-api-key", f"k{i}".encode())]
        assert status(request(run, app, scope)) == 200
    assert len(app.buckets) == 10
