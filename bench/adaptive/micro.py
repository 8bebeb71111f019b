"""The limiter's own cost per page, adaptive mode on and off (no network).

    python bench/adaptive/micro.py [--pages 200000] [--hosts 50] [--rounds 5]

Builds RateLimitMiddleware as a crawl does (``from_crawler``, the project's
settings, rate unset) and times ``process_request`` + ``process_response``
for each page: a GET to one of ``--hosts`` hosts, answered 200 with the
headers a typical server sends (no RateLimit fields). Both variants in
alternated rounds; reports the best round's microseconds per page, and that
cost as a share of the project's CPU per page (bench/speed: about 1.2 ms).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from scraper_project.middlewares.ratelimit import RateLimitMiddleware

HEADERS = {
    "Server": "nginx/1.22.1",
    "Date": "Thu, 03 Dec 2026 18:00:00 GMT",
    "Content-Type": "text/html",
    "Content-Length": "5120",
    "Last-Modified": "Thu, 03 Dec 2026 17:00:00 GMT",
    "Connection": "keep-alive",
    "ETag": '"6568b0c0-1400"',
    "Accept-Ranges": "bytes",
}


def build(adaptive: bool) -> RateLimitMiddleware:
    settings = get_project_settings().copy_to_dict()
    settings.update(RATELIMIT_ADAPTIVE=adaptive, RATELIMIT_RATE=0)
    crawler = get_crawler(Spider, settings)
    crawler.spider = crawler._create_spider("bench")

    def get_slot_key(request: Request) -> str:  # what Scrapy's downloader does
        return request.meta.get("download_slot") or urlparse_cached(request).hostname or ""

    crawler.engine = SimpleNamespace(downloader=SimpleNamespace(get_slot_key=get_slot_key))  # type: ignore[assignment]
    return RateLimitMiddleware.from_crawler(crawler)


def one_round(mw: RateLimitMiddleware, pages: int, hosts: int) -> float:
    def callback(response: Any) -> None:
        return None

    requests = [
        Request(f"http://host{i % hosts}.test/page/{i}", callback=callback) for i in range(pages)
    ]
    responses = [Response(r.url, status=200, headers=HEADERS, request=r) for r in requests]
    start = time.perf_counter()
    for request, response in zip(requests, responses, strict=True):
        mw.process_request(request)
        mw.process_response(request, response)
    return (time.perf_counter() - start) / pages * 1e6


def main() -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()  # the crawler checks for the configured reactor
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu-ms-per-page", type=float, default=1.18)
    args = parser.parse_args()
    best = {True: float("inf"), False: float("inf")}
    for _ in range(args.rounds):
        for adaptive in (True, False):
            best[adaptive] = min(best[adaptive], one_round(build(adaptive), args.pages, args.hosts))
    extra = best[True] - best[False]
    print(f"plain    {best[False]:6.2f} us/page")
    print(f"adaptive {best[True]:6.2f} us/page")
    print(
        f"adaptive costs {extra:.2f} us/page more: {extra / (args.cpu_ms_per_page * 10):.2f} % "
        f"of {args.cpu_ms_per_page} ms of CPU per page"
    )


if __name__ == "__main__":
    main()
