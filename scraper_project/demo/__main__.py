"""Command line for the demo site.

``python -m scraper_project.demo serve [--host H] [--port P] [--log-file F]``
prints one line ``http://HOST:PORT`` once listening, then serves until
SIGINT/SIGTERM (exit status 0).

``python -m scraper_project.demo urls --base URL [--count N] [--mixed]``
writes a URL list to stdout.

``python -m scraper_project.demo run [-O report.csv] [SCRAPY ARGS...]`` is the
quick start: it starts the demo site, writes ``demo-urls.txt`` (the mixed
list plus some pages), runs ``scrapy crawl pages -a urls=demo-urls.txt -O
report.csv`` against it and stops the site. Works without internet access.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from scraper_project.demo.serve import serve
from scraper_project.demo.site import DEFAULT_MAX_RECORDS, build_app
from scraper_project.demo.urls import mixed_lines, page_urls
from scraper_project.ratelimit.asgi import ASGIApp, RateLimitMiddleware


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scraper_project.demo", description="scraper_project demo site"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="serve the demo site")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p_serve.add_argument("--log-file", help="append one JSON line per request")
    p_serve.add_argument(
        "--rate-limit",
        type=float,
        default=0.0,
        help="answer 429 + Retry-After beyond this many requests/s per client IP (0: off)",
    )
    p_serve.add_argument("--rate-burst", type=int, default=1, help="burst for --rate-limit")
    p_serve.add_argument(
        "--rate-algorithm",
        choices=["gcra", "window"],
        default="gcra",
        help="token bucket (gcra: --rate-burst at once) or requests per fixed 1 s window",
    )
    p_serve.add_argument(
        "--no-rate-headers",
        dest="rate_headers",
        action="store_false",
        help="bare 429s: no RateLimit/RateLimit-Policy fields on responses",
    )
    p_serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="answer every page this many seconds late (robots.txt at once)",
    )
    p_serve.add_argument(
        "--max-records",
        type=int,
        default=DEFAULT_MAX_RECORDS,
        help="requests kept in memory for /__requests (default %(default)s)",
    )

    p_urls = sub.add_parser("urls", help="write a URL list to stdout")
    p_urls.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8000")
    p_urls.add_argument("--count", type=int, default=None, help="write /page/0..N-1 (default 100)")
    p_urls.add_argument("--mixed", action="store_true", help="write the demonstration mixed list")
    p_run = sub.add_parser(
        "run", help="start the site and crawl it: the quick start", add_help=True
    )
    p_run.add_argument("-O", dest="output", default="report.csv", help="report file")
    p_run.add_argument("--list", default="demo-urls.txt", help="URL list to write")
    p_run.add_argument("--pages", type=int, default=50, help="extra /page/N URLs")
    p_run.add_argument("scrapy_args", nargs=argparse.REMAINDER, help="more scrapy crawl args")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    site = subprocess.Popen(
        [sys.executable, "-m", "scraper_project.demo", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert site.stdout is not None
        base = site.stdout.readline().strip()
        if not base.startswith("http://"):
            print("demo site failed to start", file=sys.stderr)
            return 1
        with open(args.list, "w", encoding="utf-8") as out:
            out.write("\n".join(mixed_lines(base)) + "\n")
            out.write("\n".join(page_urls(base, args.pages)) + "\n")
        print(f"demo site at {base}; URL list written to {args.list}", file=sys.stderr)
        command = [
            sys.executable, "-m", "scrapy", "crawl", "pages",
            "-a", f"urls={args.list}", "-O", args.output,
            *[a for a in args.scrapy_args if a != "--"],
        ]  # fmt: skip
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "scraper_project.settings"}
        code = subprocess.call(command, env=env)
        if code == 0:
            print(f"report written to {args.output}", file=sys.stderr)
        return code
    finally:
        site.terminate()
        try:
            site.wait(timeout=10)
        except subprocess.TimeoutExpired:
            site.kill()
            site.wait()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Only reached before uvicorn installs its own handlers (during start-up)
    # or after it restored ours: exit quietly with status 0.
    raise SystemExit(0)


def _announce(url: str) -> None:
    sys.stdout.write(url + "\n")
    sys.stdout.flush()


class _Latency:
    """Delay every response but robots.txt (a server far away)."""

    def __init__(self, app: ASGIApp, delay: float) -> None:
        self.app = app
        self.delay = delay

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") != "/robots.txt":
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def _cmd_serve(args: argparse.Namespace) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_on_signal)
    layers: list[Callable[[ASGIApp], ASGIApp]] = []
    if args.rate_limit > 0:
        rate, burst = args.rate_limit, args.rate_burst
        algorithm, headers = args.rate_algorithm, args.rate_headers
        layers.append(
            lambda inner: RateLimitMiddleware(
                inner,
                rate,
                burst,
                exempt_paths={"/robots.txt"},
                algorithm=algorithm,
                headers=headers,
            )
        )
    if args.latency > 0:
        delay = args.latency
        layers.append(lambda inner: _Latency(inner, delay))

    def middleware(inner: ASGIApp) -> ASGIApp:
        for layer in layers:
            inner = layer(inner)
        return inner

    app = build_app(log_file=args.log_file, max_records=args.max_records, middleware=middleware)
    try:
        asyncio.run(
            serve(
                app,
                args.host,
                args.port,
                on_ready=_announce,
                on_shutdown=app.begin_shutdown,
            )
        )
    finally:
        app.state.close()
    return 0


def _cmd_urls(args: argparse.Namespace) -> int:
    try:
        _write_urls(args)
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _write_urls(args: argparse.Namespace) -> None:
    out = sys.stdout
    if args.mixed:
        out.write("\n".join(mixed_lines(args.base)) + "\n")
    count = args.count if args.count is not None else (0 if args.mixed else 100)
    batch: list[str] = []
    for url in page_urls(args.base, count):
        batch.append(url)
        if len(batch) >= 10_000:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _cmd_serve(args)
    if args.command == "run":
        return _cmd_run(args)
    return _cmd_urls(args)


if __name__ == "__main__":
    sys.exit(main())
