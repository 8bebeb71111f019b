"""CONCURRENT_REQUESTS_PER_DOMAIN holds at the server (PoliteDownloader)."""

from __future__ import annotations

import bisect
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from tests.crawl import crawl, write_list
from tests.support.servers import DemoSite

LATENCY = 0.02  # the latent_site fixture's


def _most_at_once(times: list[float]) -> int:
    """The most requests that arrived within less than the server's latency
    of each other: all of them were in flight together (each takes at least
    that long), so this is a lower bound of the real concurrency."""
    window = LATENCY * 0.95
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


async def _crawl(site: DemoSite, tmp_path: Path, settings: dict[str, Any]) -> list[float]:
    tag = uuid.uuid4().hex[:8]
    since = len(site.requests())
    urls = write_list(tmp_path / f"{tag}.txt", (f"{site.url}/page/{i}?{tag}" for i in range(300)))
    result = await crawl(
        urls, tmp_path, {"ROBOTSTXT_OBEY": False, **settings}, report=f"{tag}.jsonl"
    )
    assert {r["status"] for r in result.rows} == {200}
    times = sorted(r["monotonic"] for r in site.requests(since) if tag in r["path"])
    assert len(times) == 300
    return times


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_per_domain_concurrency_holds(latent_site: DemoSite, tmp_path: Path) -> None:
    """Per-domain 3 of 16: never more than 3 at the server at once, and the
    crawl takes as long as 3 at a time must (Scrapy 2.19's own downloader
    sent up to 16)."""
    settings = {"CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 3}
    times = await _crawl(latent_site, tmp_path, settings)
    assert _most_at_once(times) <= 3
    assert times[-1] - times[0] >= (300 / 3 - 1) * LATENCY
    # Not a limit that cannot be reached: 3 at once did happen.
    assert _most_at_once(times) == 3


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_total_concurrency_still_fills(latent_site: DemoSite, tmp_path: Path) -> None:
    """The fix costs no concurrency: per-domain 16 of 16 reaches 16 at once."""
    settings = {"CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16}
    times = await _crawl(latent_site, tmp_path, settings)
    assert 12 <= _most_at_once(times) <= 16
