"""The adaptive mode of RateLimitMiddleware, driven directly (no crawl).

Settings validation, what each kind of answer does to a domain's learnt rate,
the retry middleware's feedback, the stats and the summary line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import UsageError
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scraper_project.middlewares.ratelimit import (
    SENT_KEY,
    RateLimitMiddleware,
    adaptive_config,
)
from scraper_project.middlewares.retry import BackoffRetryMiddleware
from scraper_project.observability.extension import SummaryExtension
from scraper_project.ratelimit import INF, AdaptiveBuckets
from scraper_project.settings import RETRY_EXCEPTIONS, RETRY_HTTP_CODES
from tests.crawl import run_cli, write_list
from tests.test_retry_middleware import BASE_SETTINGS

SETTINGS: dict[str, Any] = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_RATE": 0,
    "RATELIMIT_BURST": 1,
    "RATELIMIT_MAX_BUCKETS": 100,
    "RATELIMIT_GLOBAL_RATE": 0,
    "RATELIMIT_GLOBAL_BURST": 1,
    "RATELIMIT_BACKEND": "memory",
    "RATELIMIT_ADAPTIVE": True,
    "RATELIMIT_ADAPTIVE_START": 4.0,
    "RATELIMIT_ADAPTIVE_MIN": 0.5,
    "RATELIMIT_ADAPTIVE_MAX": 0,
    "RATELIMIT_ADAPTIVE_MAX_PAUSE": 60,
    "RATELIMIT_ADAPTIVE_LOG": True,
    "RATELIMIT_ADAPTIVE_REPORT_HOSTS": 2,
    "SCHEDULER": "scraper_project.scheduler.DelayingScheduler",
}


def make(**settings: Any) -> RateLimitMiddleware:
    crawler = get_crawler(Spider, {**SETTINGS, **settings})
    crawler.spider = crawler._create_spider("test")
    mw = RateLimitMiddleware.from_crawler(crawler)
    assert isinstance(mw.adaptive, AdaptiveBuckets)
    return mw


def sent(mw: RateLimitMiddleware, url: str = "http://a.test/") -> Request:
    request = Request(url, callback=lambda r: None)
    assert mw.process_request(request) is None  # unlimited: goes at once
    return request


def answer(request: Request, status: int = 200, **headers: str) -> Response:
    fields = {k.replace("_", "-"): v for k, v in headers.items()}
    return Response(request.url, status=status, headers=fields, request=request)


def stat(mw: RateLimitMiddleware, key: str) -> Any:
    return mw.stats.get_value(key)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RATELIMIT_ADAPTIVE": "maybe"}, "RATELIMIT_ADAPTIVE must be a boolean"),
        ({"RATELIMIT_ADAPTIVE_START": 0}, "RATELIMIT_ADAPTIVE_START must be > 0"),
        ({"RATELIMIT_ADAPTIVE_START": "fast"}, "RATELIMIT_ADAPTIVE_START must be a number"),
        ({"RATELIMIT_ADAPTIVE_MIN": 5, "RATELIMIT_ADAPTIVE_MAX": 2}, "must not exceed"),
        ({"RATELIMIT_ADAPTIVE_MAX_PAUSE": -1}, "RATELIMIT_ADAPTIVE_MAX_PAUSE must be"),
        ({"RATELIMIT_ADAPTIVE_REPORT_HOSTS": "ten"}, "RATELIMIT_ADAPTIVE_REPORT_HOSTS must be"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    crawler = get_crawler(Spider, {**SETTINGS, **settings})
    with pytest.raises(UsageError, match=message):
        RateLimitMiddleware.from_crawler(crawler)


def test_off_is_the_plain_limiter() -> None:
    crawler = get_crawler(Spider, {**SETTINGS, "RATELIMIT_ADAPTIVE": False})
    assert adaptive_config(crawler.settings) is None
    mw = RateLimitMiddleware.from_crawler(crawler)
    assert mw.adaptive is None


def test_a_429_cuts_once_per_epoch() -> None:
    mw = make()
    first, second = sent(mw), sent(mw)
    assert first.meta[SENT_KEY][:2] == (0, INF)
    mw.process_response(first, answer(first, 429))
    mw.process_response(second, answer(second, 429))  # sent before the cut
    assert stat(mw, "ratelimit/adaptive/throttles") == 2
    assert stat(mw, "ratelimit/adaptive/cuts") == 1
    assert stat(mw, "ratelimit/learnt/a.test") == 4.0
    # The next request waits for its token at the learnt rate.
    third = Request("http://a.test/3", callback=lambda r: None)
    mw.process_request(third)
    follow = Request("http://a.test/4", callback=lambda r: None)
    assert mw.process_request(follow) is follow  # parked
    assert stat(mw, "ratelimit/delayed") == 1


def test_a_request_that_left_in_a_bunch_teaches_nothing() -> None:
    mw = make()
    assert mw.adaptive is not None
    for rate in (INF, 20.0):  # leave slow start with a known limit
        _, epoch, _ = mw.adaptive.reserve("a.test")
        mw.adaptive.throttle("a.test", epoch, rate)
    mw.stats.set_value("ratelimit/adaptive/cuts", None)
    request = Request("http://a.test/", callback=lambda r: None)
    _, epoch, rate = mw.adaptive.reserve("a.test")
    request.meta[SENT_KEY] = (epoch, rate, True, False, "a.test")  # left in a bunch
    mw.process_response(request, answer(request, 429))
    assert stat(mw, "ratelimit/adaptive/bunched") == 1
    assert stat(mw, "ratelimit/adaptive/cuts") is None


def test_a_stated_quota_and_a_reset() -> None:
    mw = make()
    request = sent(mw)
    mw.process_response(request, answer(request, RateLimit_Policy='"p";q=10;w=1'))
    assert stat(mw, "ratelimit/adaptive/hints") == 1
    learnt = mw.adaptive.learnt("a.test") if mw.adaptive else None
    assert learnt is not None
    assert learnt.rate == pytest.approx(9.7)
    request = sent(mw, "http://b.test/")
    mw.process_response(request, answer(request, RateLimit='"p";r=0;t=5'))
    assert mw.adaptive is not None
    assert mw.adaptive.is_blocked("b.test")
    assert stat(mw, "ratelimit/adaptive/pauses") == 1


def test_a_retried_429_reaches_the_limiter_through_the_retry_middleware() -> None:
    mw = make()
    retry = BackoffRetryMiddleware(
        get_crawler(
            Spider,
            {
                **BASE_SETTINGS,
                "RETRY_HTTP_CODES": RETRY_HTTP_CODES,
                "RETRY_EXCEPTIONS": RETRY_EXCEPTIONS,
            },
        ).settings
    )
    retry.crawler = mw.crawler
    retry._ratelimit, retry._ratelimit_looked_up = mw, True  # no engine here
    request = sent(mw)
    new = retry.process_response(request, answer(request, 429, Retry_After="2"))
    assert isinstance(new, Request)  # retried: the answer stops there...
    assert stat(mw, "ratelimit/adaptive/cuts") == 1  # ...and the limiter learnt
    assert mw.adaptive is not None
    assert mw.adaptive.is_blocked("a.test")  # the domain waits for Retry-After


def test_the_most_throttled_domains_are_reported() -> None:
    mw = make()  # RATELIMIT_ADAPTIVE_REPORT_HOSTS = 2
    assert mw.adaptive is not None
    for host, times in (("a.test", 1), ("b.test", 1), ("c.test", 3)):
        for _ in range(times):
            request = Request(f"http://{host}/", callback=lambda r: None)
            _, epoch, rate = mw.adaptive.reserve(host)
            request.meta[SENT_KEY] = (epoch, rate, True, True, host)
            mw.process_response(request, answer(request, 503))
    learnt = {k: v for k, v in mw.stats.get_stats().items() if k.startswith("ratelimit/learnt/")}
    assert set(learnt) == {"ratelimit/learnt/b.test", "ratelimit/learnt/c.test"}
    summary = SummaryExtension(mw.crawler, mw.stats, "").summary(mw.stats.get_stats(), "finished")
    lines = [message % args for message, args in summary]
    assert any(line.startswith("Summary: learnt rates: c.test") for line in lines), lines


def test_a_bad_setting_stops_the_cli_with_exit_code_2(tmp_path: Path) -> None:
    urls = write_list(tmp_path / "u.txt", ["http://a.test/"])
    result = run_cli(
        ["crawl", "pages", "-a", f"urls={urls}", "-O", str(tmp_path / "r.csv"),
         "-s", "RATELIMIT_ADAPTIVE_MIN=-1"],
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert b"RATELIMIT_ADAPTIVE_MIN must be >= 0" in result.stderr
