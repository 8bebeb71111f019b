"""The command-line contract in cluster mode (issue 15, item 10): a re-run of
a finished list, idle close on time, no deprecation warnings; a real
redis-server, real worker processes, the demo site."""

# ruff: noqa: F811

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.crawl import read_report, run_cli, write_list
from tests.support.servers import DemoSite

# The cluster tests' fixtures (a redis-server per module, workers stopped by
# PID), imported: their names are the test functions' parameters.
from tests.test_cluster import Worker, cluster_args, frontier, redis_url, workers  # noqa: F401


@pytest.fixture
def key() -> str:
    return f"cli{uuid.uuid4().hex[:10]}"


@pytest.mark.timeout(240)
def test_a_finished_list_is_refused_until_the_crawl_is_reset(
    site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """Loading the same list again is exit 2 at once, with a message saying
    how to start afresh, and the report of that run is left as it was; after
    ``scrapy cluster reset`` the same command crawls the list again."""
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?{key}" for i in range(5)])
    args = [*cluster_args(redis_url, key, PAGES_CLUSTER_IDLE_CLOSE=0.5), "-a", f"urls={urls}"]
    first = Worker(args, tmp_path / "first.csv")
    workers.append(first)
    assert first.wait(90) == 0, first.text()[-3000:]
    assert len(read_report(first.report)) == 5

    again = tmp_path / "again.csv"
    again.write_text("kept\n")
    started = time.monotonic()
    rerun = Worker(args, again)
    workers.append(rerun)
    assert rerun.wait(90) == 2, rerun.text()[-3000:]
    assert time.monotonic() - started < 30  # at once, not after an idle wait
    log = rerun.text()
    assert "this list was loaded completely into the cluster crawl" in log
    assert "scrapy cluster reset" in log
    assert "'finish_reason': 'input_error'" in log
    assert again.read_text() == "kept\n"

    reset = run_cli(["cluster", "reset", *cluster_args(redis_url, key)])
    assert reset.returncode == 0, reset.stderr.decode()
    fresh = Worker(args, tmp_path / "fresh.csv")
    workers.append(fresh)
    assert fresh.wait(90) == 0, fresh.text()[-3000:]
    assert sorted(r["title"] for r in read_report(fresh.report)) == [f"Page {i}" for i in range(5)]


@pytest.mark.timeout(240)
def test_a_list_with_nothing_new_is_refused(
    site: DemoSite, redis_url: str, key: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """Another file holding only URLs the crawl has done: exit 2, not an
    empty report and exit 0."""
    lines = [f"{site.url}/page/{i}?{key}" for i in range(3)]
    args = cluster_args(redis_url, key, PAGES_CLUSTER_IDLE_CLOSE=0.5)
    first = Worker(
        [*args, "-a", f"urls={write_list(tmp_path / 'a.txt', lines)}"], tmp_path / "a.csv"
    )
    workers.append(first)
    assert first.wait(90) == 0, first.text()[-3000:]
    copy = write_list(tmp_path / "b.txt", reversed(lines))
    second = Worker([*args, "-a", f"urls={copy}"], tmp_path / "b.csv")
    workers.append(second)
    assert second.wait(90) == 2, second.text()[-3000:]
    assert "every URL of this list was loaded into the cluster crawl" in second.text()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("idle_close", [2.0, 4.0])
def test_idle_close_is_on_time_and_the_log_has_no_deprecation_warning(  # noqa: PLR0917
    site: DemoSite,
    redis_url: str,
    key: str,
    tmp_path: Path,
    workers: list[Worker],
    idle_close: float,
) -> None:
    """A worker exits within 1 s of PAGES_CLUSTER_IDLE_CLOSE after the last
    row (its own measure, logged, and the server's last request to the
    process's exit with room for start-up-free shutdown). Its queue is not
    empty when it opens (scrapy-redis's "Resuming crawl"), the case that
    logged Scrapy's Spider.log() deprecation warning."""
    paths = [f"/page/{i}?{key}" for i in range(20)]
    shared = frontier(redis_url, key)
    shared.load(
        source="test", last_line=len(paths), lines=len(paths),
        urls=[(site.url + p, i + 1) for i, p in enumerate(paths)],
        rows=[], loader="test", ttl=10,
    )  # fmt: skip
    shared.loader_done("test")
    since = len(site.requests())
    settings = {"PAGES_CLUSTER_IDLE_CLOSE": idle_close, "LOG_LEVEL": "DEBUG"}
    worker = Worker(cluster_args(redis_url, key, **settings), tmp_path / "w.csv")
    workers.append(worker)
    assert worker.wait(120) == 0, worker.text()[-3000:]
    ended = time.time()
    seen = [r for r in site.requests(since) if r["path"] in paths]
    assert len(seen) == len(paths)
    after_last_row = ended - max(r["time"] for r in seen)
    log = worker.text()
    assert "The cluster has had no work for" in log
    idle = float(log.split("The cluster has had no work for ", 1)[1].split(" s", 1)[0])
    assert idle_close <= idle < idle_close + 1.0, log[-2000:]
    # Process shutdown (stats dump, report close, interpreter exit) on top.
    assert after_last_row < idle_close + 3.0, (after_last_row, log[-2000:])
    assert "Resuming crawl" in log
    assert "deprecat" not in log.lower()
    assert "Warning" not in log
    assert len(read_report(worker.report)) == len(paths)
