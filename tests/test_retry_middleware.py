"""BackoffRetryMiddleware, driven directly with an injected clock and random source."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError, UsageError
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scraper_project.middlewares.retry import BackoffRetryMiddleware
from scraper_project.scheduler import NOT_BEFORE_KEY
from scraper_project.settings import RETRY_EXCEPTIONS, RETRY_HTTP_CODES

NOW = 1000.0
WALL = 1_445_412_470.0  # Wed, 21 Oct 2015 07:27:50 GMT

BASE_SETTINGS: dict[str, Any] = {
    "RETRY_TIMES": 2,
    "RETRY_HTTP_CODES": RETRY_HTTP_CODES,
    "RETRY_EXCEPTIONS": RETRY_EXCEPTIONS,
    "RETRY_BACKOFF_BASE": 2.0,
    "RETRY_BACKOFF_MAX": 30.0,
    "RETRY_AFTER_MAX": 60.0,
    "RETRY_BUDGET_MIN": 100,
    "RETRY_BUDGET_RATIO": 0.2,
}


def make(settings: dict[str, Any] | None = None, rand: float = 0.5) -> BackoffRetryMiddleware:
    crawler = get_crawler(Spider, {**BASE_SETTINGS, **(settings or {})})
    crawler.spider = crawler._create_spider("test")
    mw = BackoffRetryMiddleware(
        crawler.settings, rand=lambda: rand, clock=lambda: NOW, wall_clock=lambda: WALL
    )
    mw.crawler = crawler
    return mw


def response(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(request.url, status=status, headers=headers or {}, request=request)


# (status, retry_times so far, headers) -> expected not_before (None: no retry)
CASES = [
    (503, 0, {}, NOW + 1.0),  # retry 1: 2.0 * 2**0 * 0.5
    (500, 1, {}, NOW + 2.0),  # retry 2: 2.0 * 2**1 * 0.5
    (502, 2, {}, None),  # RETRY_TIMES reached: give up
    (429, 0, {"Retry-After": "3"}, NOW + 3.0),
    (503, 0, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, NOW + 10.0),
    (429, 0, {"Retry-After": "86400"}, None),  # longer than RETRY_AFTER_MAX
    (429, 0, {"Retry-After": "bogus"}, NOW + 1.0),  # unparseable: plain backoff
    (200, 0, {}, None),
    (404, 0, {}, None),
]


@pytest.mark.parametrize(("status", "retry_times", "headers", "not_before"), CASES)
def test_process_response(
    status: int, retry_times: int, headers: dict[str, str], not_before: float | None
) -> None:
    mw = make()
    request = Request("http://a.test/x", meta={"retry_times": retry_times} if retry_times else {})
    resp = response(request, status, headers)
    result = mw.process_response(request, resp)
    if not_before is None:
        assert result is resp
    else:
        assert isinstance(result, Request)
        assert result.meta["retry_times"] == retry_times + 1
        assert result.meta[NOT_BEFORE_KEY] == pytest.approx(not_before)
        assert result.dont_filter


def test_stats_of_a_run() -> None:
    mw = make()
    request = Request("http://a.test/x")
    mw.process_response(request, response(request, 429, {"Retry-After": "3"}))
    mw.process_response(request, response(request, 503, {}))
    mw.process_response(request, response(request, 429, {"Retry-After": "86400"}))
    stats = mw.stats.get_stats()
    assert stats["retry/count"] == 2
    assert stats["retry/retry_after_honoured"] == 1
    assert stats["retry/retry_after_too_long"] == 1
    assert stats["retry/gave_up"] == 1
    assert stats["retry/backoff_seconds"] == pytest.approx(4.0)


def test_dont_retry_meta() -> None:
    mw = make()
    request = Request("http://a.test/x", meta={"dont_retry": True})
    resp = response(request, 503)
    assert mw.process_response(request, resp) is resp


def test_max_retry_times_meta() -> None:
    mw = make()
    request = Request("http://a.test/x", meta={"max_retry_times": 5, "retry_times": 4})
    result = mw.process_response(request, response(request, 503))
    assert isinstance(result, Request)
    assert result.meta["retry_times"] == 5


@pytest.mark.parametrize(
    ("exception", "retried"),
    [
        (DownloadTimeoutError("slow"), True),
        (CannotResolveHostError("nx"), False),
        (ValueError("bug"), False),
    ],
)
def test_process_exception(exception: Exception, retried: bool) -> None:
    mw = make()
    request = Request("http://a.test/x")
    result = mw.process_exception(request, exception)
    if retried:
        assert isinstance(result, Request)
        assert result.meta[NOT_BEFORE_KEY] == pytest.approx(NOW + 1.0)
    else:
        assert result is None


def test_retry_budget_per_domain() -> None:
    mw = make({"RETRY_BUDGET_MIN": 1, "RETRY_BUDGET_RATIO": 0.5})
    retried = 0
    for i in range(10):
        request = Request(f"http://a.test/{i}")
        if isinstance(mw.process_response(request, response(request, 503)), Request):
            retried += 1
    # a retry is made while retries < 1 + 0.5 * attempts: 10 attempts -> 6
    assert retried == 6
    assert mw.stats.get_value("retry/budget_exhausted") == 4


def test_full_jitter_uses_the_random_source() -> None:
    request = Request("http://a.test/x", meta={"retry_times": 2, "max_retry_times": 5})
    delays = []
    for rand in (0.0, 0.25, 0.999):
        result = make(rand=rand).process_response(request, response(request, 503))
        assert isinstance(result, Request)
        delays.append(result.meta[NOT_BEFORE_KEY] - NOW)
    assert delays == pytest.approx([0.0, 2.0, 7.992])  # retry 3: up to 2.0 * 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RETRY_BACKOFF_BASE": "x"}, "RETRY_BACKOFF_BASE must be a number, got 'x'"),
        ({"RETRY_BACKOFF_MAX": -1}, "RETRY_BACKOFF_MAX must be >= 0, got -1"),
        ({"RETRY_AFTER_MAX": "nan"}, "RETRY_AFTER_MAX must be >= 0"),
        ({"RETRY_TIMES": "two"}, "RETRY_TIMES must be an integer >= 0, got 'two'"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    crawler = get_crawler(Spider, {**BASE_SETTINGS, **settings})
    with pytest.raises(UsageError, match=message):
        BackoffRetryMiddleware.config_from_settings(crawler.settings)
