"""Bounded per-host memory: robots.txt parsers and cookie domains (LRU)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_twisted
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest, UsageError
from scrapy.http import Response
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from scraper_project.middlewares.bounded import (
    BoundedCookiesMiddleware,
    BoundedRobotsTxtMiddleware,
)
from tests.crawl import TEST_SETTINGS, crawl, write_list
from tests.support.aio import in_task
from tests.support.servers import DemoSite

ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def _robots_mw(
    limit: int, gate: asyncio.Event | None = None
) -> tuple[BoundedRobotsTxtMiddleware, list[str]]:
    """The middleware with an engine whose downloads answer ``ROBOTS`` (once
    ``gate`` is set, if given) and record the robots.txt URLs asked for."""
    crawler = get_crawler(Spider, {"ROBOTSTXT_OBEY": True, "ROBOTSTXT_MAX_HOSTS": limit})
    fetched: list[str] = []

    async def download_async(request: Request) -> Response:
        fetched.append(request.url)
        if gate is not None:
            await gate.wait()
        return Response(request.url, body=ROBOTS)

    crawler.engine = SimpleNamespace(download_async=download_async)  # type: ignore[assignment]
    return BoundedRobotsTxtMiddleware(crawler), fetched


async def _visit(mw: BoundedRobotsTxtMiddleware, host: str, path: str = "/") -> bool:
    """Whether robots.txt lets ``host``'s ``path`` through."""
    try:
        await mw.process_request(Request(f"http://{host}{path}"))
    except IgnoreRequest:
        return False
    return True


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
async def test_robots_keeps_the_most_recently_used_hosts() -> None:
    mw, fetched = _robots_mw(limit=3)
    for host in ("h0", "h1", "h2", "h0", "h3"):  # h0 used again: h1 is the oldest
        assert await _visit(mw, host)
    assert list(mw._parsers) == ["h2", "h0", "h3"]
    assert await _visit(mw, "h1")  # evicted: asked again, and h2 goes
    assert list(mw._parsers) == ["h0", "h3", "h1"]
    assert await _visit(mw, "h0")  # still there: not asked again
    assert fetched == [f"http://h{i}/robots.txt" for i in (0, 1, 2, 3, 1)]
    assert mw._stats.get_value("robotstxt/evicted") == 2
    # The rules still hold for a host asked again.
    assert not await _visit(mw, "h2", "/private/x")
    assert fetched[-1] == "http://h2/robots.txt"


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
async def test_robots_never_evicts_a_fetch_in_progress() -> None:
    from twisted.internet.defer import Deferred

    mw, _ = _robots_mw(limit=2)
    mw._parsers["slow"] = Deferred()  # a robots.txt fetch still running
    assert await _visit(mw, "h0")
    assert await _visit(mw, "h1")  # over the limit: h0 goes, not the fetch
    assert list(mw._parsers) == ["slow", "h1"]


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_robots_every_waiter_gets_the_rules() -> None:
    """Eight requests for a disallowed page while the host's robots.txt is
    still coming: all eight are refused. (Scrapy 2.19's own middleware let
    the third and later ones through, as if there were no robots.txt.)"""
    gate = asyncio.Event()
    mw, fetched = _robots_mw(limit=10, gate=gate)
    visits = [asyncio.ensure_future(_visit(mw, "h0", f"/private/{i}")) for i in range(8)]
    await asyncio.sleep(0.05)
    assert fetched == ["http://h0/robots.txt"]  # one fetch, seven waiters
    gate.set()
    assert await asyncio.gather(*visits) == [False] * 8


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_robots_limit_holds_after_many_fetches_at_once() -> None:
    """Eight hosts' robots.txt in flight at once with room for 3: over the
    limit while they run, back to 3 when they end, and it stays there."""
    gate = asyncio.Event()
    mw, _ = _robots_mw(limit=3, gate=gate)
    visits = [asyncio.ensure_future(_visit(mw, f"h{i}")) for i in range(8)]
    await asyncio.sleep(0.05)
    assert len(mw._parsers) == 8  # all in progress: none can go
    gate.set()
    assert await asyncio.gather(*visits) == [True] * 8
    assert len(mw._parsers) == 3
    for i in range(8, 40):
        assert await _visit(mw, f"h{i}")
        assert len(mw._parsers) == 3
    assert list(mw._parsers) == ["h37", "h38", "h39"]
    assert mw._stats.get_value("robotstxt/evicted") == 37


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
async def test_robots_zero_means_no_limit() -> None:
    mw, fetched = _robots_mw(limit=0)
    for i in range(50):
        assert await _visit(mw, f"h{i}")
    assert len(mw._parsers) == 50
    assert len(fetched) == 50


def _cookies_mw(limit: int) -> BoundedCookiesMiddleware:
    crawler = get_crawler(Spider, {"COOKIES_MAX_DOMAINS": limit})
    return BoundedCookiesMiddleware.from_crawler(crawler)


def _set(mw: BoundedCookiesMiddleware, url: str, *cookies: str, jar: Any = None) -> None:
    """A response from ``url`` setting ``cookies``."""
    request = Request(url, meta={"cookiejar": jar} if jar is not None else {})
    mw.process_request(request)
    mw.process_response(request, Response(url, headers={"Set-Cookie": list(cookies)}))


def _sent(mw: BoundedCookiesMiddleware, url: str, jar: Any = None) -> str:
    """The Cookie header a request to ``url`` would carry."""
    request = Request(url, meta={"cookiejar": jar} if jar is not None else {})
    mw.process_request(request)
    return (request.headers.get("Cookie") or b"").decode()


def test_cookies_keep_the_most_recently_used_domains() -> None:
    mw = _cookies_mw(limit=2)
    _set(mw, "http://a.test/", "a=1")
    _set(mw, "http://b.test/", "b=1")
    _set(mw, "http://a.test/x")  # a answers again (no new cookie): used last
    _set(mw, "http://c.test/", "c=1")  # over the limit: b, the oldest, goes
    assert _sent(mw, "http://a.test/") == "a=1"
    assert _sent(mw, "http://b.test/") == ""
    assert _sent(mw, "http://c.test/") == "c=1"
    assert mw.stats.get_value("cookies/evicted_domains") == 1
    assert len(mw._domains) == 2


def test_cookies_domain_cookies_and_dotless_hosts_are_evicted_too() -> None:
    mw = _cookies_mw(limit=2)
    # www.a.test sets a cookie for the whole of a.test, plus a host-only one.
    _set(mw, "http://www.a.test/", "wide=1; Domain=a.test", "own=1")
    assert _sent(mw, "http://shop.a.test/") == "wide=1"
    _set(mw, "http://localhost/", "local=1")  # http.cookiejar files it under localhost.local
    assert _sent(mw, "http://localhost/") == "local=1"
    _set(mw, "http://b.test/", "b=1")
    _set(mw, "http://c.test/", "c=1")
    for url in ("http://www.a.test/", "http://shop.a.test/", "http://localhost/"):
        assert _sent(mw, url) == "", url
    stored = mw.jars[None].jar._cookies  # type: ignore[attr-defined]
    assert set(stored) == {"b.test", "c.test"}
    assert mw.stats.get_value("cookies/evicted_domains") == 3


def test_cookies_of_ipv6_and_dotless_domains_are_tracked() -> None:
    mw = _cookies_mw(limit=1)
    _set(mw, "http://[::1]:8080/", "v6=1")  # filed under "[::1].local"
    _set(mw, "http://intranet/", "wide=1; Domain=intranet.local")  # ".intranet.local"
    assert _sent(mw, "http://intranet/") == "wide=1"
    _set(mw, "http://a.test/", "a=1")
    stored = mw.jars[None].jar._cookies  # type: ignore[attr-defined]
    assert set(stored) == {"a.test"}
    assert mw.stats.get_value("cookies/evicted_domains") == 2


def test_cookies_untracked_domains_are_swept() -> None:
    """A domain stored by a rule ``_touch`` does not foresee is dropped once
    the jar holds twice the limit: the bound holds whatever happens."""
    mw = _cookies_mw(limit=2)
    _set(mw, "http://a.test/", "a=1")
    stored = mw.jars[None].jar._cookies  # type: ignore[attr-defined]
    for i in range(4):
        stored[f"stray{i}.test"] = {}
    _set(mw, "http://b.test/", "b=1")
    assert set(stored) == {"a.test", "b.test"}
    assert mw.stats.get_value("cookies/evicted_domains") == 4


def test_cookies_limit_spans_jars_and_zero_means_no_limit() -> None:
    mw = _cookies_mw(limit=1)
    _set(mw, "http://a.test/", "a=1", jar="one")
    _set(mw, "http://a.test/", "a=2", jar="two")
    assert _sent(mw, "http://a.test/", jar="one") == ""
    assert _sent(mw, "http://a.test/", jar="two") == "a=2"
    unbounded = _cookies_mw(limit=0)
    for i in range(100):
        _set(unbounded, f"http://h{i}.test/", f"c{i}=1")
    assert _sent(unbounded, "http://h0.test/") == "c0=1"
    assert not unbounded._domains  # nothing tracked: no cost when off


@pytest.mark.parametrize("name", ["ROBOTSTXT_MAX_HOSTS", "COOKIES_MAX_DOMAINS"])
@pytest.mark.parametrize("value", [-1, "many", 2.5])
def test_bad_limits_name_the_setting(name: str, value: Any) -> None:
    crawler = get_crawler(Spider, {"ROBOTSTXT_OBEY": True, name: value})
    build = (
        BoundedRobotsTxtMiddleware
        if name.startswith("ROBOTS")
        else BoundedCookiesMiddleware.from_crawler
    )
    with pytest.raises(UsageError, match=f"{name} must be an integer >= 0.*{value!r}"):
        build(crawler)


def test_project_uses_the_bounded_middlewares() -> None:
    middlewares = get_project_settings().getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] is None
    assert middlewares["scrapy.downloadermiddlewares.cookies.CookiesMiddleware"] is None
    assert middlewares["scraper_project.middlewares.bounded.BoundedRobotsTxtMiddleware"] == 100
    assert middlewares["scraper_project.middlewares.bounded.BoundedCookiesMiddleware"] == 700


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_crawl_of_many_hosts_keeps_few_parsers_and_obeys_every_robots_txt(
    site: DemoSite, tmp_path: Path
) -> None:
    """40 hosts, a page and three disallowed pages each, at most 5 parsers kept:
    every disallowed page is still refused, every page fetched, and every
    robots.txt the crawl asked for reached the server."""
    port = site.url.rsplit(":", 1)[1]
    hosts = [f"h{i}.test" for i in range(40)]
    private = ("private/x", "private/y", "private/z")  # waiters beyond the second
    lines = [f"http://{h}:{port}/{p}" for h in hosts for p in ("page/1", *private)]
    since = len(site.requests())
    settings = {
        "ROBOTSTXT_OBEY": True,
        "ROBOTSTXT_MAX_HOSTS": 5,
        "RESOLVE_HOSTS": {**TEST_SETTINGS["RESOLVE_HOSTS"], **dict.fromkeys(hosts, "127.0.0.1")},
    }
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    by_url = {r["url"]: r for r in result.rows}
    assert len(by_url) == len(lines)
    for host in hosts:
        assert by_url[f"http://{host}:{port}/page/1"]["status"] == 200
        for path in private:
            row = by_url[f"http://{host}:{port}/{path}"]
            assert row["error"].startswith("robots_forbidden:"), row
    robots = [r for r in site.requests(since) if r["path"] == "/robots.txt"]
    assert len(robots) == result.stats["robotstxt/request_count"] >= len(hosts)
    assert not [r for r in site.requests(since) if r["path"].startswith("/private/")]
    assert result.crawler is not None
    mw = next(
        m
        for m in result.crawler.engine.downloader.middleware.middlewares
        if isinstance(m, BoundedRobotsTxtMiddleware)
    )
    assert len(mw._parsers) <= 5
    assert result.stats["robotstxt/evicted"] >= len(hosts) - 5
