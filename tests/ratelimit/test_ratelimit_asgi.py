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


# -- RateLimit fields and the fixed window -----------------------------------


def fields(sent: list[Message]) -> tuple[bytes, bytes]:
    h = headers(sent)
    return h[b"ratelimit-policy"], h[b"ratelimit"]


def test_ratelimit_fields_on_every_response(run: Run, clock: FakeClock, inner: HelloApp) -> None:
    app = RateLimitMiddleware(inner, rate=5, burst=1, clock=clock)
    ok = request(run, app, http_scope())
    refused = request(run, app, http_scope())
    assert status(ok) == 200
    assert status(refused) == 429
    assert fields(ok)[0] == fields(refused)[0] == b'"default";q=5;w=1'
    # What a 5/s bucket still takes over the next second, evenly spaced.
    assert fields(ok)[1] == b'"default";r=5;t=1'
    assert headers(refused)[b"retry-after"] == b"1"


def test_policy_window_holds_a_whole_number_of_tokens(
    run: Run, clock: FakeClock, inner: HelloApp
) -> None:
    for rate, policy in [(2.5, b"q=5;w=2"), (0.5, b"q=1;w=2"), (50, b"q=50;w=1")]:
        app = RateLimitMiddleware(inner, rate=rate, burst=1, clock=clock)
        assert policy in fields(request(run, app, http_scope()))[0]


def test_fields_can_be_turned_off(run: Run, clock: FakeClock, inner: HelloApp) -> None:
    app = RateLimitMiddleware(inner, rate=5, burst=1, clock=clock, headers=False)
    assert b"ratelimit" not in headers(request(run, app, http_scope()))
    assert b"ratelimit" not in headers(request(run, app, http_scope()))


def test_fixed_window_counts_and_resets(run: Run, clock: FakeClock, inner: HelloApp) -> None:
    clock.set(100.25)
    app = RateLimitMiddleware(inner, rate=3, burst=1, clock=clock, algorithm="window")
    answers = [request(run, app, http_scope()) for _ in range(4)]
    assert [status(a) for a in answers] == [200, 200, 200, 429]
    assert [fields(a)[1] for a in answers] == [
        b'"default";r=2;t=1',
        b'"default";r=1;t=1',
        b'"default";r=0;t=1',
        b'"default";r=0;t=1',
    ]
    assert headers(answers[3])[b"retry-after"] == b"1"
    clock.set(101.0)  # the next window: a new quota, bursts allowed
    assert [status(request(run, app, http_scope())) for _ in range(3)] == [200, 200, 200]


def test_bad_algorithm_or_window() -> None:
    with pytest.raises(ValueError, match="algorithm must be"):
        RateLimitMiddleware(HelloApp(), 1, 1, algorithm="leaky")
    with pytest.raises(ValueError, match="window must be"):
        RateLimitMiddleware(HelloApp(), 1, 1, algorithm="window", window=0)
