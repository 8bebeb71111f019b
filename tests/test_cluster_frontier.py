"""The Redis frontier's scripts (fakeredis) and the report merge, in isolation."""

from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest

from scraper_project.cluster.frontier import Entry, Frontier, url_fingerprint
from scraper_project.commands.cluster import merge_reports
from scraper_project.items import FIELDS, new_item


@pytest.fixture
def frontier() -> Frontier:
    return Frontier(fakeredis.FakeRedis(), "t")


def load(frontier: Frontier, source: str, urls: list[str], first: int = 1, **kw: object) -> object:
    pairs = [(u, first + i) for i, u in enumerate(urls)]
    return frontier.load(
        source=source,
        last_line=first + len(urls) - 1,
        lines=len(urls),
        urls=pairs,
        rows=kw.get("rows", []),  # type: ignore[arg-type]
        loader="L",
        ttl=30,
    )


def test_fingerprint_is_stable() -> None:
    # The same in every process (not Python's salted hash): a known value.
    assert url_fingerprint("http://a.test/") == url_fingerprint("http://a.test/")
    assert len(url_fingerprint("http://a.test/")) == 16
    assert url_fingerprint("http://a.test/") != url_fingerprint("http://b.test/")


def test_load_deduplicates_across_batches_and_lists(frontier: Frontier) -> None:
    assert load(frontier, "one", ["http://a.test/", "http://b.test/", "http://a.test/"]) == [2]
    assert frontier.loaded_until("one") == 3
    # Another list: b is known from the first one.
    assert load(frontier, "two", ["http://b.test/", "http://c.test/"]) == [0]
    # The same batch again (a concurrent loader): nothing happens.
    assert load(frontier, "two", ["http://b.test/", "http://c.test/"]) is None
    status = frontier.status()
    assert status.queued == 3
    assert status.stats == {"lines": 5, "urls": 3, "duplicates": 2, "invalid": 0}
    assert not status.finished


def test_take_ack_release(frontier: Frontier) -> None:
    load(frontier, "l", ["http://a.test/", "http://b.test/", "http://c.test/"])
    first = Entry.decode(frontier.take("w1")[0])
    assert (first.url, first.line) == ("http://a.test/", 1)  # FIFO
    second = frontier.take("w1")[0]
    assert frontier.status().leased == 0  # w1 is not registered yet: no heartbeat
    frontier.heartbeat("w1", 30)
    assert frontier.status().leased == 2
    assert frontier.release("w1", [second]) == 1
    # Handed back: first in line again.
    assert frontier.take("w1") == [second]
    assert frontier.ack("w1", [first.raw, second]) == 2
    assert frontier.release("w1", [first.raw]) == 0  # acked: nothing to hand back
    status = frontier.status()
    assert (status.queued, status.leased, status.stats["done"]) == (1, 0, 2)


def test_dead_worker_entries_are_reclaimed(frontier: Frontier) -> None:
    load(frontier, "l", [f"http://a.test/{i}" for i in range(5)])
    frontier.heartbeat("dead", 30)
    taken = frontier.take("dead", 3)
    assert len(taken) == 3
    frontier.heartbeat("alive", 30)
    assert frontier.heartbeat("alive", 30) == 0  # "dead" still has its lease
    frontier.client.zadd(frontier.workers_key, {"dead": 0})  # its lease runs out
    assert frontier.heartbeat("alive", 30) == 3
    assert frontier.client.exists(frontier.leased_key("dead")) == 0
    assert set(frontier.take("alive", 3)) == set(taken)  # first in line again
    status = frontier.status()
    assert status.workers == 1
    assert status.stats["reclaimed"] == 3


def test_late_ack_of_a_reclaimed_entry_is_not_repeated(frontier: Frontier) -> None:
    load(frontier, "l", ["http://a.test/", "http://b.test/"])
    frontier.heartbeat("slow", 30)
    entry = frontier.take("slow")[0]
    frontier.client.zadd(frontier.workers_key, {"slow": 0})
    frontier.reclaim()
    assert frontier.queued() == 2
    # The slow worker did finish it and acknowledges: it leaves the queue.
    frontier.ack("slow", [entry])
    assert frontier.queued() == 1
    assert Entry.decode(frontier.take("other")[0]).url == "http://b.test/"


def test_rows_travel_as_entries(frontier: Frontier) -> None:
    row = dict(new_item("not a url", 7, "invalid_url: no scheme"))
    load(frontier, "l", [], first=7, rows=[row])
    entry = Entry.decode(frontier.take("w")[0])
    assert entry.url is None
    assert entry.row == row
    assert frontier.status().stats["invalid"] == 1


def test_status_finished_needs_no_loader(frontier: Frontier) -> None:
    assert frontier.status().finished
    frontier.touch_loader("L", 30)
    assert not frontier.status().finished
    frontier.loader_done("L")
    assert frontier.status().finished


def test_reset_deletes_only_its_keys(frontier: Frontier) -> None:
    load(frontier, "l", ["http://a.test/"])
    frontier.client.set("other", "1")
    assert frontier.reset() >= 3
    assert frontier.client.keys("t:*") == []
    assert frontier.client.get("other") == b"1"


def _csv(path: Path, rows: list[list[object]], cut: str = "") -> Path:
    lines = [",".join(FIELDS)] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n" + cut, encoding="utf-8")
    return path


def test_merge_keeps_one_row_per_url_and_skips_damaged(tmp_path: Path) -> None:
    def row(url: str, line: int) -> list[object]:
        return [url, url, 200, 10, "T", "text/html", "", 1, 5, 0, line]

    a = _csv(tmp_path / "a.csv", [row("http://a.test/", 2), row("http://b.test/", 1)],
             cut="http://c.test/,http://c.te")  # fmt: skip
    b = _csv(tmp_path / "b.csv", [row("http://b.test/", 1), row("http://c.test/", 3)])
    c = tmp_path / "c.jsonl"
    c.write_text(
        json.dumps(dict(zip(FIELDS, row("http://d.test/", 4), strict=True))) + "\n{broken",
        encoding="utf-8",
    )
    out = tmp_path / "merged.csv"
    counts = merge_reports([a, b, c], out)
    assert counts == {"rows": 4, "duplicates": 1, "damaged": 2}
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(FIELDS)
    assert [line.split(",")[0] for line in lines[1:]] == [
        "http://b.test/",
        "http://a.test/",
        "http://c.test/",
        "http://d.test/",
    ]
