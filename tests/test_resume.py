"""Resume (issue 17, item 2): ``-a resume=REPORT``, ``-a retry_errors=...``.

The reader of the old report on real files (torn rows, formats, what is
kept), then the real ``scrapy crawl`` command against the demo site: a crawl
killed with SIGKILL and resumed gives the report of an uninterrupted crawl;
usage errors are one line and exit code 2. The three-run deadline test of a
100,000-line list is in ``test_resume_runs.py``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scraper_project.items import FIELDS, new_item
from scraper_project.pipelines.failon import FailOn
from scraper_project.resume import ResumeReader
from scraper_project.skip import SkipRules
from tests.crawl import REPO_ROOT, read_report, run_cli, settings_args, write_list
from tests.support.servers import DemoSite

BANNER = "Scrapy 2.19"


def row(url: str, line: int, *, status: int | None = 200, error: str = "") -> dict[str, Any]:
    item = dict(new_item(url, line, error))
    if status is not None and not error.startswith(("not_attempted", "skipped", "invalid")):
        item.update(final_url=url, status=status, length=100, title=f"T{line}", attempts=1)
        item.update(content_type="text/html", elapsed_ms=5)
    return item


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def kept_rows(path: Path, **kwargs: Any) -> tuple[list[dict[str, Any]], ResumeReader]:
    reader = ResumeReader(path, batch_size=3, **kwargs)
    rows = [dict(r) for batch in reader.batches() for r in batch]
    return rows, reader


OLD = [
    row("http://a.test/1", 1),
    row("http://a.test/2", 2, status=None, error="not_attempted: the crawl stopped (shutdown) first"),
    row("http://a.test/3", 3, status=503),
    row("http://a.test/4", 4, status=None, error="timeout: took longer than 10.0 seconds"),
    row("http://a.test/5", 5, status=None, error="cancelled: the crawl stopped (shutdown) during the download"),
    row("not a url", 6, status=None, error="invalid_url: not a URL"),
    row("http://a.test/logout", 7, status=None, error="skipped: /logout"),
    row("http://a.test/1", 8, status=404),  # a second row for a URL: the first counts
    row("HTTP://A.TEST/9#x", 9),  # normalised as the list's line would be
    row("http://a.test/10", 10, status=404),
]  # fmt: skip


def test_reader_keeps_finished_rows_and_plans_the_rest(tmp_path: Path) -> None:
    rows, reader = kept_rows(write_csv(tmp_path / "old.csv", OLD))
    assert [r["line"] for r in rows] == [1, 3, 4, 9, 10]
    assert rows[0] == {**OLD[0], "final_url": "http://a.test/1"}
    assert rows[3]["url"] == "http://a.test/9"
    plan = reader.plan
    assert sorted(plan.recrawl) == ["cancelled", "not_attempted"]
    assert reader.counts == {
        "rows": 10,
        "kept": 5,
        "damaged_rows": 0,
        "duplicate_rows": 1,
        "from_list": 2,
        "to_recrawl": 2,
    }
    from scraper_project.dedupe import fingerprint

    assert plan.recrawl_reason(fingerprint("http://a.test/2")) == "not_attempted"
    assert plan.recrawl_reason(fingerprint("http://a.test/5")) == "cancelled"
    assert plan.recrawl_reason(fingerprint("http://a.test/1")) is None
    assert fingerprint("http://a.test/9") in plan.kept


def test_reader_retry_errors_and_skip_rules(tmp_path: Path) -> None:
    retry = FailOn.parse(["timeout", "5xx"], "retry_errors")
    skip = SkipRules.compile([("/10$", "PAGES_SKIP")])
    rows, reader = kept_rows(write_jsonl(tmp_path / "old.jsonl", OLD), retry=retry, skip=skip)
    assert [r["line"] for r in rows] == [1, 9]
    assert sorted(reader.plan.recrawl) == ["5xx", "cancelled", "not_attempted", "timeout"]
    assert reader.counts["from_list"] == 3  # invalid, skipped, and now skipped (/10)


@pytest.mark.parametrize("cut", ["in_line_number", "mid_row", "after_cr"])
def test_reader_ignores_a_torn_last_csv_row(tmp_path: Path, cut: str) -> None:
    """A killed crawl's CSV ends inside a row; cut inside the line number,
    the cells even look complete (``...,1`` of ``...,12``)."""
    path = write_csv(tmp_path / "old.csv", [row(f"http://a.test/{i}", 10 + i) for i in range(3)])
    data = path.read_bytes()
    assert data.endswith(b",12\r\n")
    cuts = {"in_line_number": len(data) - 3, "mid_row": len(data) - 30, "after_cr": len(data) - 1}
    path.write_bytes(data[: cuts[cut]])
    rows, reader = kept_rows(path)
    if cut == "after_cr":  # the row is complete
        assert [r["line"] for r in rows] == [10, 11, 12]
    else:
        assert [r["line"] for r in rows] == [10, 11]
        assert reader.counts["damaged_rows"] == 1


def test_reader_ignores_a_torn_last_jsonl_row_and_reads_gzip(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "old.jsonl", [row(f"http://a.test/{i}", i) for i in range(1, 4)])
    data = path.read_bytes()
    path.write_bytes(data[:-9])
    rows, reader = kept_rows(path)
    assert [r["line"] for r in rows] == [1, 2]
    assert reader.counts["damaged_rows"] == 1
    gz = tmp_path / "old.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    rows, _ = kept_rows(gz)
    assert [r["line"] for r in rows] == [1, 2, 3]


# -- the real command ---------------------------------------------------------------


def crawl_cli(args: list[str], settings: dict[str, Any] | None = None) -> tuple[int, str]:
    proc = run_cli(["crawl", "pages", *args, *settings_args(settings or {})])
    return proc.returncode, proc.stderr.decode()


def crawl_stats(
    args: list[str], tmp_path: Path, settings: dict[str, Any] | None = None
) -> tuple[int, str, dict[str, Any]]:
    """``crawl_cli``, and the final stats (``PAGES_STATS_FILE``)."""
    stats_file = tmp_path / "stats.json"
    stats_file.unlink(missing_ok=True)
    code, err = crawl_cli(args, {**(settings or {}), "PAGES_STATS_FILE": str(stats_file)})
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return code, err, stats


def comparable(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Rows as a set, timings aside."""
    return {tuple(v for k, v in r.items() if k != "elapsed_ms") for r in rows}


def mixed_list(site: DemoSite, tmp_path: Path, tag: str, pages: int) -> Path:
    lines = [f"{site.url}/page/{i}?{tag}" for i in range(pages)]
    lines[10:10] = [
        f"{site.url}/status/404?{tag}",
        f"{site.url}/redirect?to=/page/9999%3F{tag}",
        f"{site.url}/private/x?{tag}",  # robots.txt forbids it
        "http://127.0.0.1:1/refused",  # nothing listens
        "not a url",
        f"{site.url}/page/3?{tag}",  # a duplicate
        "# a comment",
        f"{site.url}/charset/latin1?{tag}",
    ]
    lines.append(f"{site.url}/page/5?{tag}")  # a duplicate near the end
    return write_list(tmp_path / "urls.txt", lines)


@pytest.mark.timeout(180)
def test_sigkill_then_resume_equals_an_uninterrupted_crawl(site: DemoSite, tmp_path: Path) -> None:
    """A crawl killed with SIGKILL part-way, resumed from its own (torn)
    report into the same file, gives the rows of an uninterrupted crawl of
    the same list; the resumed run fetches none of the kept URLs again."""
    tag = "resumekill"
    urls = mixed_list(site, tmp_path, tag, 600)
    full = tmp_path / "full.csv"
    code, err = crawl_cli(["-a", f"urls={urls}", "-O", str(full)])
    assert code == 0, err[-3000:]
    expected = read_report(full)
    assert len(expected) == 600 + 6  # distinct URLs and the invalid line

    # The same list, slowed down by a rate limit (about 6 s), killed once
    # its report holds 50 rows (flushed every second).
    out = tmp_path / "report.csv"
    args = ["-a", f"urls={urls}", "-O", str(out), *settings_args({"RATELIMIT_RATE": 100})]
    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "pages", *args],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") > 50:
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    killed = out.read_bytes()
    killed_rows = killed.count(b"\n") - 1
    assert 50 < killed_rows < 500, killed_rows  # a real cut: some rows, not all

    since = len(site.requests())
    code, err, stats = crawl_stats(
        ["-a", f"urls={urls}", "-a", f"resume={out}", "-O", str(out)], tmp_path
    )
    assert code == 0, err[-3000:]
    rows = read_report(out)
    assert len(rows) == len({r["url"] for r in rows}) == len(expected)
    assert comparable(rows) == comparable(expected)
    assert not (tmp_path / ".report.csv.resume").exists()  # the copy is gone

    kept = {r["url"] for r in read_report_bytes(killed) if not r["error"].startswith(("invalid",))}
    assert stats["resume/kept"] == len(kept)
    fetched_again = {site.url + r["path"] for r in site.requests(since)} & kept
    assert not fetched_again
    new_rows = len(expected) - 1 - len(kept)  # the invalid line's row is made again
    assert stats["resume/recrawled"] + stats["resume/new"] == new_rows
    assert stats["report/rows"] == len(expected)
    assert stats["resume/not_in_list"] == 0
    assert "Summary: resumed from" in err


def read_report_bytes(data: bytes) -> list[dict[str, str]]:
    """The complete rows of a CSV report cut anywhere."""
    text = data.decode("utf-8", "replace")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(text.splitlines()))


@pytest.mark.timeout(120)
def test_retry_errors_crawls_those_rows_again(site: DemoSite, tmp_path: Path) -> None:
    """``-a retry_errors=5xx``: a URL that failed with 503 is fetched again
    (the demo's /fail/ recovers after one failure), a 404 is kept."""
    tag = f"retry{os.getpid()}"
    urls = write_list(
        tmp_path / "urls.txt",
        [f"{site.url}/fail/{tag}?times=1", f"{site.url}/status/404?{tag}", f"{site.url}/page/1"],
    )
    old = tmp_path / "old.jsonl"
    code, err = crawl_cli(["-a", f"urls={urls}", "-O", str(old)])
    assert code == 0, err[-3000:]
    assert sorted(r["status"] for r in read_report(old)) == [200, 404, 503]
    new = tmp_path / "new.csv"
    code, err, stats = crawl_stats(
        ["-a", f"urls={urls}", "-a", f"resume={old}", "-a", "retry_errors=5xx", "-O", str(new)],
        tmp_path,
    )
    assert code == 0, err[-3000:]
    rows = read_report(new)
    assert sorted(r["status"] for r in rows) == ["200", "200", "404"]
    kept_order = [str(r["line"]) for r in read_report(old) if r["status"] != 503]
    assert [r["line"] for r in rows][:2] == kept_order  # kept rows first, in their order
    assert stats["resume/kept"] == 2
    assert stats["resume/recrawled/5xx"] == 1
    assert stats["resume/not_in_list"] == 0
    assert "2 rows kept, 1 URLs crawled again (5xx: 1), 0 URLs it had no row for" in err

    # PAGES_FAIL_ON sees the kept rows (the report is one report); a list
    # without one of the kept URLs keeps its row, and says so.
    short = write_list(tmp_path / "short.txt", [f"{site.url}/fail/{tag}?times=1"])
    code, err, stats = crawl_stats(
        ["-a", f"urls={short}", "-a", f"resume={old}", "-O", str(new)],
        tmp_path,
        {"PAGES_FAIL_ON": "404"},
    )
    assert code == 4, err[-3000:]
    # Without retry_errors, the 503 row is kept like the others.
    assert sorted(r["status"] for r in read_report(new)) == ["200", "404", "503"]
    assert stats["resume/not_in_list"] == 2
    assert f"2 rows kept from {old} are of URLs not in the list {short}" in err
    assert "Exit code 4: 1 row match PAGES_FAIL_ON=404 (404: 1)" in err


@pytest.mark.timeout(120)
def test_usage_errors_are_one_line_before_the_banner(site: DemoSite, tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1"])
    report = write_csv(tmp_path / "report.csv", [row(f"{site.url}/page/1", 1)])
    before = report.read_bytes()
    cases = [
        (["-a", "resume=missing.csv", "-O", str(tmp_path / "x.csv")], {}, "resume: missing.csv: no such file"),
        (["-a", f"resume={urls}", "-O", str(tmp_path / "x.csv")], {}, f"resume: {urls}: unknown format"),
        (["-a", "retry_errors=timeout", "-O", str(tmp_path / "x.csv")], {}, "retry_errors needs a report to resume: -a resume=REPORT"),
        (["-a", f"resume={report}", "-a", "retry_errors=timout", "-O", str(tmp_path / "x.csv")], {}, "retry_errors: unknown condition 'timout' (did you mean timeout?)"),
        (["-a", f"resume={report}", "-o", str(report)], {}, f"cannot append (-o) to {str(report)!r}, the report being resumed"),
        (["-a", f"resume={report}", "-O", str(tmp_path / "x.csv")], {"PAGES_REDIS_URL": "redis://127.0.0.1:1/0"}, "resume does not apply in cluster mode"),
    ]  # fmt: skip
    for args, settings, message in cases:
        code, err = crawl_cli(["-a", f"urls={urls}", *args], settings)
        assert code == 2, (args, err[-3000:])
        lines = err.splitlines()
        assert len(lines) == 1, err[-3000:]
        assert lines[0].startswith(f"scrapy crawl: error: {message}"), (lines[0], message)
        assert BANNER not in err
    assert report.read_bytes() == before
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.timeout(120)
def test_resume_into_json_lines_and_html(site: DemoSite, tmp_path: Path) -> None:
    """Kept rows go to every feed, whatever its format; a deadline-cut JSON
    lines report resumes into a CSV and an HTML report at once."""
    tag = "resumejl"
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?{tag}" for i in range(300)])
    old = tmp_path / "old.jsonl"
    code, err = crawl_cli(
        ["-a", f"urls={urls}", "-O", str(old), "-a", "timeout=2"], {"RATELIMIT_RATE": 60}
    )
    assert code == 3, err[-3000:]
    old_rows = read_report(old)
    done = [r for r in old_rows if not r["error"]]
    assert 10 < len(done) < 290
    assert len(old_rows) == 300
    new, page = tmp_path / "new.csv", tmp_path / "new.html"
    code, err = crawl_cli(
        ["-a", f"urls={urls}", "-a", f"resume={old}", "-O", str(new), "-O", str(page)]
    )
    assert code == 0, err[-3000:]
    rows = read_report(new)
    assert len(rows) == 300
    assert all(r["status"] == "200" for r in rows)
    assert [r["url"] for r in rows[: len(done)]] == [r["url"] for r in done]
    html = page.read_text()
    assert '"rows": 300' in html.replace('"rows":300', '"rows": 300')


def test_cells_coercer_equals_coerce_row() -> None:
    """The positional conversion of a CSV report's cells (resume's fast path)
    gives what coerce_row gives, neutralised cells and bad numbers included."""
    from scraper_project.reportfile import cells_coercer, coerce_row

    header = list(FIELDS)
    cases = [
        ["http://a/", "http://a/b", "200", "12", "'=1+1", "text/html", "", "1", "5", "1", "3"],
        ["not a url", "", "", "", "", "", "invalid_url: x", "0", "", "0", "7"],
        ["'@x", "", "", "", "'-", "'+y", "'=err", "", "", "", ""],
        ["http://a/", "", "2x", "", "", "", "", "0", "", "0", "1"],  # not a number
        ["http://a/", "", "200.0", "", "", "", "", "0", "", "0", "1"],
    ]
    fast, slow = cells_coercer(header), cells_coercer([*header[1:], header[0]])
    for cells in cases:
        expected = coerce_row(dict(zip(header, cells, strict=True)), True)
        assert fast(cells) == expected, cells
        assert slow([*cells[1:], cells[0]]) == expected, cells
