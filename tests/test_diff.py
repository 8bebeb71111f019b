"""``scrapy pages-diff`` and scraper_project.diff: kinds of change, the
external sort against an obvious in-memory diff, the real command."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scraper_project.diff import EXIT_NEWLY_FAILING, KINDS, ReportDiff, change_kind
from scraper_project.items import PageItem, new_item
from tests.crawl import run_cli
from tests.support.reports import BAD_REPORTS, make_rows, write_report

# (url, status, error, final_url or "", title, line)
OK = ("http://a.test/", 200, "", "", "A", 1)


def rec(**changes: Any) -> tuple[Any, ...]:
    fields = ("url", "status", "error", "final", "title", "line")
    values = dict(zip(fields, OK, strict=True))
    values.update(changes)
    return tuple(values[f] for f in fields)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (OK, OK, None),
        (OK, rec(line=9), None),  # another line of the list: same outcome
        (OK, rec(status=404), "newly_failing"),
        (OK, rec(status=None, error="timeout: slow"), "newly_failing"),
        (rec(status=None, error="not_attempted: stopped"), rec(status=500), "newly_failing"),
        (None, rec(status=503), "newly_failing"),  # a new URL that fails
        (rec(status=500), OK, "fixed"),
        (rec(status=None, error="dns_error: x"), OK, "fixed"),
        (rec(status=404), rec(status=410), "status_changed"),
        (
            rec(status=None, error="timeout: a"),
            rec(status=None, error="dns_error: b"),
            "status_changed",
        ),
        (rec(status=None, error="timeout: a"), rec(status=None, error="timeout: b"), None),
        (rec(status=404, title="x"), rec(status=404, title="y"), None),
        (OK, rec(status=203), "status_changed"),
        (OK, rec(final="http://a.test/login"), "redirected_elsewhere"),
        (rec(final="http://a.test/"), OK, None),  # final_url == url either way
        (OK, rec(title="B"), "title_changed"),
        (None, OK, "added"),
        (OK, None, "removed"),
        (rec(status=500), None, "removed"),
        (OK, rec(status=None, error="cancelled: stopped"), "not_checked"),
        (rec(status=404), rec(status=None, error="not_attempted: x"), "not_checked"),
        (rec(status=None, error="not_attempted: x"), OK, "checked"),
        (rec(status=None, error="cancelled: x"), rec(status=None, error="not_attempted: y"), None),
    ],
)
def test_change_kind(old: Any, new: Any, kind: str | None) -> None:
    assert change_kind(old, new) == kind


def _reference(old: list[PageItem], new: list[PageItem]) -> dict[str, str]:
    """The obvious diff: both reports in dicts (first row of a URL wins)."""

    def records(rows: list[PageItem]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in rows:
            final = r["final_url"] or ""
            record = (
                r["url"],
                r["status"],
                r["error"],
                "" if final == r["url"] else final,
                r["title"],
                r["line"],
            )
            out.setdefault(r["url"], record)
        return out

    before, now = records(old), records(new)
    kinds = {}
    for url in before.keys() | now.keys():
        kind = change_kind(before.get(url), now.get(url))
        if kind:
            kinds[url] = kind
    return kinds


def _weekly(seed: int, count: int) -> tuple[list[PageItem], list[PageItem]]:
    """Last week's report and this week's: shuffled, some URLs gone, new
    ones, outcomes changed, a few URLs repeated (a cluster's workers)."""
    rng = random.Random(seed)
    old = make_rows(count, seed=seed, hosts=30)
    new: list[PageItem] = []
    for kept in old[count // 20 :]:
        r: PageItem = dict(kept)  # type: ignore[assignment]
        roll = rng.random()
        if roll < 0.03:
            r.update(status=404, error="")
        elif roll < 0.06:
            r.update(status=200, error="", title="fixed")
        elif roll < 0.08:
            r.update(final_url=r["url"] + "/elsewhere")
        elif roll < 0.10:
            r.update(title=f"new title {rng.random()}")
        elif roll < 0.11:
            r = new_item(r["url"], r["line"], "not_attempted: the crawl stopped first")
        new.append(r)
    new += make_rows(count + count // 10, seed=seed + 1, hosts=30)[count:]
    rng.shuffle(old)
    rng.shuffle(new)
    # Repeated URLs, later in the file, with another outcome: the first
    # row of a URL is the one compared.
    new += [{**r, "status": 599, "error": "", "title": "repeated"} for r in rng.sample(new, 20)]  # type: ignore[typeddict-item]
    return old, new


@pytest.mark.parametrize("chunk_rows", [97, 100_000])
def test_external_sort_gives_the_obvious_diff(tmp_path: Path, chunk_rows: int) -> None:
    old, new = _weekly(seed=5, count=3000)
    old_path = write_report(tmp_path / "old.csv", old)
    new_path = write_report(tmp_path / "new.jsonl", new)
    diff = ReportDiff(old_path, new_path, chunk_rows=chunk_rows, tmp_dir=tmp_path)
    got = {c.url: c.kind for c in diff.changes()}
    want = _reference(old, new)
    assert got == want
    assert len(set(want.values())) >= 6
    assert diff.new_counts.duplicates == 20
    assert diff.counts["unchanged"] + sum(diff.counts[k] for k in KINDS) == len(
        {r["url"] for r in old} | {r["url"] for r in new}
    )
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []  # temporary runs removed


# -- the real command ---------------------------------------------------------


def _row(url: str, line: int, **changes: Any) -> PageItem:
    row: PageItem = {
        "url": url,
        "final_url": url,
        "status": 200,
        "length": 100,
        "title": "Title",
        "content_type": "text/html",
        "error": "",
        "attempts": 1,
        "elapsed_ms": 12,
        "redirects": 0,
        "line": line,
    }
    row.update(changes)  # type: ignore[typeddict-item]
    return row


PLANTED: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]] = {
    "/same": ({}, {}, None),
    "/broke": ({}, {"status": 404}, "newly_failing"),
    "/timeout": ({}, {"status": None, "error": "timeout: took too long"}, "newly_failing"),
    "/fixed": ({"status": 500}, {}, "fixed"),
    "/gone": ({"status": 404}, {"status": 410}, "status_changed"),
    "/moved": ({}, {"final_url": "http://site.test/login", "redirects": 1}, "redirected_elsewhere"),
    "/retitled": ({}, {"title": "=cmd|' /C calc'!A0"}, "title_changed"),
    "/new": (None, {}, "added"),
    "/old": ({}, None, "removed"),
    "/stopped": ({}, {"status": None, "error": "not_attempted: stopped"}, "not_checked"),
}


def _planted(
    tmp_path: Path, old_name: str = "old.csv", new_name: str = "new.jsonl"
) -> tuple[Path, Path]:
    old: list[PageItem] = []
    new: list[PageItem] = []
    for i, (path, (before, after, _)) in enumerate(PLANTED.items()):
        url = f"http://site.test{path}"
        if before is not None:
            old.append(_row(url, i + 1, **before))
        if after is not None:
            new.insert(0, _row(url, 100 - i, **after))  # another order, other lines
    return write_report(tmp_path / old_name, old), write_report(tmp_path / new_name, new)


def _diff(args: list[str]) -> tuple[int, str, str]:
    result = run_cli(["pages-diff", *args], timeout=60)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_pages_diff_lists_each_kind_and_fails_ci(tmp_path: Path) -> None:
    old, new = _planted(tmp_path)
    out = tmp_path / "changes.csv"
    code, stdout, stderr = _diff([str(old), str(new), "-o", str(out)])
    assert code == EXIT_NEWLY_FAILING == 4, stderr
    want = {f"http://site.test{p}": k for p, (_, _, k) in PLANTED.items() if k}
    rows = _read_csv(out)
    assert {r["url"]: r["kind"] for r in rows} == want
    assert [r["url"] for r in rows] == sorted(want)  # in URL order
    by_url = {r["url"]: r for r in rows}
    assert by_url["http://site.test/broke"]["old_status"] == "200"
    assert by_url["http://site.test/broke"]["new_status"] == "404"
    assert by_url["http://site.test/moved"]["new_final_url"] == "http://site.test/login"
    assert by_url["http://site.test/retitled"]["new_title"] == "'=cmd|' /C calc'!A0"  # CSV-safe
    counts = Counter(want.values())
    for kind in KINDS:
        assert f"  {kind:<22}{counts[kind]:>12,}" in stderr, kind
    assert f"  {'unchanged':<22}{1:>12,}" in stderr
    assert "2 URLs newly_failing: exit code 4" in stderr
    assert stdout == ""


def test_pages_diff_other_outputs_and_stdout(tmp_path: Path) -> None:
    old, new = _planted(tmp_path, "old.json", "new.csv.gz")
    code, _, _ = _diff([str(old), str(new), "-o", str(tmp_path / "c.csv")])
    assert code == 4
    expected = _read_csv(tmp_path / "c.csv")
    code, _, _ = _diff([str(old), str(new), "-o", str(tmp_path / "c.jsonl")])
    lines = [json.loads(t) for t in (tmp_path / "c.jsonl").read_text().splitlines()]
    code, _, _ = _diff([str(old), str(new), "-o", str(tmp_path / "c.json")])
    array = json.loads((tmp_path / "c.json").read_text())
    assert lines == array
    assert [r["url"] for r in lines] == [r["url"] for r in expected]
    assert lines[0]["old_status"] in (200, None, 500, 404)  # numbers stay numbers in JSON
    code, stdout, _ = _diff([str(old), str(new), "--chunk-rows", "3"])
    assert code == 4
    assert stdout.splitlines() == [
        "newly_failing  http://site.test/broke  200 -> 404",
        "fixed  http://site.test/fixed  500 -> 200",
        "status_changed  http://site.test/gone  404 -> 410",
        "redirected_elsewhere  http://site.test/moved  http://site.test/moved -> http://site.test/login",
        "added  http://site.test/new  absent -> 200",
        "removed  http://site.test/old  200 -> absent",
        "title_changed  http://site.test/retitled  'Title' -> \"=cmd|' /C calc'!A0\"",
        "not_checked  http://site.test/stopped  200 -> not_attempted",
        "newly_failing  http://site.test/timeout  200 -> timeout",
    ]


def test_pages_diff_exit_codes(tmp_path: Path) -> None:
    rows = make_rows(300, seed=3)
    old = write_report(tmp_path / "old.csv", rows)
    same = write_report(tmp_path / "same.jsonl", list(reversed(rows)))
    code, stdout, stderr = _diff([str(old), str(same)])
    assert (code, stdout) == (0, ""), stderr
    assert f"  {'unchanged':<22}{300:>12,}" in stderr
    fewer = write_report(tmp_path / "fewer.csv", rows[10:])
    assert _diff([str(old), str(fewer)])[0] == 0  # removed only: not a failure ...
    code, _, stderr = _diff([str(old), str(fewer), "--fail-on", "removed,fixed"])
    assert code == 4  # ... unless asked
    assert "10 URLs fixed/removed: exit code 4" in stderr
    old2, new2 = _planted(tmp_path)
    assert _diff([str(old2), str(new2), "--fail-on", "none"])[0] == 0


def test_pages_diff_output_is_terminal_safe(tmp_path: Path) -> None:
    old = write_report(tmp_path / "old.csv", [_row("http://a.test/", 1)])
    new = write_report(
        tmp_path / "new.csv", [_row("http://a.test/", 1, title="\x1b[2J\x1b]0;pwned\x07x\ny")]
    )
    code, stdout, _ = _diff([str(old), str(new)])
    assert code == 0
    assert "\x1b" not in stdout
    assert "\x07" not in stdout
    assert stdout.count("\n") == 1


def test_pages_diff_counts_damaged_and_repeated_rows(tmp_path: Path) -> None:
    rows = make_rows(50)
    old = write_report(tmp_path / "old.csv", [*rows, rows[0], rows[1]])
    new = write_report(tmp_path / "new.csv", rows)
    data = new.read_bytes()
    new.write_bytes(data[:-25])  # the last row cut short
    code, stdout, stderr = _diff([str(old), str(new)])
    assert "old.csv: 50 URLs, 2 repeated URLs (first row compared)" in stderr
    assert "new.csv: 49 URLs, 1 damaged rows skipped" in stderr
    assert stdout.startswith("removed  ")
    assert code == 0


@pytest.mark.parametrize(("name", "content", "message"), BAD_REPORTS)
def test_pages_diff_bad_input_is_one_line_exit_2(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    good = write_report(tmp_path / "good.csv", make_rows(5))
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    out = tmp_path / "keep.csv"
    out.write_text("earlier changes")
    code, stdout, stderr = _diff([str(good), str(bad), "-o", str(out)])
    assert (code, stdout) == (2, "")
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("scrapy pages-diff: error: ")
    assert message in stderr
    assert out.read_text() == "earlier changes"


def test_pages_diff_bad_options(tmp_path: Path) -> None:
    good = write_report(tmp_path / "good.csv", make_rows(5))
    code, _, stderr = _diff([str(good), str(good), "-o", str(tmp_path / "c.xlsx")])
    assert (code, stderr.count("\n")) == (2, 1)
    assert "c.xlsx: unknown output format" in stderr
    code, _, stderr = _diff([str(good), str(good), "--fail-on", "broken"])
    assert (code, stderr.count("\n")) == (2, 1)
    assert "--fail-on 'broken': unknown kind broken" in stderr
    code, _, stderr = _diff([str(good)])
    assert code == 2
    assert "give two reports" in stderr
    code, _, stderr = _diff([str(tmp_path / "old.csv"), str(good)])  # the old one missing
    assert (code, stderr.count("\n")) == (2, 1)
    assert "old.csv: no such file" in stderr
