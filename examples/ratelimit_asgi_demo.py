"""Demo: a hello-world ASGI app, rate-limited per client IP.

Run it (uvicorn is a project dependency)::

    python examples/ratelimit_asgi_demo.py --port 8000 --rate 5 --burst 2

then hit it faster than 5 requests per second::

    for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code} ' localhost:8000/; done

The first ``burst`` requests get 200, the next ones 429 with a ``Retry-After``
header until the client's bucket refills. ``/health`` is never limited.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from scraper_project.ratelimit.asgi import RateLimitMiddleware, Receive, Scope, Send


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest useful ASGI app: 200 "hello" for HTTP, ignore lifespan."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b"hello\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_app(
    rate: float, burst: int, clock: Callable[[], float] = time.monotonic
) -> RateLimitMiddleware:
    """The hello app behind the rate limiter."""
    return RateLimitMiddleware(hello_app, rate, burst, clock=clock, exempt_paths={"/health"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rate", type=float, default=5.0, help="requests/s per IP")
    parser.add_argument("--burst", type=int, default=2, help="burst per IP")
    args = parser.parse_args(argv)

    import uvicorn  # imported here so that the module imports without it

    uvicorn.run(build_app(args.rate, args.burst), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
