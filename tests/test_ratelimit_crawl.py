"""Rate limiting in real crawls, measured from the server's timestamps."""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from scraper_project.middlewares.ratelimit import RateLimitMiddleware, parse_domains
from scraper_project.ratelimit import INF
from tests.crawl import crawl, write_list
from tests.support.servers import DemoSite, demo_site


def _port(site: DemoSite) -> str:
    return site.url.rsplit(":", 1)[1]


def _times(site: DemoSite, tag: str, since: int, host: str | None = None) -> list[float]:
    return sorted(
        r["time"]
        for r in site.requests(since)
        if tag in r["path"] and (host is None or (r["host"] or "").startswith(host))
    )


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


def _mean_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


NO_ROBOTS = {"ROBOTSTXT_OBEY": False}


def _rate_problems(times: list[float], count: int) -> list[str]:
    """What is wrong with 20/s, burst 1 pacing seen at the server (empty: ok)."""
    problems = []
    if len(times) != count:
        problems.append(f"{len(times)} requests, not {count}")
        return problems
    if abs(_mean_rate(times) - 20) > 0.4:  # within 2 %
        problems.append(f"mean rate {_mean_rate(times):.2f}")
    if _max_in_window(times) > 21:
        problems.append(f"{_max_in_window(times)} requests in one second")
    if times[2] - times[0] < 0.09:  # no burst at start: 2 intervals of 50 ms
        problems.append(f"burst at start: {times[2] - times[0]:.3f} s for 3 requests")
    return problems


# These measure the server's clock on a 2-core machine shared with the server
# and the test runner: a stall of the event loop shows up as a late request.
# A failed measurement is repeated once; the second must pass.
ATTEMPTS = 2


@pytest.mark.timeout(180)
@pytest_twisted.ensureDeferred
async def test_per_domain_rate_is_accurate(site: DemoSite, tmp_path: Path) -> None:
    for attempt in range(ATTEMPTS):
        tag = uuid.uuid4().hex[:8]
        since = len(site.requests())
        urls = write_list(
            tmp_path / f"u{attempt}.txt", (f"{site.url}/page/{i}?{tag}" for i in range(400))
        )
        result = await crawl(
            urls,
            tmp_path,
            {**NO_ROBOTS, "RATELIMIT_RATE": 20, "RATELIMIT_BURST": 1},
            report=f"r{attempt}.jsonl",
        )
        assert len(result.rows) == 400
        assert result.stats["ratelimit/delayed"] >= 390
        problems = _rate_problems(_times(site, tag, since), 400)
        if not problems:
            break
    assert problems == []


@pytest.mark.timeout(180)
@pytest_twisted.ensureDeferred
async def test_global_rate_over_four_hosts(site: DemoSite, tmp_path: Path) -> None:
    port = _port(site)
    hosts = ["a.test", "b.test", "c.test", "d.test"]
    for attempt in range(ATTEMPTS):
        tag = uuid.uuid4().hex[:8]
        since = len(site.requests())
        urls = write_list(
            tmp_path / f"u{attempt}.txt",
            (f"http://{hosts[i % 4]}:{port}/page/{i}?{tag}" for i in range(400)),
        )
        result = await crawl(
            urls, tmp_path, {**NO_ROBOTS, "RATELIMIT_GLOBAL_RATE": 20}, report=f"r{attempt}.jsonl"
        )
        assert {r["error"] for r in result.rows} == {""}
        problems = _rate_problems(_times(site, tag, since), 400)
        if not problems:
            break
    assert problems == []


@pytest.mark.timeout(180)
@pytest_twisted.ensureDeferred
async def test_slow_domain_does_not_starve_others(latent_site: DemoSite, tmp_path: Path) -> None:
    """Host A at 2 req/s, host B unlimited: B keeps (at least 90 % of) its
    speed when crawled together with A. B's speed is set by latency (20 ms a
    page, 8 at once: at most 400/s), so a starved B would show, CPU noise
    would not."""
    site = latent_site
    port = _port(site)
    n_b = 1500

    async def b_throughput(with_a: bool) -> float:
        tag = uuid.uuid4().hex[:8]
        since = len(site.requests())
        lines: list[str] = []
        for i in range(n_b):
            if with_a and i % 50 == 0:
                lines.append(f"http://a.test:{port}/page/{i}?{tag}")
            lines.append(f"http://b.test:{port}/page/{i}?{tag}")
        urls = write_list(tmp_path / f"{tag}.txt", lines)
        settings = {**NO_ROBOTS, "RATELIMIT_DOMAINS": {"a.test": 2}}
        await crawl(urls, tmp_path, settings, report=f"{tag}.jsonl")
        times = _times(site, tag, since, host="b.test")
        assert len(times) == n_b
        if with_a:
            a_times = _times(site, tag, since, host="a.test")
            assert len(a_times) == n_b // 50
            assert _max_in_window(a_times) <= 3
        return _mean_rate(times)

    # Rounds alternated, the best of each: both share two cores with the
    # server, and a single run varies by about 10 %; a third round only if
    # the first two disagree.
    alone, together = [], []
    for _ in range(3):
        alone.append(await b_throughput(with_a=False))
        together.append(await b_throughput(with_a=True))
        if len(alone) >= 2 and max(together) >= 0.9 * max(alone):
            break
    assert max(together) >= 0.9 * max(alone), (alone, together)


def _gaps(site: DemoSite, tag: str) -> list[float]:
    """Seconds between the server's arrivals of a crawl's requests."""
    times = _times(site, tag, 0)
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


@pytest.fixture
def limited_site() -> Iterator[DemoSite]:
    """A demo site that answers 429 + Retry-After beyond 5 requests/s, fresh
    for each test: the limit is per client IP, and a crawl run just before
    would leave the bucket empty."""
    with demo_site(args=["--rate-limit", "5", "--rate-burst", "1"]) as running:
        yield running


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_crawling_a_rate_limited_server(limited_site: DemoSite, tmp_path: Path) -> None:
    """End to end against the project's ASGI rate limiter: pacing below the
    server's limit gets no 429; no pacing gets 429 rows.

    The pace is half the server's limit: the server (GCRA, burst 1) refuses
    a request that comes less than 200 ms after the previous one's slot, so
    at 4/s a stall of over 50 ms of either process (a shared 2-core machine)
    made the next request early; at 2.5/s it takes a 200 ms stall."""
    tag = uuid.uuid4().hex[:8]
    urls = write_list(
        tmp_path / f"{tag}.txt", (f"{limited_site.url}/page/{i}?{tag}" for i in range(20))
    )
    paced = await crawl(
        urls, tmp_path, {**NO_ROBOTS, "RATELIMIT_RATE": 2.5}, report=f"{tag}-paced.jsonl"
    )
    assert len(paced.rows) == 20
    assert {r["status"] for r in paced.rows} == {200}, _gaps(limited_site, tag)
    urls = write_list(
        tmp_path / f"{tag}-x.txt", (f"{limited_site.url}/page/{i}?x{tag}" for i in range(30))
    )
    unpaced = await crawl(
        urls, tmp_path, {**NO_ROBOTS, "RATELIMIT_ADAPTIVE": False}, report=f"{tag}-unpaced.jsonl"
    )
    statuses = [r["status"] for r in unpaced.rows]
    assert statuses.count(429) >= 20
    assert len(statuses) == 30
    # The default, adaptive rates: only the first requests, sent before the
    # first 429 came back, are refused (no retries here).
    urls = write_list(
        tmp_path / f"{tag}-a.txt", (f"{limited_site.url}/page/{i}?a{tag}" for i in range(30))
    )
    adaptive = await crawl(urls, tmp_path, NO_ROBOTS, report=f"{tag}-adaptive.jsonl")
    statuses = [r["status"] for r in adaptive.rows]
    assert len(statuses) == 30
    assert statuses.count(429) <= 10, statuses


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_dont_ratelimit_and_disabled(site: DemoSite, tmp_path: Path) -> None:
    urls = write_list(tmp_path / "u.txt", (f"{site.url}/page/{i}?off" for i in range(20)))
    result = await crawl(
        urls, tmp_path, {**NO_ROBOTS, "RATELIMIT_ENABLED": False, "RATELIMIT_RATE": 1}
    )
    assert len(result.rows) == 20
    assert "ratelimit/delayed" not in result.stats


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"a.com": 2}, {"a.com": (2.0, 1)}),
        ({"a.com": [5, 3]}, {"a.com": (5.0, 3)}),
        ({"a.com": {"rate": 1.5, "burst": 2}}, {"a.com": (1.5, 2)}),
        ({"a.com": 0}, {"a.com": (INF, 1)}),
        ('{"a.com": 4}', {"a.com": (4.0, 1)}),
        ("", {}),
    ],
)
def test_parse_domains(raw: Any, expected: dict[str, tuple[float, int]]) -> None:
    assert parse_domains(raw, 1) == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RATELIMIT_RATE": "fast"}, "RATELIMIT_RATE must be a number"),
        ({"RATELIMIT_RATE": -1}, "RATELIMIT_RATE must be >= 0"),
        ({"RATELIMIT_BURST": 0}, "RATELIMIT_BURST must be an integer >= 1, got 0"),
        ({"RATELIMIT_DOMAINS": "{not json"}, "RATELIMIT_DOMAINS must be a JSON object"),
        ({"RATELIMIT_DOMAINS": {"a.com": "x"}}, "RATELIMIT_DOMAINS['a.com'] must be a number"),
        ({"RATELIMIT_GLOBAL_RATE": "nan"}, "RATELIMIT_GLOBAL_RATE must be >= 0"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    base = {
        "RATELIMIT_RATE": 0,
        "RATELIMIT_BURST": 1,
        "RATELIMIT_DOMAINS": {},
        "RATELIMIT_GLOBAL_RATE": 0,
        "RATELIMIT_GLOBAL_BURST": 1,
        "RATELIMIT_MAX_BUCKETS": 100,
    }
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RateLimitMiddleware.buckets_from_settings(Settings({**base, **settings}))
