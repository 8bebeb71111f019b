"""Observability through real ``scrapy crawl`` runs against the demo site."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pexpect
import pytest
import pytest_twisted

from tests.crawl import REPO_ROOT, crawl, read_report, run_cli, settings_args, write_list
from tests.support.servers import DemoSite

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mixed_list(site: DemoSite, tmp_path: Path) -> Path:
    base = site.url
    return write_list(
        tmp_path / "urls.txt",
        [
            "# a comment",
            "",
            *(f"{base}/page/{i}?obs" for i in range(1, 5)),
            f"{base}/page/2?obs",  # duplicate
            f"{base}/status/404",
            f"{base}/status/500",
            "not a url",
            "http://nowhere.test/",
            f"http://127.0.0.1:{_free_port()}/",
        ],
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON (fails on the first that is not)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict)
        assert {"timestamp", "level", "logger", "message"} <= record.keys(), line[:300]
        records.append(record)
    return records


def _check_json_log(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    messages = [r["message"] for r in records]
    assert re.match(r"Scrapy \S+ started", messages[0])  # the very first line
    assert any(m.startswith("Overridden settings:\n") for m in messages)
    dump = [m for m in messages if m.startswith("Dumping Scrapy stats:\n")]
    assert len(dump) == 1
    assert "'report/rows': 9" in dump[0]  # the whole multi-line dump, one record
    assert any(m == "Spider closed (finished)" for m in messages)
    # The failing FTP feed: an ERROR whose traceback is part of the same line.
    errors = [r for r in records if r["level"] == "ERROR" and "exc_info" in r]
    assert errors, "no traceback logged"
    assert errors[0]["message"].startswith("Error storing")
    assert errors[0]["exc_info"].startswith("Traceback (most recent call last):")
    assert "ConnectionRefusedError" in errors[0]["exc_info"]
    # Structured fields passed with extra={...}.
    duplicate = next(r for r in records if r["message"].startswith("Duplicate URL"))
    assert duplicate["line"] == 7
    assert duplicate["url"].endswith("/page/2?obs")
    opened = next(r for r in records if r["message"] == "Spider opened")
    assert opened["spider"] == "pages"  # Scrapy's extra={"spider": ...}, by name
    # One event per row, enough to rebuild the report.
    events = [r for r in records if r.get("event") == "url_finished"]
    assert len(events) == len(rows) == 9
    fields = ("url", "status", "length", "error", "attempts", "elapsed_ms", "line")
    rebuilt = sorted(tuple(e[f] for f in fields) for e in events)
    assert rebuilt == sorted(tuple(r[f] for f in fields) for r in rows)
    by_url = {e["url"]: e for e in events}
    assert by_url["not a url"]["error_class"] == "invalid_url"
    assert by_url["http://nowhere.test/"]["error_class"] == "dns_error"
    ok = next(e for e in events if e["status"] == 200)
    assert ok["error_class"] == ""
    assert "ratelimit_wait" in ok
    assert datetime.fromisoformat(records[0]["timestamp"]).tzinfo is not None


def _crawl_args(urls: Path, out: Path, extra: dict[str, Any]) -> list[str]:
    feeds = {
        str(out): {"format": "jsonlines", "overwrite": True},
        # Nothing listens there: storing it fails with a logged traceback.
        f"ftp://user:secret@127.0.0.1:{_free_port()}/report.csv": {"format": "csv"},
    }
    settings = {"FEEDS": feeds, "LOG_LEVEL": "DEBUG", **extra}
    return ["crawl", "pages", "-a", f"urls={urls}", *settings_args(settings)]


@pytest.mark.timeout(120)
def test_json_logs_on_stderr_and_stats_file(site: DemoSite, tmp_path: Path) -> None:
    """SCRAPER_LOG_JSON=1: every stderr line is JSON, first to last."""
    out = tmp_path / "report.jsonl"
    stats_file = tmp_path / "stats" / "%(name)s.json"
    args = _crawl_args(_mixed_list(site, tmp_path), out, {"PAGES_STATS_FILE": str(stats_file)})
    result = run_cli(args, env={"SCRAPER_LOG_JSON": "1"})
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    rows = read_report(out)
    _check_json_log(_json_lines(stderr), rows)

    stats = json.loads((tmp_path / "stats" / "pages.json").read_text())
    assert stats["finish_reason"] == "finished"
    assert datetime.fromisoformat(stats["start_time"]) < datetime.fromisoformat(
        stats["finish_time"]
    )
    expected = {
        "input/lines": 10,
        "input/urls": 8,
        "input/duplicates": 1,
        "input/invalid": 1,
        "report/rows": 9,
        "report/ok": 6,
        "report/status/2xx": 4,
        "report/status/4xx": 1,
        "report/status/5xx": 1,
        "report/error/invalid_url": 1,
        "report/error/dns_error": 1,
        "report/error/connection_refused": 1,
        "report/bytes": sum(r["length"] or 0 for r in rows),
        "report/latency_ms/max": max(r["elapsed_ms"] or 0 for r in rows),
    }
    assert {k: stats.get(k) for k in expected} == expected
    latencies = [stats[f"report/latency_ms/{p}"] for p in ("p50", "p90", "p99", "max")]
    assert 0 <= latencies[0] <= latencies[1] <= latencies[2] <= latencies[3]
    assert stats["report/pages_per_second"] > 0
    assert stats["feedexport/failed_count/FTPFeedStorage"] == 1


@pytest.mark.timeout(120)
def test_json_logs_in_log_file(site: DemoSite, tmp_path: Path) -> None:
    """-s PAGES_LOG_JSON=True with LOG_FILE: every line of the file is JSON."""
    out = tmp_path / "report.jsonl"
    log_file = tmp_path / "crawl.log"
    args = _crawl_args(
        _mixed_list(site, tmp_path), out, {"PAGES_LOG_JSON": True, "LOG_FILE": str(log_file)}
    )
    result = run_cli(args, env={"SCRAPER_LOG_JSON": "0"})
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    _json_lines(result.stderr.decode())  # nothing, or JSON
    _check_json_log(_json_lines(log_file.read_text(encoding="utf-8")), read_report(out))


def _slow_list(site: DemoSite, tmp_path: Path, count: int = 20) -> Path:
    return write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?slow" for i in range(count)])


# RATELIMIT_RATE=8 with 20 URLs of one host: about 2.5 s.
SLOW = {"RATELIMIT_RATE": 8, "PAGES_PROGRESS_INTERVAL": 0.5}


@pytest.mark.timeout(120)
def test_progress_lines_without_a_terminal(site: DemoSite, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    args = ["crawl", "pages", "-a", f"urls={_slow_list(site, tmp_path)}", "-O", str(out)]
    result = run_cli([*args, *settings_args(SLOW)])
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    assert "\r" not in stderr  # no bar
    done = [int(m) for m in re.findall(r"INFO: Progress: (\d+)/20 URLs \(", stderr)]
    assert len(done) >= 2, stderr[-3000:]
    assert done == sorted(done)
    assert "ETA" in stderr
    assert "INFO: Summary (finished): 20 rows in" in stderr
    assert "INFO: Summary: by status: 2xx: 20" in stderr
    assert f"INFO: Summary: report written to {out}" in stderr


@pytest.mark.timeout(120)
def test_progress_bar_on_a_terminal(site: DemoSite, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    args = ["-m", "scrapy", "crawl", "pages", "-a", f"urls={_slow_list(site, tmp_path)}"]
    args += ["-O", str(out), *settings_args(SLOW)]
    child = pexpect.spawn(
        sys.executable,
        args,
        cwd=str(REPO_ROOT),
        env={**os.environ, "COLUMNS": "120", "LINES": "40"},
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(40, 120),
        timeout=90,
    )
    try:
        child.expect(pexpect.EOF)
        output = str(child.before)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, output[-3000:]
    assert len(read_report(out)) == 20
    # The bar: drawn, with a total, advancing to the end; no progress lines.
    counts = {int(n) for n in re.findall(r"\| *(\d+)/20 \[", output)}
    assert len(counts) >= 3, output[-3000:]
    assert 20 in counts
    assert "URLs/s" in output
    assert "errors" in output
    assert "INFO: Progress:" not in output
    # The log stays readable: each log line is whole, after the bar was
    # cleared (whatever precedes it on the terminal line ends with a \r).
    log_lines = [
        segment.rstrip("\r").split("\r")[-1]  # the terminal's newline is \r\n
        for segment in output.split("\n")
        if re.search(r"\] (INFO|DEBUG|WARNING): ", segment)
    ]
    assert log_lines
    for line in log_lines:
        assert re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[| ')", line), line
        assert "%|" not in line, line
    assert any(line.endswith("INFO: Spider closed (finished)") for line in log_lines)
    assert any("INFO: Summary (finished): 20 rows" in line for line in log_lines)


@pytest.mark.timeout(120)
def test_prometheus_endpoint_mid_crawl(site: DemoSite, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    settings = {
        **SLOW,
        "RATELIMIT_RATE": 5,  # 20 URLs: about 4 s
        "PAGES_PROMETHEUS_ENABLED": True,
        "PAGES_PROMETHEUS_PORT": port,
    }
    out = tmp_path / "report.csv"
    stderr_path = tmp_path / "stderr.log"
    args = ["crawl", "pages", "-a", f"urls={_slow_list(site, tmp_path)}", "-O", str(out)]
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", *args, *settings_args(settings)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        rows_seen: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with _OPENER.open(url, timeout=5) as response:
                    body = response.read().decode()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)  # not listening yet
                continue
            match = re.search(r"^scrapy_report_rows_total (\S+)$", body, re.MULTILINE)
            if match and 0 < float(match.group(1)) < 20:
                running = proc.poll() is None
                rows_seen.append(float(match.group(1)))
                if running and len(rows_seen) >= 2 and rows_seen[-1] > rows_seen[0]:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the crawl ended before the metrics showed progress"
        assert len(rows_seen) >= 2
        assert rows_seen[-1] > rows_seen[0]
        assert "# TYPE scrapy_report_rows_total counter" in body
        assert re.search(r"^scrapy_input_urls_total \d", body, re.MULTILINE)
        assert re.search(r"^scrapy_ratelimit_wait_seconds \S+", body, re.MULTILINE)
        assert re.search(r"^scrapy_start_time_timestamp_seconds \S+", body, re.MULTILINE)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = stderr_path.read_text()
    assert f"Prometheus metrics at {url}" in log
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _OPENER.open(url, timeout=2)  # stopped with the spider


@pytest.mark.timeout(120)
def test_prometheus_free_port_logged(site: DemoSite, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1?prom"])
    args = ["crawl", "pages", "-a", f"urls={urls}", "-O", str(out)]
    result = run_cli([*args, *settings_args({"PAGES_PROMETHEUS_ENABLED": True})])
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    assert re.search(r"Prometheus metrics at http://127\.0\.0\.1:(\d+)/metrics", stderr)
    assert "0.0.0.0" not in stderr


@pytest.mark.timeout(120)
def test_debug_setting_from_environment(site: DemoSite, tmp_path: Path) -> None:
    """SCRAPER_DEBUG=1: memory debugging and a telnet console on loopback."""
    out = tmp_path / "report.csv"
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1?debug"])
    settings = settings_args({})
    # The test settings turn the telnet console off with -s (which would win).
    pair = settings.index("TELNETCONSOLE_ENABLED=False")
    del settings[pair - 1 : pair + 1]
    result = run_cli(
        ["crawl", "pages", "-a", f"urls={urls}", "-O", str(out), *settings],
        env={"SCRAPER_DEBUG": "1"},
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    assert re.search(r"Telnet console listening on 127\.0\.0\.1:\d+", stderr)
    assert "'memdebug/gc_garbage_count'" in stderr


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_url_events_carry_the_rate_limit_wait(
    site: DemoSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?wait" for i in range(6)])
    with caplog.at_level("DEBUG", logger="scraper_project.observability"):
        result = await crawl(urls, tmp_path, {"RATELIMIT_RATE": 20})
    events = [r for r in caplog.records if getattr(r, "event", None) == "url_finished"]
    assert len(events) == len(result.rows) == 6
    waits = [getattr(e, "ratelimit_wait", None) for e in events]
    assert any(w is not None and w > 0 for w in waits), waits
    assert result.stats["report/latency_ms/max"] >= result.stats["report/latency_ms/p50"]


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_url_events_off(
    site: DemoSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?off" for i in range(3)])
    with caplog.at_level("DEBUG"):
        result = await crawl(urls, tmp_path, {"PAGES_URL_LOG_LEVEL": "OFF"})
    assert len(result.rows) == 3
    assert not [r for r in caplog.records if getattr(r, "event", None) == "url_finished"]
    assert result.stats["report/bytes"] == sum(r["length"] for r in result.rows)
