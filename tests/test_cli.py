"""The command-line contract of ``scrapy crawl pages`` (issue 15): exit codes,
one-line errors before the banner, nothing clobbered.

Every test runs the real ``scrapy`` command in a subprocess against local
servers (the demo site, the raw server): real exit codes, real files, real
logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import UsageError

from tests.crawl import REPO_ROOT, read_report, run_cli, settings_args, write_list
from tests.support.rawserver import RawServer
from tests.support.servers import DemoSite

HEADER = "url,final_url,status,length,title,content_type,error,attempts,elapsed_ms,redirects,line"
BANNER = "Scrapy 2.19"  # the first line Scrapy logs: "Scrapy 2.19.0 started (bot: ...)"


class LateCheckExtension:
    """An extension that finds a bad setting only when the crawl builds it
    (no ``check_settings``): enabled with ``-s EXTENSIONS=...``."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> LateCheckExtension:
        raise UsageError("LATE_SETTING must be a late value, got 'x'", print_help=False)


class CrashingExtension:
    """An extension with a bug: the crawl cannot start."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrashingExtension:
        raise RuntimeError("a bug in an extension")


def crawl_cli(args: list[str], *, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_cli(["crawl", "pages", *args], stdin=stdin)


def one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The single line a usage error prints, checked to be the only output."""
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("scrapy crawl: error: "), lines
    assert BANNER not in err
    assert "Usage" not in err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def kept(tmp_path: Path) -> dict[str, Path]:
    """Existing reports, which a failed run must leave as they are."""
    files = {
        "csv": tmp_path / "report.csv",
        "json": tmp_path / "report.json",
        "jsonl": tmp_path / "report.jsonl",
    }
    files["csv"].write_text(f"{HEADER}\nhttp://old.test/,,,,,,,0,,0,1\n")
    files["json"].write_text('[{"url": "http://old.test/"}]\n')
    files["jsonl"].write_text('{"url": "http://old.test/"}\n')
    return files


def assert_kept(kept: dict[str, Path]) -> None:
    assert kept["csv"].read_text().startswith(f"{HEADER}\nhttp://old.test/")
    assert kept["json"].read_text() == '[{"url": "http://old.test/"}]\n'
    assert kept["jsonl"].read_text() == '{"url": "http://old.test/"}\n'


# -- 1. an unreadable list: exit 2, the report left as it was --------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["refused", "404"])
def test_unreadable_list_url_is_exit_2_and_keeps_the_report(
    site: DemoSite, kept: dict[str, Path], where: str
) -> None:
    if where == "refused":
        with RawServer() as raw:  # a port that was just closed: nothing listens
            list_url = f"{raw.url}/list.txt"
    else:
        list_url = f"{site.url}/no/such/list.txt"
    for report in kept.values():
        proc = crawl_cli(["-a", f"urls={list_url}", "-O", str(report), *settings_args({})])
        err = proc.stderr.decode()
        assert proc.returncode == 2, err[-3000:]
        assert "cannot fetch URL list" in err
        assert "'finish_reason': 'input_error'" in err
        assert f"Summary: no report written, {report} left as it was" in err
        assert "Exit code 2" in err.splitlines()[-1]
    assert_kept(kept)


# -- 2, 3, 6, 7. usage errors: one line, before the banner, exit 2 ----------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "ROBOTSTXT_OBEY=maybe"], "ROBOTSTXT_OBEY must be a boolean (true/false, 1/0), got 'maybe'"),
        (["-s", "RATELIMIT_ENABLED=maybe"], "RATELIMIT_ENABLED must be a boolean"),
        (["-s", "PAGES_ROTATE_USER_AGENT=maybe"], "PAGES_ROTATE_USER_AGENT must be a boolean"),
        (["-s", "PAGES_FLUSH_INTERVAL=x"], "PAGES_FLUSH_INTERVAL must be a number, got 'x'"),
        (["-s", "DOWNLOAD_MAXSIZE=x"], "DOWNLOAD_MAXSIZE must be an integer, got 'x'"),
        (["-s", "RESOLVE_HOSTS=notjson"], "RESOLVE_HOSTS must be a JSON object"),
        (["-s", "PAGES_ERROR_MAX_LENGTH=-1"], "PAGES_ERROR_MAX_LENGTH must be >= 0, got '-1'"),
        (["-s", "DOWNLOAD_TLS_MIN_VERSION=TLSv9"], "DOWNLOAD_TLS_MIN_VERSION must be one of"),
        (["-s", "RETRY_HTTP_CODES=[500]"], "RETRY_HTTP_CODES must be HTTP statuses"),
        (["-s", "LOG_FILE=/no/such/folder/crawl.log"], "LOG_FILE must be a file in an existing folder"),
        (["-s", "PAGES_FAIL_ON=erorr"], "PAGES_FAIL_ON: unknown condition 'erorr' (did you mean error?)"),
        (["-s", "RATELIMT_RATE=5"], "unknown setting RATELIMT_RATE (did you mean RATELIMIT_RATE?)"),
        (["-s", "PAGES_HTML_MAX_ROWS=-5", "-O", "report.html"], "PAGES_HTML_MAX_ROWS must be >= 0, got '-5'"),
        (["-s", "PAGES_NO_SUCH=1"], "unknown setting PAGES_NO_SUCH: no such setting"),
        (["-a", "timout=5"], "unknown spider argument 'timout' (did you mean timeout?)"),
        (["-s", "FAKE_USERAGENT_BROWSERS=Nope"], "FAKE_USERAGENT_BROWSERS: unknown browser 'Nope'"),
        (["-s", "FAKE_USERAGENT_BROWSERS=chrome,Firefx"], "unknown browser 'Firefx' (did you mean Firefox?)"),
    ],
)  # fmt: skip
def test_bad_settings_and_arguments_are_one_line_before_the_banner(
    tmp_path: Path, kept: dict[str, Path], args: list[str], message: str
) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    proc = crawl_cli(["-a", f"urls={urls}", "-O", str(kept["csv"]), *args])
    assert message in one_error_line(proc)
    assert_kept(kept)


@pytest.mark.timeout(60)
def test_missing_list_message_fits_the_path(tmp_path: Path) -> None:
    absolute = tmp_path / "nowhere.txt"
    line = one_error_line(crawl_cli(["-a", f"urls={absolute}"]))
    assert line.endswith(f"URL list not found: {str(absolute)!r}")  # no "relative paths..."
    line = one_error_line(crawl_cli(["-a", "urls=no/such/list.txt"]))
    assert f"relative paths resolve in {str(REPO_ROOT)!r}" in line


@pytest.mark.timeout(60)
def test_unknown_spider_is_a_usage_error() -> None:
    assert "unknown spider 'page' (did you mean pages?)" in one_error_line(
        run_cli(["crawl", "page", "-a", "urls=-"])
    )


@pytest.mark.timeout(120)
def test_a_setting_found_bad_during_the_crawl_is_one_error_and_exit_2(
    tmp_path: Path, kept: dict[str, Path]
) -> None:
    """A component that checks its setting only when the crawl builds it: the
    error is one log line (no traceback, no "Task exception was never
    retrieved") and exit code 2; no report is opened."""
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    extensions = '{"tests.test_cli.LateCheckExtension": 50}'
    log = tmp_path / "crawl.log"
    for extra in ([], ["-s", f"LOG_FILE={log}"]):
        proc = crawl_cli(
            ["-a", f"urls={urls}", "-O", str(kept["csv"]), "-s", f"EXTENSIONS={extensions}", *extra]
        )
        err = proc.stderr.decode()
        assert proc.returncode == 2, err[-3000:]
        assert "Traceback" not in err
        assert "never retrieved" not in err
        assert err.count("LATE_SETTING must be a late value, got 'x'") == 1, err[-3000:]
    assert "ERROR: LATE_SETTING must be a late value" in log.read_text()
    assert_kept(kept)


# -- 4. partial reports: exit 3 --------------------------------------------------


@pytest.mark.timeout(90)
def test_deadline_gives_a_partial_report_and_exit_3(site: DemoSite, tmp_path: Path) -> None:
    lines = [f"{site.url}/page/{i}?cli-deadline" for i in range(5)]
    lines += [f"{site.url}/hang?cli-deadline={i}" for i in range(5)]
    urls = write_list(tmp_path / "urls.txt", lines)
    out = tmp_path / "report.csv"
    proc = crawl_cli(["-a", f"urls={urls}", "-a", "timeout=3", "-O", str(out), *settings_args({})])
    err = proc.stderr.decode()
    assert proc.returncode == 3, err[-3000:]
    rows = read_report(out)
    assert len(rows) == 10
    errors = sorted(r["error"].split(":")[0] for r in rows)
    assert errors.count("") == 5
    assert set(errors) - {""} <= {"cancelled", "not_attempted"}
    assert "Exit code 3: partial report" in err.splitlines()[-1]


@pytest.mark.timeout(120)
def test_sigterm_keeps_the_last_response_of_a_pending_retry(site: DemoSite, tmp_path: Path) -> None:
    """A 503 with Retry-After: 30 is retried in 30 s; SIGTERM before that.
    The row reports the 503 (status, length, title, content type), exit 3."""
    path = "/status/503?retry_after=30&cli-pending"
    urls = write_list(tmp_path / "urls.txt", [site.url + path])
    out = tmp_path / "report.jsonl"
    settings = settings_args({"RETRY_ENABLED": True, "RETRY_TIMES": 2})
    since = len(site.requests())
    with (tmp_path / "stderr.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "pages", "-a", f"urls={urls}",
             "-O", str(out), *settings],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not [r for r in site.requests(since) if r["path"] == path]:
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)  # the response reaches the retry middleware
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 3, (tmp_path / "stderr.log").read_text()[-3000:]
    [row] = read_report(out)
    assert row["status"] == 503
    assert row["title"] == "Status 503"
    assert row["content_type"].startswith("text/html")
    assert row["length"] > 0
    assert row["error"].startswith("cancelled: retry pending after 503 when the crawl stopped")
    assert row["attempts"] == 1


# -- PAGES_FAIL_ON: exit 4 -------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("fail_on", "code", "summary"),
    [
        ("error,4xx,5xx", 4, "3 rows match PAGES_FAIL_ON=error,4xx,5xx (error: 1, 4xx: 1, 5xx: 1)"),
        ("404", 4, "1 row match PAGES_FAIL_ON=404 (404: 1)"),
        ("error,4xx,-invalid_url,-404", 0, None),
        ("", 0, None),
    ],
)
def test_fail_on_exits_4_with_a_summary(
    site: DemoSite, tmp_path: Path, fail_on: str, code: int, summary: str | None
) -> None:
    urls = write_list(
        tmp_path / "urls.txt",
        [f"{site.url}/page/1", f"{site.url}/status/404", f"{site.url}/status/500", "not a url"],
    )
    out = tmp_path / "report.csv"
    proc = crawl_cli(
        ["-a", f"urls={urls}", "-O", str(out), *settings_args({"PAGES_FAIL_ON": fail_on})]
    )
    err = proc.stderr.decode()
    assert proc.returncode == code, err[-3000:]
    assert len(read_report(out)) == 4
    last = err.splitlines()[-1]
    if summary is None:
        assert "Exit code 0" in last
        assert "'finish_reason': 'finished'" in err
    else:
        assert last.endswith(f"Exit code 4: {summary}")
        assert "'finish_reason': 'fail_on'" in err


# -- 5. -h -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_help_documents_arguments_and_exit_codes() -> None:
    proc = run_cli(["crawl", "pages", "-h"])
    assert proc.returncode == 0
    text = proc.stdout.decode()
    for needle in ("urls=VALUE", "timeout=VALUE", "Exit codes:", "PAGES_FAIL_ON", "130"):
        assert needle in text
    for code in range(5):
        assert f"\n  {code}    " in text


# -- 8. appending and empty lists -------------------------------------------------


@pytest.mark.timeout(120)
def test_append_writes_one_header_and_empty_lists_keep_theirs(
    site: DemoSite, tmp_path: Path
) -> None:
    out = tmp_path / "report.csv"
    for i in (1, 2):
        urls = write_list(tmp_path / f"urls{i}.txt", [f"{site.url}/page/{i}"])
        proc = crawl_cli(["-a", f"urls={urls}", "-o", str(out), *settings_args({})])
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER
    assert HEADER not in lines[1:]
    assert [r["title"] for r in read_report(out)] == ["Page 1", "Page 2"]
    # An empty list (or empty stdin): a report with its header, or [].
    empty = write_list(tmp_path / "empty.txt", [])
    proc = crawl_cli(["-a", f"urls={empty}", "-O", str(tmp_path / "e.csv"), *settings_args({})])
    assert proc.returncode == 0
    assert (tmp_path / "e.csv").read_text().splitlines() == [HEADER]
    proc = crawl_cli(
        ["-a", "urls=-", "-O", str(tmp_path / "e.json"), *settings_args({})], stdin=b""
    )
    assert proc.returncode == 0
    assert read_report(tmp_path / "e.json") == []


@pytest.mark.timeout(60)
def test_appending_to_a_report_it_would_spoil_is_refused(tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    other = tmp_path / "other.csv"
    other.write_text("name,price\nx,1\n")
    line = one_error_line(crawl_cli(["-a", f"urls={urls}", "-o", str(other)]))
    assert "its first line is not this report's header" in line
    array = tmp_path / "report.json"
    array.write_text("[]")
    assert "two arrays" in one_error_line(crawl_cli(["-a", f"urls={urls}", "-o", str(array)]))
    page = tmp_path / "report.html"
    page.write_text("<!doctype html><title>old</title>")
    assert "two pages" in one_error_line(crawl_cli(["-a", f"urls={urls}", "-o", str(page)]))
    assert other.read_text() == "name,price\nx,1\n"
    assert array.read_text() == "[]"
    assert page.read_text() == "<!doctype html><title>old</title>"


# -- 12. undeclared pages decoded as browsers do -----------------------------------


def _page(body: bytes, content_type: bytes = b"text/html") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type
    head += b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    return head + body


@pytest.mark.timeout(90)
def test_titles_of_undeclared_pages_are_decoded_as_browsers_do(tmp_path: Path) -> None:
    html = "<html><head><title>{}</title></head><body>{}</body></html>"
    responses = {
        "/cp1252": _page(html.format("Café crème", "Ça coûte 5 €").encode("cp1252")),
        "/utf8": _page(html.format("Café crème", "déjà").encode("utf-8")),
        "/meta": _page(
            ('<meta charset="windows-1251">' + html.format("Привет", "мир")).encode("cp1251")
        ),
        "/latin1-header": _page(
            html.format("Señor €", "x").encode("cp1252"), b"text/html; charset=iso-8859-1"
        ),
    }
    with RawServer(responses=responses) as raw:
        urls = write_list(tmp_path / "urls.txt", [raw.url + p for p in responses])
        out = tmp_path / "report.jsonl"
        settings = settings_args({"ROBOTSTXT_OBEY": False})
        proc = crawl_cli(["-a", f"urls={urls}", "-O", str(out), *settings])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    titles = {r["url"].rsplit("/", 1)[1]: r["title"] for r in read_report(out)}
    assert titles == {
        "cp1252": "Café crème",
        "utf8": "Café crème",
        "meta": "Привет",
        "latin1-header": "Señor €",  # iso-8859-1 is windows-1252 (Encoding Standard)
    }


@pytest.mark.timeout(60)
def test_an_unknown_setting_unlike_any_known_one_is_a_warning(tmp_path: Path) -> None:
    """Perhaps another plugin's setting: said once, before the banner, and the
    crawl runs."""
    empty = write_list(tmp_path / "empty.txt", [])
    proc = crawl_cli(["-a", f"urls={empty}", "-O", str(tmp_path / "r.csv"), "-s", "ZQX_PLUGIN=1"])
    err = proc.stderr.decode()
    assert proc.returncode == 0, err[-3000:]
    first = err.splitlines()[0]
    assert (
        first
        == "scrapy crawl: warning: unknown setting ZQX_PLUGIN (not one of Scrapy's or this project's)"
    )
    assert err.index(first) < err.index(BANNER)


@pytest.mark.timeout(60)
def test_an_unexpected_error_is_exit_1_with_one_traceback(tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", ["http://site.test/"])
    extensions = '{"tests.test_cli.CrashingExtension": 50}'
    proc = crawl_cli(["-a", f"urls={urls}", "-s", f"EXTENSIONS={extensions}"])
    err = proc.stderr.decode()
    assert proc.returncode == 1, err[-3000:]
    assert err.count("Traceback") == 1, err[-3000:]
    assert "RuntimeError: a bug in an extension" in err
    assert "never retrieved" not in err
