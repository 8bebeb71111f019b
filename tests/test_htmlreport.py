"""The HTML report's writer (htmlreport.py) and ``scrapy pages-report``,
without a browser: what the file holds. tests/test_htmlreport_browser.py
checks what a browser shows."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from scraper_project.commands.cluster import merge_reports
from scraper_project.htmlreport import (
    CHUNK_ROWS,
    HtmlItemExporter,
    _bucket,
    _bucket_value,
    error_class,
    host_of,
    read_settings,
    script_json,
)
from scraper_project.items import PageItem
from scraper_project.observability.latency import percentile
from tests.crawl import run_cli
from tests.support.htmlpage import read_page
from tests.support.reports import BAD_REPORTS, HOSTILE_TITLES, export_html, make_rows, write_report


@pytest.mark.parametrize(
    "text", [*HOSTILE_TITLES, "a</script", "<!--", "-->", "]]>", "\u2029", "&amp;"]
)
def test_script_json_is_inert_and_round_trips(text: str) -> None:
    data = script_json({"t": text, "l": [text]})
    assert b"<" not in data
    assert b">" not in data
    assert b"&" not in data
    assert "\u2028".encode() not in data
    assert json.loads(data) == {"t": text, "l": [text]}


def test_script_json_keeps_undecodable_bytes_as_escapes() -> None:
    text = b"caf\xe9".decode("utf-8", "surrogateescape")  # a report that was not UTF-8
    data = script_json([text])
    assert data == b'["caf\\udce9"]'


def test_hostile_rows_cannot_leave_their_block(tmp_path: Path) -> None:
    rows = make_rows(300, seed=3)
    for i, title in enumerate(HOSTILE_TITLES):
        rows[i]["title"] = title
        rows[i]["url"] = f"http://h.test/{title}"
        rows[i]["error"] = f"error: {title}"
    path = export_html(rows, tmp_path / "r.html")
    # Where the data is, "</" only closes the blocks (and the page), and
    # nothing opens a comment (HTML's script-data rules, stricter than
    # Python's HTMLParser below).
    data = path.read_text("utf-8").split('id="report-meta">', 1)[1]
    blocks = data.count('<script type="application/json"') + 1
    assert data.count("</script>") == blocks
    assert data.lower().count("</") == blocks + 2  # </body></html>
    assert "<!--" not in data
    page = read_page(path)
    # Every row came back exactly, each block parsed on its own ...
    assert page.dicts() == rows
    # ... and the page holds no element but its own: one script that runs,
    # the JSON blocks, and no <img> or other markup from the data.
    runnable = [s for s in page.scripts if "type" not in s]
    assert len(runnable) == 1
    assert all(s.get("type") == "application/json" for s in page.scripts[1:])
    assert "img" not in page.tags
    assert "b" not in page.tags


def test_csp_allows_only_the_page_own_script_and_style(tmp_path: Path) -> None:
    text = export_html(make_rows(5), tmp_path / "r.html").read_text("utf-8")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert policy is not None
    rules = dict(r.strip().split(" ", 1) for r in policy.group(1).split(";"))
    assert rules["default-src"] == "'none'"
    for tag, rule in (("script", "script-src"), ("style", "style-src")):
        body = re.search(f"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert rules[rule] == f"'sha256-{digest}'"
    assert "http://" not in text.split('<script type="application/json"', 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_rows_are_written_in_bounded_chunks(tmp_path: Path) -> None:
    rows = make_rows(2 * CHUNK_ROWS + 10)
    page = read_page(export_html(rows, tmp_path / "r.html"))
    blocks = [s for s in page.scripts if s.get("class") == "rows"]
    assert len(blocks) == 3
    assert len(page.rows) == len(rows)


def _expected_summary(rows: list[PageItem]) -> dict[str, Any]:
    """The summary recomputed from the rows, the obvious way."""
    outcomes: Counter[str] = Counter()
    status_classes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    hosts: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, []])
    for row in rows:
        status, error = row["status"], row["error"]
        cls = error.split(":")[0] if error else ""
        scls = "none" if status is None else f"{status // 100}xx"
        status_classes[scls] += 1
        if cls:
            errors[cls] += 1
            outcomes["unchecked" if cls in ("not_attempted", "cancelled") else "error"] += 1
        else:
            outcomes[scls] += 1
        host = "(invalid URL)" if cls == "invalid_url" else row["url"].split("/")[2]
        h = hosts[host]
        h[0] += 1
        if not cls and status is not None and status < 400:
            h[1] += 1
        elif not cls and status is not None and status < 500:
            h[2] += 1
            h[5] += status == 429
        elif not cls and status is not None:
            h[3] += 1
        elif cls == "robots_forbidden":
            h[6] += 1
        elif cls not in ("not_attempted", "cancelled"):
            h[4] += 1
        if row["elapsed_ms"] is not None:
            h[7].append(row["elapsed_ms"])
    return {
        "outcomes": outcomes,
        "status_classes": status_classes,
        "errors": errors,
        "hosts": hosts,
    }


def test_summary_counts_every_row(tmp_path: Path) -> None:
    rows = make_rows(5000, seed=7, hosts=12)
    summary = read_page(export_html(rows, tmp_path / "r.html")).summary
    assert summary is not None
    want = _expected_summary(rows)
    assert summary["rows"] == len(rows)
    assert {k: v for k, v in summary["outcomes"].items() if v} == dict(want["outcomes"])
    assert summary["status_classes"] == dict(want["status_classes"])
    assert summary["error_classes"] == dict(want["errors"])
    assert summary["bytes"] == sum(r["length"] or 0 for r in rows)
    latencies = sorted(r["elapsed_ms"] for r in rows if r["elapsed_ms"] is not None)
    lat = summary["latency"]
    assert lat["count"] == len(latencies)
    for p in (50, 90, 99):
        assert lat[f"p{p}"] == percentile(latencies, p)  # exact below 100,000 rows
    assert lat["max"] == latencies[-1]
    got = {h[0]: h[1:] for h in summary["hosts"]}
    assert set(got) == set(want["hosts"])
    for host, counts in want["hosts"].items():
        assert got[host][:7] == counts[:7], host
        values = sorted(counts[7])
        if values:
            true_median = percentile(values, 50)
            assert abs(got[host][7] - true_median) <= true_median * 0.032 + 1, host
    # Sorted by URLs, most first.
    assert [h[1] for h in summary["hosts"]] == sorted(
        (h[1] for h in summary["hosts"]), reverse=True
    )


def test_latency_buckets_stay_within_their_bound() -> None:
    for ms in [*range(5000), *range(5000, 3_000_000, 997)]:
        assert abs(_bucket_value(_bucket(ms)) - ms) <= ms / 32, ms
    assert [_bucket(ms) for ms in (63, 64, 65, 127, 128)] == [63, 64, 64, 95, 96]


def test_hosts_and_error_classes() -> None:
    assert host_of("https://User:x@Example.COM:8443/a?b#c") == "example.com:8443"
    assert host_of("http://[::1]:8080/") == "[::1]:8080"
    assert host_of("not a url") == "(invalid URL)"
    assert host_of("http:///nohost") == "(invalid URL)"
    assert error_class("timeout: took 10 s") == "timeout"
    assert error_class("") == ""


def test_caps_keep_failing_rows_and_count_everything(tmp_path: Path) -> None:
    rows = make_rows(2000, seed=5, hosts=40)
    page = read_page(export_html(rows, tmp_path / "r.html", max_rows=50, max_hosts=10))
    summary = page.summary
    assert summary is not None
    failing = [
        r
        for r in rows
        if (r["error"] and not r["error"].startswith(("not_attempted", "cancelled")))
        or (not r["error"] and r["status"] is not None and r["status"] >= 400)
    ]
    others = [r for r in rows if r not in failing]
    kept = page.dicts()
    assert kept == [r for r in rows if r in failing[:50] or r in others[:50]]
    assert summary["kept_rows"] == 100
    assert summary["dropped_rows"] == len(rows) - 100
    assert summary["rows"] == len(rows)
    assert len(summary["hosts"]) == 10
    other = summary["other_hosts"]
    assert other[0] == "(other hosts)"
    assert other[1] + sum(h[1] for h in summary["hosts"]) == len(rows)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PAGES_HTML_MAX_ROWS": "many"}, "PAGES_HTML_MAX_ROWS must be an integer, got 'many'"),
        ({"PAGES_HTML_MAX_ROWS": -1}, "got -1"),
        ({"PAGES_HTML_MAX_HOSTS": "1.5"}, "PAGES_HTML_MAX_HOSTS must be an integer, got '1.5'"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        read_settings(Settings(settings))


def test_settings_defaults_and_zero() -> None:
    assert read_settings(Settings()) == {"max_rows": 50_000, "max_hosts": 10_000}
    zero = read_settings(Settings({"PAGES_HTML_MAX_ROWS": "0", "PAGES_HTML_MAX_HOSTS": 0}))
    assert zero == {"max_rows": 0, "max_hosts": 0}


def test_exporter_needs_the_report_columns() -> None:
    with pytest.raises(UsageError, match="url"):
        HtmlItemExporter(io.BytesIO(), fields_to_export=["title", "status", "error"])


# -- scrapy pages-report ------------------------------------------------------


def _report(args: list[str]) -> tuple[int, str]:
    result = run_cli(["pages-report", *args], timeout=60)
    return result.returncode, result.stderr.decode("utf-8", "replace")


def test_pages_report_reads_every_format(tmp_path: Path) -> None:
    rows = make_rows(1500, seed=11)
    pages = {}
    for name in ("r.csv", "r.jsonl", "r.json", "r.csv.gz"):
        source = write_report(tmp_path / name, rows)
        out = tmp_path / f"{name}.html"
        code, err = _report([str(source), "-o", str(out)])
        assert code == 0, err
        assert f"{len(rows):,} rows" in err
        pages[name] = read_page(out)
    for name, page in pages.items():
        # The CSV's "'" before formula-looking text is taken off again.
        assert page.dicts() == rows, name
        assert page.meta["source"] == name
    summaries = [{k: v for k, v in p.summary.items() if k != "finished"} for p in pages.values()]  # type: ignore[union-attr]
    assert all(s == summaries[0] for s in summaries)


def test_pages_report_of_a_merged_cluster_report(tmp_path: Path) -> None:
    rows = make_rows(400, seed=2)
    one = write_report(tmp_path / "report-1.csv", rows[::2])
    two = write_report(tmp_path / "report-2.jsonl", rows[1::2] + rows[:5])  # 5 fetched twice
    merged = tmp_path / "merged.csv"
    assert merge_reports([one, two], merged)["rows"] == len(rows)
    code, err = _report([str(merged), "-o", str(tmp_path / "m.html")])
    assert code == 0, err
    page = read_page(tmp_path / "m.html")
    assert sorted(page.dicts(), key=lambda r: r["line"]) == rows


def test_pages_report_skips_and_counts_a_torn_last_row(tmp_path: Path) -> None:
    source = write_report(tmp_path / "r.csv", make_rows(100))
    data = source.read_bytes()
    source.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 20])  # kill -9
    code, err = _report([str(source), "-o", str(tmp_path / "r.html")])
    assert code == 0, err
    assert "1 damaged rows skipped" in err
    summary = read_page(tmp_path / "r.html").summary
    assert summary is not None
    assert (summary["rows"], summary["damaged_rows"]) == (99, 1)


@pytest.mark.parametrize(("name", "content", "message"), BAD_REPORTS)
def test_pages_report_bad_input_is_one_line_exit_2(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    out = tmp_path / "keep.html"
    out.write_text("an earlier report")
    code, err = _report([str(source), "-o", str(out)])
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("scrapy pages-report: error: ")
    assert message in err
    assert out.read_text() == "an earlier report"  # never clobbered
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_pages_report_bad_output_or_setting(tmp_path: Path) -> None:
    source = write_report(tmp_path / "r.csv", make_rows(10))
    code, err = _report([str(source), "-o", str(tmp_path / "r.pdf")])
    assert (code, err.count("\n")) == (2, 1)
    assert "the output must be an .html file" in err
    code, err = _report(
        [str(source), "-o", str(tmp_path / "r.html"), "-s", "PAGES_HTML_MAX_ROWS=x"]
    )
    assert (code, err.count("\n")) == (2, 1)
    assert "PAGES_HTML_MAX_ROWS must be an integer, got 'x'" in err
    code, err = _report([str(source)])
    assert code == 2
    assert "-o OUT.html" in err


def test_appending_to_an_html_report_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = export_html(make_rows(3), tmp_path / "r.html")
    with path.open("ab") as f, caplog.at_level("WARNING"):
        HtmlItemExporter(f).start_exporting()
    assert "use -O (overwrite) for an HTML report" in caplog.text
    caplog.clear()
    with (tmp_path / "new.html").open("ab") as f, caplog.at_level("WARNING"):
        HtmlItemExporter(f).start_exporting()
    assert caplog.text == ""
