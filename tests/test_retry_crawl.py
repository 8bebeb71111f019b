"""Retries in real crawls: attempts, backoff gaps and Retry-After, measured
from the server's request log."""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import pytest
import pytest_twisted

from tests.crawl import crawl, write_list
from tests.support.servers import DemoSite

NO_ROBOTS = {"ROBOTSTXT_OBEY": False, "RETRY_ENABLED": True}


def _attempts(site: DemoSite, since: int, key: str) -> list[float]:
    path = f"/fail/{key}"
    return sorted(r["time"] for r in site.requests(since) if r["path"].split("?")[0] == path)


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_fail_k_times_then_succeed(site: DemoSite, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    since = len(site.requests())
    max_retries = 3
    keys = {k: f"{run}-k{k}" for k in range(6)}
    urls = write_list(
        tmp_path / "u.txt", (f"{site.url}/fail/{key}?times={k}" for k, key in keys.items())
    )
    settings = {**NO_ROBOTS, "RETRY_TIMES": max_retries, "RETRY_BACKOFF_BASE": 0.1}
    result = await crawl(urls, tmp_path, settings)
    rows = {r["url"].split("/fail/")[1].split("?")[0]: r for r in result.rows}
    for k, key in keys.items():
        seen = _attempts(site, since, key)
        assert len(seen) == min(k, max_retries) + 1, (k, seen)
        row = rows[key]
        assert row["attempts"] == len(seen)
        if k <= max_retries:
            assert (row["status"], row["title"]) == (200, f"Recovered {key}")
        else:
            assert row["status"] == 503
    assert result.stats["retry/count"] == sum(min(k, max_retries) for k in keys)


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_backoff_gaps_grow_exponentially(site: DemoSite, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    since = len(site.requests())
    base, n = 0.2, 24
    keys = [f"{run}-{i}" for i in range(n)]
    urls = write_list(tmp_path / "u.txt", (f"{site.url}/fail/{key}?times=3" for key in keys))
    settings = {
        **NO_ROBOTS,
        "RETRY_TIMES": 3,
        "RETRY_BACKOFF_BASE": base,
        "RETRY_BACKOFF_MAX": 10,
        "RETRY_BUDGET_MIN": 1000,
        # The backoff alone: adaptive rates would also slow a host that
        # answers nothing but 503s (tests/test_adaptive_*.py).
        "RATELIMIT_ADAPTIVE": False,
    }
    await crawl(urls, tmp_path, settings)
    gaps: list[list[float]] = [[], [], []]
    for key in keys:
        seen = _attempts(site, since, key)
        assert len(seen) == 4
        for i in range(3):
            gap = seen[i + 1] - seen[i]
            # full jitter: within [0, base * 2**i], plus scheduling slack
            assert gap <= base * 2**i + 0.15, (key, i, gap)
            gaps[i].append(gap)
    means = [statistics.mean(g) for g in gaps]
    # expected means: base/2, base, 2*base
    assert means[0] < means[1] < means[2], means
    assert means[2] > 0.25


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_retry_after_is_honoured(site: DemoSite, tmp_path: Path) -> None:
    key = f"ra-{uuid.uuid4().hex[:8]}"
    since = len(site.requests())
    urls = write_list(
        tmp_path / "u.txt", [f"{site.url}/fail/{key}?times=1&status=503&retry_after=3"]
    )
    result = await crawl(urls, tmp_path, NO_ROBOTS)
    seen = _attempts(site, since, key)
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 3.0
    assert result.rows[0]["status"] == 200
    assert result.rows[0]["attempts"] == 2
    assert result.stats["retry/retry_after_honoured"] == 1


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_retry_after_too_long_gives_up_promptly(site: DemoSite, tmp_path: Path) -> None:
    key = f"day-{uuid.uuid4().hex[:8]}"
    urls = write_list(
        tmp_path / "u.txt", [f"{site.url}/fail/{key}?times=1&status=429&retry_after=86400"]
    )
    started = time.monotonic()
    result = await crawl(urls, tmp_path, NO_ROBOTS)
    assert time.monotonic() - started < 10
    assert result.rows[0]["status"] == 429
    assert result.rows[0]["attempts"] == 1
    assert result.stats["retry/retry_after_too_long"] == 1


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_429_retry_after_pauses_the_whole_domain(site: DemoSite, tmp_path: Path) -> None:
    key = f"pause-{uuid.uuid4().hex[:8]}"
    port = site.url.rsplit(":", 1)[1]
    since = len(site.requests())
    lines = [f"http://a.test:{port}/fail/{key}?times=1&status=429&retry_after=2"]
    lines += [f"http://a.test:{port}/page/{i}?{key}" for i in range(5)]
    urls = write_list(tmp_path / "u.txt", lines)
    # One request in the downloader at a time: the pause applies to requests
    # not yet handed to the downloader (not to those already in its queue).
    settings = {**NO_ROBOTS, "CONCURRENT_REQUESTS": 1}
    result = await crawl(urls, tmp_path, settings)
    first_429 = _attempts(site, since, key)[0]
    pages = sorted(r["time"] for r in site.requests(since) if r["path"].startswith("/page/"))
    assert len(pages) == 5
    # Everything sent after the 429 waited for the domain's pause to end.
    later = [t for t in pages if t > first_429]
    assert later
    assert min(later) - first_429 >= 1.9
    assert {r["status"] for r in result.rows} == {200}


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_backoff_holds_no_slot(latent_site: DemoSite, tmp_path: Path) -> None:
    """One URL backing off for 4 s beside 600 healthy URLs of another host:
    while it waits, the healthy ones use every slot.

    Four requests at once in all, 20 ms a page. The server counts the
    requests in progress as each one arrives: during the backoff host B's
    reach four at once, where a backoff holding a slot would cap them at
    three. Counted on the server, so a stall of a shared machine cannot make
    it pass or fail (it was a comparison of two crawls' speeds)."""
    site = latent_site
    port = site.url.rsplit(":", 1)[1]
    settings = {**NO_ROBOTS, "CONCURRENT_REQUESTS": 4, "CONCURRENT_REQUESTS_PER_DOMAIN": 4}
    tag = uuid.uuid4().hex[:8]
    since = len(site.requests())
    lines = [f"http://a.test:{port}/fail/{tag}?times=1&status=503&retry_after=4"]
    lines += [f"http://b.test:{port}/page/{i}?{tag}" for i in range(600)]
    urls = write_list(tmp_path / "urls.txt", lines)
    result = await crawl(urls, tmp_path, settings, report="report.jsonl")
    assert len(result.rows) == len(lines)
    # Seen once in a full-suite run: a row of status None. Name it.
    assert {r["status"] for r in result.rows} == {200}, [
        r for r in result.rows if r["status"] != 200
    ]
    requests = site.requests(since)
    fails = sorted(r["time"] for r in requests if r["path"].startswith("/fail/"))
    assert len(fails) == 2
    assert fails[1] - fails[0] >= 3.9  # the retry really waited
    during = [
        r for r in requests if r["path"].startswith("/page/") and fails[0] < r["time"] < fails[1]
    ]
    assert len(during) >= 50, len(during)  # B was crawled while the retry waited
    assert max(r["in_flight"] for r in during) == 4
