"""The HTML report in a real headless browser (Debian's chromium).

One real crawl (the demo site, hostile pages from a raw server, failures)
writes report.csv and report.html together; the page is opened from disk
and what it shows is compared with the CSV: counts, filters, sorting, the
hostile titles as text, no network request.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from scraper_project.demo.urls import mixed_lines, page_urls
from scraper_project.htmlreport import script_json
from scraper_project.items import FIELDS, PageItem
from scraper_project.reportfile import read_report
from tests.crawl import run_cli, settings_args, write_list
from tests.support.browser import Browser, Tab
from tests.support.htmlpage import read_page
from tests.support.rawserver import RawServer
from tests.support.reports import HOSTILE_TITLES, export_html, make_rows, write_report
from tests.support.servers import DemoSite

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _title_page(title: str) -> bytes:
    body = f"<!DOCTYPE html><html><head><title>{title}</title></head><body>x</body></html>"
    data = body.encode("utf-8")
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: " + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data
    )


HOSTILE_PAGES = {f"/hostile/{i}": _title_page(t) for i, t in enumerate(HOSTILE_TITLES)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    running = Browser()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def crawled(site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """report.csv and report.html of one real crawl."""
    tmp = tmp_path_factory.mktemp("htmlcrawl")
    with RawServer(responses=HOSTILE_PAGES) as raw:
        lines = [
            *mixed_lines(site.url),
            *page_urls(site.url, 150),
            site.url_for("/status/429"),
            site.url_for("/status/503"),
            *(raw.url + path for path in HOSTILE_PAGES),
            "http://nowhere.test/",  # dns_error (RESOLVE_HOSTS_ONLY)
            "http://127.0.0.1:1/",  # connection_refused
        ]
        urls = write_list(tmp / "urls.txt", lines)
        csv_path, html_path = tmp / "report.csv", tmp / "report.html"
        result = run_cli(
            ["crawl", "pages", "-a", f"urls={urls}", "-O", str(csv_path), "-O", str(html_path),
             *settings_args({"LOG_LEVEL": "WARNING"})],
            timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return csv_path, html_path


@pytest.fixture(scope="module")
def rows(crawled: tuple[Path, Path]) -> list[PageItem]:
    typed = list(read_report(crawled[0]))
    assert all(r is not None for r in typed)
    return [r for r in typed if r is not None]


@pytest.fixture
def tab(browser: Browser, crawled: tuple[Path, Path]) -> Iterator[Tab]:
    opened = browser.open(crawled[1])
    try:
        yield opened
    finally:
        opened.close()


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def _outcome(row: PageItem) -> str:
    cls = row["error"].split(":")[0] if row["error"] else ""
    if cls:
        return "unchecked" if cls in ("not_attempted", "cancelled") else "error"
    return f"{row['status'] // 100}xx" if row["status"] is not None else "other"


def test_the_html_report_holds_the_same_rows_as_the_csv(
    crawled: tuple[Path, Path], rows: list[PageItem]
) -> None:
    page = read_page(crawled[1])
    key = lambda r: r["line"]  # noqa: E731
    # Timings aside, the two feeds of one crawl hold the same rows.
    assert sorted(page.dicts(), key=key) == sorted(rows, key=key)
    assert page.summary is not None
    assert page.summary["rows"] == len(rows)
    assert page.meta["source"].startswith("scrapy crawl pages")


def test_the_page_loads_from_disk_without_a_network_request(
    tab: Tab, crawled: tuple[Path, Path], rows: list[PageItem]
) -> None:
    assert tab.requests == [crawled[1].resolve().as_uri()]
    assert tab.errors == []
    assert tab.eval("window.__violations") == []
    assert tab.eval("document.body.dataset.ready") == "1"
    # Links point out, but nothing was fetched: an <a> only goes on a click.
    assert tab.eval("document.querySelectorAll('img, iframe, link, object, embed').length") == 0


def test_the_counts_shown_equal_the_report(tab: Tab, rows: list[PageItem]) -> None:
    outcomes = Counter(_outcome(r) for r in rows)
    assert all(outcomes[k] for k in ("2xx", "4xx", "5xx", "error"))
    assert _number(tab.text("#totals [data-key=all] .count")) == len(rows)
    for key in ("2xx", "3xx", "4xx", "5xx", "error"):
        assert _number(tab.text(f"#totals [data-key='{key}'] .count")) == outcomes[key], key
    # Charts: one bar per status class and per error class, with its count.
    statuses = Counter("none" if r["status"] is None else f"{r['status'] // 100}xx" for r in rows)
    bars = tab.eval(
        "Array.from(document.querySelectorAll('#chart-status .bar')).map("
        "g => [g.dataset.key, g.querySelector('text.count').textContent])"
    )
    assert {k: _number(v.split()[0]) for k, v in bars} == dict(statuses)
    errors = Counter(r["error"].split(":")[0] for r in rows if r["error"])
    bars = tab.eval(
        "Array.from(document.querySelectorAll('#chart-errors .bar')).map("
        "g => [g.dataset.key, g.querySelector('text.count').textContent])"
    )
    assert {k: _number(v.split()[0]) for k, v in bars} == dict(errors)
    # Latency: nearest-rank percentiles of elapsed_ms.
    latencies = sorted(r["elapsed_ms"] for r in rows if r["elapsed_ms"] is not None)
    for p in (50, 90, 99):
        want = latencies[max(math.ceil(p / 100 * len(latencies)), 1) - 1]
        assert _number(tab.text(f"#latency [data-key=p{p}] .count")) == want
    # Hosts: URLs per host, 429s, robots-forbidden.
    tab.select("#hosts .page-size", "500")
    shown = {
        name: (_number(urls), _number(c429), _number(robots))
        for name, urls, c429, robots in zip(
            tab.texts("#hosts td.host"),
            tab.texts("#hosts td.urls"),
            tab.texts("#hosts td.c429"),
            tab.texts("#hosts td.robots"),
            strict=True,
        )
    }
    per_host: dict[str, list[int]] = {}
    for r in rows:
        cls = r["error"].split(":")[0] if r["error"] else ""
        host = "(invalid URL)" if cls == "invalid_url" else r["url"].split("/")[2]
        counts = per_host.setdefault(host, [0, 0, 0])
        counts[0] += 1
        counts[1] += r["status"] == 429 and not cls
        counts[2] += cls == "robots_forbidden"
    assert shown == {h: tuple(c) for h, c in per_host.items()}
    assert tab.count("#rows") == len(rows)


def test_filters(tab: Tab, rows: list[PageItem]) -> None:
    tab.select("#rows .page-size", "500")
    tab.select("#f-status", "4xx")
    want = [r for r in rows if r["status"] is not None and 400 <= r["status"] < 500]
    assert tab.count() == len(want) >= 2
    assert sorted(tab.texts("#rows td.status")) == sorted(str(r["status"]) for r in want)

    tab.select("#f-status", "")
    tab.select("#f-error", "robots_forbidden")
    assert tab.texts("#rows td.url") == [
        r["url"] for r in rows if r["error"].startswith("robots_forbidden")
    ]
    tab.select("#f-error", "(error)")
    assert tab.count() == sum(1 for r in rows if _outcome(r) == "error")

    tab.select("#f-error", "")
    hostile_host = next(r["url"] for r in rows if "/hostile/" in r["url"]).split("/")[2]
    tab.fill("#f-host", hostile_host)
    assert tab.count() == len(HOSTILE_TITLES)

    tab.fill("#f-host", "")
    tab.fill("#f-text", "PAGE 14")  # case-insensitive, in URL, title, error, ...
    want = [
        r
        for r in rows
        if any("page 14" in (r[f] or "").lower() for f in ("url", "final_url", "title", "error"))  # type: ignore[literal-required]
    ]
    assert tab.count() == len(want) >= 2  # "Page 14" and "/page/140".."/page/149"
    tab.click("#f-clear")
    assert tab.count() == len(rows)
    # A chart bar sets the filter.
    tab.click("#chart-status .bar[data-key='5xx']")
    assert tab.count() == sum(1 for r in rows if r["status"] is not None and r["status"] >= 500)


def test_sorting(tab: Tab, rows: list[PageItem]) -> None:
    tab.select("#rows .page-size", "500")
    tab.click("#rows th[data-key=status] button")
    statuses = [r["status"] for r in rows if r["status"] is not None]
    shown = tab.texts("#rows td.status")
    assert shown == [str(s) for s in sorted(statuses)] + [""] * (len(rows) - len(statuses))
    assert tab.eval("document.querySelector('#rows th[data-key=status]').ariaSort") == "ascending"
    tab.click("#rows th[data-key=status] button")
    shown = tab.texts("#rows td.status")
    assert shown == [str(s) for s in sorted(statuses, reverse=True)] + [""] * (
        len(rows) - len(statuses)
    )
    tab.click("#rows th[data-key=title] button")
    titles = sorted((r["title"] for r in rows if r["title"]), key=lambda t: t.encode("utf-16-be"))
    assert tab.texts("#rows td.title")[: len(titles)] == titles
    tab.click("#rows th[data-key=elapsed_ms] button")
    elapsed = [_number(t) for t in tab.texts("#rows td.elapsed_ms") if t]
    assert elapsed == sorted(elapsed)
    assert len(elapsed) == sum(1 for r in rows if r["elapsed_ms"] is not None)


def test_hostile_titles_render_as_text(tab: Tab, rows: list[PageItem]) -> None:
    hostile = {r["url"]: r["title"] for r in rows if "/hostile/" in r["url"]}
    assert len(hostile) == len(HOSTILE_TITLES)
    assert any("</script>" in t for t in hostile.values())
    assert any("onerror" in t for t in hostile.values())
    tab.fill("#f-text", "/hostile/")
    shown = dict(zip(tab.texts("#rows td.url"), tab.texts("#rows td.title"), strict=True))
    assert shown == hostile  # the exact text, character for character
    assert tab.eval("window.__pwned") is None
    assert tab.eval("document.querySelectorAll('img, b').length") == 0
    assert tab.eval("document.querySelectorAll('script:not([type])').length") == 1
    assert tab.eval("window.__violations") == []
    assert tab.errors == []


def test_a_file_cut_short_shows_its_complete_rows(browser: Browser, tmp_path: Path) -> None:
    rows = make_rows(2600, seed=4)
    data = export_html(rows, tmp_path / "full.html").read_bytes()
    # Cut inside row 2345 (in the third block), as a killed crawl would.
    at = data.index(script_json([rows[2345][f] for f in FIELDS]))  # type: ignore[literal-required]
    torn = tmp_path / "torn.html"
    torn.write_bytes(data[: at + 30])
    tab = browser.open(torn)
    try:
        assert "incomplete" in tab.text(".note.bad")
        assert tab.count() == 2345  # every complete row
        assert _number(tab.text("#totals [data-key=all] .count")) == tab.count()
        assert tab.errors == []
    finally:
        tab.close()


def test_a_capped_table_says_so_and_totals_count_everything(
    browser: Browser, tmp_path: Path
) -> None:
    rows = make_rows(600, seed=9)
    tab = browser.open(export_html(rows, tmp_path / "capped.html", max_rows=20))
    try:
        note = tab.text("#notes .note")
        assert re.search(r"holds 40 of the 600 rows", note), note
        assert tab.count() == 40
        assert _number(tab.text("#totals [data-key=all] .count")) == 600
    finally:
        tab.close()


def test_the_diff_page(browser: Browser, tmp_path: Path) -> None:
    old_rows = make_rows(800, seed=21)
    new_rows = [dict(r) for r in old_rows[40:]]  # 40 removed
    for r in new_rows[:25]:
        r.update(status=404, error="", title="Not found")
    new_rows += make_rows(830, seed=22)[800:]  # 30 added (other URLs)
    old = write_report(tmp_path / "old.csv", old_rows)
    new = write_report(tmp_path / "new.jsonl", new_rows)  # type: ignore[arg-type]
    out, changes = tmp_path / "changes.html", tmp_path / "changes.csv"
    assert run_cli(["pages-diff", str(old), str(new), "-o", str(changes)]).returncode == 4
    result = run_cli(["pages-diff", str(old), str(new), "-o", str(out)])
    assert result.returncode == 4, result.stderr.decode()
    kinds = Counter(r["kind"] for r in _csv_dicts(changes))
    tab = browser.open(out)
    try:
        assert tab.errors == []
        for kind, count in kinds.items():
            assert _number(tab.text(f"#totals [data-key={kind}] .count")) == count, kind
        assert tab.count() == sum(kinds.values())
        tab.select("#f-kind", "removed")
        assert tab.count() == kinds["removed"] == 40
        tab.click("#totals [data-key=newly_failing]")
        assert tab.count() == kinds["newly_failing"]
        assert set(tab.texts("#rows td.kind")) == {"newly_failing"}
    finally:
        tab.close()


def _csv_dicts(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
