"""The cluster mode: real redis-server, real worker processes, a real site.

Each test uses its own key prefix (PAGES_CLUSTER_KEY) on one redis-server,
and a demo site that answers every page 50 ms late. What the server saw
(paths, arrival times) is the evidence for "no URL fetched twice" and for the
cluster-wide rate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from scraper_project.cluster.frontier import Frontier
from tests.crawl import REPO_ROOT, read_report, run_cli, settings_args, write_list
from tests.support.redisserver import redis_server
from tests.support.servers import DemoSite, demo_site

LATENCY = 0.05


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def slow_site() -> Iterator[DemoSite]:
    with demo_site(args=["--latency", str(LATENCY)]) as site:
        yield site


@pytest.fixture
def key() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def cluster_args(redis_url: str, key: str, **settings: Any) -> list[str]:
    return settings_args(
        {
            "PAGES_REDIS_URL": redis_url,
            "PAGES_CLUSTER_KEY": key,
            "PAGES_CLUSTER_IDLE_CLOSE": 1,
            "PAGES_LOG_DUPLICATES": False,
            "LOG_LEVEL": "INFO",
            **settings,
        }
    )


class Worker:
    """``scrapy crawl pages`` in cluster mode, as a process."""

    def __init__(self, args: list[str], report: Path) -> None:
        self.report = report
        self.log = report.with_suffix(".log")
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "pages", "-O", str(report), *args],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 90) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def frontier(redis_url: str, key: str) -> Frontier:
    return Frontier(redis.Redis.from_url(redis_url), key)


def paths_seen(site: DemoSite, since: int, paths: set[str]) -> list[dict[str, Any]]:
    return [r for r in site.requests(since) if r["path"] in paths]


def run_workers(
    n: int,
    *,
    urls: Path,
    tmp_path: Path,
    redis_url: str,
    key: str,
    workers: list[Worker],
    **settings: Any,
) -> list[Worker]:
    """Start ``n`` workers (the first loads the list) and wait for them."""
    args = cluster_args(redis_url, key, **settings)
    batch = [Worker([*args, "-a", f"urls={urls}"], tmp_path / f"{key}-0.csv")]
    batch += [Worker(args, tmp_path / f"{key}-{i}.csv") for i in range(1, n)]
    workers.extend(batch)
    for worker in batch:
        assert worker.wait(120) == 0, worker.text()[-3000:]
    return batch


def rows_of(batch: list[Worker]) -> list[dict[str, Any]]:
    return [row for worker in batch for row in read_report(worker.report)]


def crawl_and_time(
    n: int,
    offset: int,
    *,
    slow_site: DemoSite,
    redis_url: str,
    tmp_path: Path,
    workers: list[Worker],
) -> float:
    """Crawl 2,000 fresh URLs with ``n`` workers; check every outcome; return
    the span between the first and the last request at the server."""
    paths = {f"/page/{offset + i}" for i in range(2000)}
    urls = write_list(tmp_path / f"urls-{offset}.txt", (slow_site.url + p for p in sorted(paths)))
    since = len(slow_site.requests())
    key = f"speed{offset}-{uuid.uuid4().hex[:8]}"
    # The workers that load nothing start first and wait until the loader
    # queues the list: what is timed is the crawl, not how late a second
    # process finished importing Scrapy on a busy machine. A placeholder
    # loader keeps them from closing (no work, no loader) meanwhile.
    args = cluster_args(redis_url, key)
    shared = frontier(redis_url, key)
    shared.touch_loader("test-hold", 120)
    batch = [Worker(args, tmp_path / f"{key}-{i}.csv") for i in range(1, n)]
    workers.extend(batch)
    deadline = time.monotonic() + 60
    while shared.status().workers < n - 1:
        assert time.monotonic() < deadline, [w.text()[-2000:] for w in batch]
        assert all(w.proc.poll() is None for w in batch), [w.text()[-2000:] for w in batch]
        time.sleep(0.05)
    loader = Worker([*args, "-a", f"urls={urls}"], tmp_path / f"{key}-0.csv")
    workers.append(loader)
    batch.insert(0, loader)
    while shared.status().stats.get("urls", 0) == 0:  # the real loader is at work
        assert time.monotonic() < deadline + 60, loader.text()[-2000:]
        assert loader.proc.poll() is None, loader.text()[-2000:]
        time.sleep(0.02)
    shared.loader_done("test-hold")
    for worker in batch:
        assert worker.wait(120) == 0, worker.text()[-3000:]
    seen = paths_seen(slow_site, since, paths)
    counts = Counter(r["path"] for r in seen)
    assert set(counts) == paths
    assert max(counts.values()) == 1, counts.most_common(3)  # no URL fetched twice
    rows = rows_of(batch)
    assert sorted(r["url"] for r in rows) == sorted(slow_site.url + p for p in paths)
    assert {r["status"] for r in rows} == {"200"}
    if n == 2:
        shares = [len(read_report(w.report)) for w in batch]
        assert min(shares) >= 500, shares  # both did real work
    times = sorted(r["monotonic"] for r in seen)
    return float(times[-1] - times[0])


@pytest.mark.timeout(420)
def test_two_workers_split_the_list_and_go_faster(
    slow_site: DemoSite, redis_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """2,000 URLs at 50 ms latency: one worker, then two on another copy of the
    list. Two: no URL fetched twice, one row per URL across the two reports,
    both workers busy, at least 1.8x the pages per second of one (first to
    last request at the server, best run of each). Rounds are repeated, up to
    three, while a busy machine spoils the measurement."""
    ones: list[float] = []
    twos: list[float] = []
    for attempt in range(3):
        base = attempt * 100_000
        for n, offset, times in ((1, 0, ones), (2, 10_000, twos)):
            times.append(
                crawl_and_time(
                    n,
                    base + offset,
                    slow_site=slow_site,
                    redis_url=redis_url,
                    tmp_path=tmp_path,
                    workers=workers,
                )
            )
        # Best of each: noise on a shared machine only ever adds time.
        speedup = min(ones) / min(twos)
        print(f"one worker {ones[-1]:.2f} s, two workers {twos[-1]:.2f} s; best: {speedup:.2f}x")
        if speedup >= 1.8:
            break
    assert min(ones) / min(twos) >= 1.8, (ones, twos)


@pytest.mark.timeout(120)
def test_a_waiting_worker_starts_on_new_work_at_once(
    site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """A worker with nothing to do fetches a URL queued by another process
    within 1.5 s, three times; its tick (flush, heartbeat) is set to 5 s, as
    is Scrapy's idle heartbeat, so only the 0.25 s look at the queue of an
    idle worker can do it."""
    args = cluster_args(redis_url, key, PAGES_CLUSTER_IDLE_CLOSE=30, PAGES_FLUSH_INTERVAL=5)
    worker = Worker(args, tmp_path / "waiting.csv")
    workers.append(worker)
    shared = frontier(redis_url, key)
    deadline = time.monotonic() + 60
    while shared.status().workers < 1:
        assert time.monotonic() < deadline, worker.text()[-2000:]
        assert worker.proc.poll() is None, worker.text()[-2000:]
        time.sleep(0.05)
    time.sleep(1)  # the worker has gone idle
    delays = []
    for i in range(3):
        path = f"/page/{i}?{key}"
        since = len(site.requests())
        loaded = time.time()
        shared.load(
            source=f"test-{i}",
            last_line=1,
            lines=1,
            urls=[(site.url + path, 1)],
            rows=[],
            loader="test",
            ttl=10,
        )
        shared.loader_done("test")
        while not [r for r in site.requests(since) if r["path"] == path]:
            assert time.time() - loaded < 10, worker.text()[-2000:]
            time.sleep(0.02)
        fetched = next(r["time"] for r in site.requests(since) if r["path"] == path)
        delays.append(fetched - loaded)
        time.sleep(0.6)  # idle again (a random phase of the 0.25 s poll)
    assert max(delays) < 1.5, delays
    worker.stop()


@pytest.mark.timeout(180)
def test_rate_limit_holds_for_the_whole_cluster(
    slow_site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """Two workers, RATELIMIT_RATE=20 (burst 1) for the one domain: together
    they send at most 20 per second (server arrival times), not 40."""
    rate, count = 20, 200
    paths = {f"/page/{50_000 + i}" for i in range(count)}
    urls = write_list(tmp_path / "urls.txt", (slow_site.url + p for p in sorted(paths)))
    since = len(slow_site.requests())
    batch = run_workers(
        2,
        urls=urls,
        tmp_path=tmp_path,
        redis_url=redis_url,
        key=key,
        workers=workers,
        RATELIMIT_RATE=rate,
        RATELIMIT_BURST=1,
    )
    assert len(rows_of(batch)) == count
    shares = [len(read_report(w.report)) for w in batch]
    assert min(shares) >= count // 5, shares  # both workers took part
    times = sorted(r["monotonic"] for r in paths_seen(slow_site, since, paths))
    assert len(times) == count
    mean_rate = (count - 1) / (times[-1] - times[0])
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    print(f"mean {mean_rate:.2f}/s, busiest second {busiest}")
    assert mean_rate <= rate * 1.05
    assert mean_rate >= rate * 0.8  # the limit is what binds, not something else
    assert busiest <= rate + 2  # burst 1, plus one stamped late by a stall


@pytest.mark.timeout(180)
def test_sigkill_loses_no_url(
    slow_site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """The loading worker is killed with SIGKILL mid-crawl: its leased URLs go
    back to the queue when its lease expires, the other worker finishes them,
    and the merged report has exactly one row per URL."""
    count = 1000
    paths = [f"/page/{60_000 + i}" for i in range(count)]
    urls = write_list(tmp_path / "urls.txt", (slow_site.url + p for p in paths))
    args = cluster_args(redis_url, key, PAGES_CLUSTER_LEASE_TTL=2, CONCURRENT_REQUESTS_PER_DOMAIN=4)
    victim = Worker([*args, "-a", f"urls={urls}"], tmp_path / "victim.csv")
    survivor = Worker(args, tmp_path / "survivor.csv")
    workers.extend([victim, survivor])
    shared = frontier(redis_url, key)
    deadline = time.monotonic() + 60
    while shared.status().stats.get("done", 0) < count // 5:  # well under way
        assert time.monotonic() < deadline, victim.text()[-2000:]
        assert victim.proc.poll() is None, victim.text()[-2000:]
        time.sleep(0.1)
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.wait(10)
    assert survivor.wait(120) == 0, survivor.text()[-3000:]
    status = shared.status()
    assert status.finished
    assert status.stats["reclaimed"] > 0  # the victim held URLs when it died
    merged = tmp_path / "merged.csv"
    result = run_cli(
        ["cluster", "merge", "-o", str(merged), str(victim.report), str(survivor.report)]
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = read_report(merged)
    assert sorted(r["url"] for r in rows) == sorted(slow_site.url + p for p in paths)
    assert all(r["status"] == "200" for r in rows)
    assert "Re-queued" in survivor.text()


@pytest.mark.timeout(180)
def test_stopped_workers_hand_back_and_a_reload_resumes(
    slow_site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """A loader stopped by its deadline mid-list (the queue is capped at 50)
    hands back its leased URLs, and its list's unread lines stay unread; the
    same command again resumes at the first line not loaded. Every line ends
    up in exactly one row, no URL twice, nothing fetched twice."""
    lines = [slow_site.url + f"/page/{70_000 + i}" for i in range(400)]
    lines[10] = "not a url"
    lines[20] = lines[19]  # a duplicate
    urls = write_list(tmp_path / "urls.txt", lines)
    since = len(slow_site.requests())
    args = cluster_args(
        redis_url, key, PAGES_CLUSTER_MAX_QUEUED=50, CONCURRENT_REQUESTS_PER_DOMAIN=2
    )
    first = Worker([*args, "-a", f"urls={urls}", "-a", "timeout=2"], tmp_path / "first.csv")
    workers.append(first)
    assert first.wait(60) == 3, first.text()[-3000:]  # stopped early (issue 15)
    shared = frontier(redis_url, key)
    after_first = shared.status()
    assert after_first.stats["lines"] < len(lines)  # stopped mid-list
    assert after_first.leased == 0  # nothing kept by the stopped worker
    assert after_first.stats.get("requeued", 0) > 0  # it handed back in-flight URLs
    second = Worker([*args, "-a", f"urls={urls}"], tmp_path / "second.csv")
    workers.append(second)
    assert second.wait(120) == 0, second.text()[-3000:]
    assert "resuming" in second.text()
    final = shared.status()
    assert final.finished
    assert final.stats["lines"] == len(lines)
    assert final.stats["duplicates"] == 1
    rows = read_report(first.report) + read_report(second.report)
    assert len(rows) == len(lines) - 1  # one row per distinct URL and bad line
    assert Counter(r["url"] for r in rows).most_common(1)[0][1] == 1
    assert sorted(int(r["line"]) for r in rows) == [i + 1 for i in range(400) if i != 20]
    assert [r["error"].split(":")[0] for r in rows if r["error"]] == ["invalid_url"]
    seen = Counter(r["path"] for r in slow_site.requests(since) if r["path"] != "/robots.txt")
    # Only downloads cancelled by the stop (handed back) were sent twice.
    twice = [path for path, n in seen.items() if n > 1]
    assert max(seen.values()) <= 2
    assert len(twice) <= after_first.stats["requeued"]


def test_unreachable_redis_is_a_usage_error(tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    result = run_cli(
        ["crawl", "pages", "-a", f"urls={urls}", "-O", str(tmp_path / "r.csv"),
         "-s", "PAGES_REDIS_URL=redis://user:secret@127.0.0.1:1/0"]
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "PAGES_REDIS_URL" in err
    assert "cannot reach Redis" in err
    assert "secret" not in err


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("PAGES_CLUSTER_KEY", "bad key", "PAGES_CLUSTER_KEY"),
        ("PAGES_CLUSTER_LEASE_TTL", "0.5", "PAGES_CLUSTER_LEASE_TTL"),
        ("RATELIMIT_BACKEND", "mongo", "RATELIMIT_BACKEND"),
    ],
)
def test_bad_cluster_settings(
    redis_url: str, tmp_path: Path, setting: str, value: str, message: str
) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    result = run_cli(
        ["crawl", "pages", "-a", f"urls={urls}", "-O", str(tmp_path / "r.csv"),
         "-s", f"PAGES_REDIS_URL={redis_url}", "-s", f"{setting}={value}"]
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert message in err
    assert value in err


def test_redis_ratelimit_needs_the_cluster(tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    result = run_cli(
        ["crawl", "pages", "-a", f"urls={urls}", "-O", str(tmp_path / "r.csv"),
         "-s", "RATELIMIT_BACKEND=redis"]
    )  # fmt: skip
    assert result.returncode == 2
    assert "PAGES_REDIS_URL" in result.stderr.decode()
