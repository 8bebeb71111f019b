"""The examples/ratelimit_* demos run (fake clock, no server, no sleeping)."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from scraper_project.ratelimit.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_demo_simulated_schedule(tmp_path: Path) -> None:
    requests = tmp_path / "requests.txt"
    requests.write_text("# comment\nGET /a\n\nGET /b\nGET /c\nGET /d\n")
    out = io.StringIO()
    demo = load("ratelimit_cli_demo")
    argv = [str(requests), "--rate", "2", "--burst", "2", "--simulate"]
    # main() calls asyncio.run(), which needs a thread without a running loop
    # (pytest-twisted's reactor loop is marked running in the main thread).
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(demo.main, argv, out).result(timeout=10) == 0
    lines = out.getvalue().splitlines()
    assert lines == [
        "  0.000s  GET /a",
        "  0.000s  GET /b",
        "  0.500s  GET /c",
        "  1.000s  GET /d",
        "4 calls",
    ]


def test_asgi_demo_app(run: Run) -> None:
    demo = load("ratelimit_asgi_demo")
    app = demo.build_app(rate=1, burst=1, clock=FakeClock())
    statuses = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "path": "/", "client": ("127.0.0.1", 5000), "headers": []}
    for _ in range(2):
        run(app(scope, receive, send))
    run(app({**scope, "path": "/health"}, receive, send))
    assert statuses == [200, 429, 200]
