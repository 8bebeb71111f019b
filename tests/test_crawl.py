"""Real crawls of the pages spider against local servers: every case of the
core issue, in process and through the ``scrapy crawl`` CLI."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from tests.crawl import crawl, read_report, run_cli, settings_args, write_list
from tests.support.rawserver import RawServer
from tests.support.servers import DemoSite


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mixed_list(
    site: DemoSite, raw: RawServer
) -> tuple[list[str], dict[str, dict[str, Any]], list[int]]:
    """The input lines, the expected outcome per normalised URL, and the
    line numbers that must become invalid_url rows."""
    base = site.url
    port = base.rsplit(":", 1)[1]
    named = f"http://site.test:{port}"
    refused = f"http://127.0.0.1:{_closed_port()}/"
    expect: dict[str, dict[str, Any]] = {
        f"{base}/page/1": {
            "status": 200,
            "title": "Page 1",
            "content_type": "text/html; charset=utf-8",
        },
        f"{named}/page/2": {"status": 200, "title": "Page 2"},
        f"{base}/status/404": {"status": 404, "title": "Status 404"},
        f"{base}/status/500": {"status": 500, "title": "Status 500"},
        f"{base}/status/503": {"status": 503},
        f"{base}/redirect/chain/3": {
            "status": 200,
            "final_url": f"{base}/page/0",
            "redirects": 4,
            "title": "Page 0",
        },
        # A redirect to another URL of the list, and that URL itself: two rows.
        f"{base}/redirect?to=/page/7": {
            "status": 200,
            "final_url": f"{base}/page/7",
            "redirects": 1,
        },
        f"{base}/page/7": {
            "status": 200,
            "final_url": f"{base}/page/7",
            "redirects": 0,
        },
        f"{base}/loop": {"error": "redirect_loop"},
        f"{base}/loop/a": {"error": "redirect_loop"},
        f"{base}/binary/png": {"status": 200, "content_type": "image/png", "title": ""},
        f"{base}/binary/pdf": {
            "status": 200,
            "content_type": "application/pdf",
            "title": "",
        },
        f"{base}/json": {
            "status": 200,
            "content_type": "application/json",
            "title": "",
        },
        f"{base}/empty": {"status": 200, "length": 0, "title": ""},
        f"{base}/gzip": {"status": 200, "title": "Gzipped"},
        f"{base}/title/decoys": {"title": "Real & true title"},
        f"{base}/charset/latin1": {"title": "Café crème"},
        f"{base}/charset/cp1251-meta": {"title": "Привет мир"},
        f"{base}/charset/utf8-bom": {"title": "Grüße"},
        f"{base}/charset/header-wins": {"title": "Señor"},
        f"{base}/charset/utf16": {"title": "Ünïcödé"},
        f"{base}/private/secret": {"error": "robots_forbidden", "attempts": 0},
        f"{base}/slow?delay=30": {"error": "timeout"},
        f"{base}/large?size=3000000": {"error": "too_large"},
        refused: {"error": "connection_refused"},
        f"http://nowhere.test:{port}/": {"error": "dns_error"},
        f"https://127.0.0.1:{port}/page/1": {"error": "tls_error"},
        f"{raw.url}/truncated": {"error": "truncated"},
        f"{raw.url}/reset": {"error": "connection_lost"},
        f"{raw.url}/close": {"error": "connection_lost"},
        f"{raw.url}/malformed": {"error": "malformed_response"},
        f"{raw.url}/ok": {"status": 200, "title": "Raw OK"},
    }
    lines = [
        "# a comment",
        "",
        *expect,
        # Equivalent spellings of URLs above: fetched once, no extra rows.
        f"{base.upper().replace('HTTP://', 'HTTP://')}/page/1",
        f"{base}/page/1#section",
        f"  {base}/page/%31  ",
        f"HTTP://SITE.TEST:{port}/page/2",
        # Invalid lines: one invalid_url row each, even when repeated.
        "ftp://example.test/file",
        "not a url",
        "not a url",
        "mailto:someone@example.test",
        "javascript:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
        "/relative/path",
        "http://127.0.0.1:99999/",
        "http://",
    ]
    invalid_lines = [i for i, line in enumerate(lines, 1) if i > len(expect) + 6 and line]
    return lines, expect, invalid_lines


CRAWL_SETTINGS = {
    "DOWNLOAD_TIMEOUT": 2,
    "DOWNLOAD_MAXSIZE": 1_000_000,
}


def check_report(
    rows: list[dict[str, Any]],
    expect: dict[str, dict[str, Any]],
    invalid_lines: list[int],
) -> None:
    def norm(value: Any) -> Any:
        return "" if value is None else str(value)

    valid = [r for r in rows if not str(r["error"]).startswith("invalid_url")]
    invalid = [r for r in rows if str(r["error"]).startswith("invalid_url")]
    counts = Counter(r["url"] for r in valid)
    assert [u for u, n in counts.items() if n > 1] == []
    assert set(counts) == set(expect), set(counts) ^ set(expect)
    assert sorted(int(r["line"]) for r in invalid) == invalid_lines
    assert len(rows) == len(expect) + len(invalid_lines)
    by_url = {r["url"]: r for r in valid}
    for url, wanted in expect.items():
        row = by_url[url]
        for key, value in wanted.items():
            if key == "error":
                assert norm(row["error"]).startswith(f"{value}:") or row["error"] == value, (
                    url,
                    row,
                )
            else:
                assert norm(row[key]) == norm(value), (url, key, row)
        if "error" not in wanted:
            assert row["error"] in ("", None), (url, row)
            assert int(row["length"]) >= 0
            assert int(row["attempts"]) == 1
            assert row["elapsed_ms"] not in ("", None)


@pytest.mark.timeout(90)
@pytest_twisted.ensureDeferred
async def test_mixed_list_in_process(site: DemoSite, raw_server: RawServer, tmp_path: Path) -> None:
    lines, expect, invalid_lines = mixed_list(site, raw_server)
    urls = write_list(tmp_path / "urls.txt", lines)
    result = await crawl(urls, tmp_path, CRAWL_SETTINGS)
    check_report(result.rows, expect, invalid_lines)
    stats = result.stats
    assert stats["input/urls"] == len(expect)
    assert stats["input/duplicates"] == 4
    assert stats["input/invalid"] == len(invalid_lines)
    assert stats["report/rows"] == len(result.rows)
    assert stats["finish_reason"] == "finished"
    assert "report/duplicates_dropped" not in stats


@pytest.mark.timeout(120)
@pytest.mark.parametrize("report", ["report.csv", "report.json", "report.jsonl"])
def test_mixed_list_cli_formats(
    site: DemoSite, raw_server: RawServer, tmp_path: Path, report: str
) -> None:
    lines, expect, invalid_lines = mixed_list(site, raw_server)
    urls = write_list(tmp_path / "urls.txt", lines)
    out = tmp_path / report
    proc = run_cli(
        [
            "crawl",
            "pages",
            "-a",
            f"urls={urls}",
            "-O",
            str(out),
            *settings_args(CRAWL_SETTINGS),
        ]
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rows = read_report(out)
    check_report(rows, expect, invalid_lines)
    log = proc.stderr.decode()
    first_dup = len(expect) + 3
    for line in range(first_dup, first_dup + 4):
        assert f"Duplicate URL on line {line}:" in log
    # A dead host's robots.txt is one DEBUG line, not an ERROR with a traceback.
    assert "Error downloading" not in log
    if report.endswith(".csv"):
        header = out.read_text(encoding="utf-8").splitlines()[0]
        assert (
            header
            == "url,final_url,status,length,title,content_type,error,attempts,elapsed_ms,redirects,line"
        )


@pytest.mark.timeout(60)
def test_stdin_list(site: DemoSite, tmp_path: Path) -> None:
    out = tmp_path / "report.jsonl"
    data = f"{site.url}/page/11\n{site.url}/page/12\r\nnot a url\n".encode()
    proc = run_cli(
        ["crawl", "pages", "-a", "urls=-", "-O", str(out), *settings_args({})],
        stdin=data,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rows = {r["line"]: r for r in read_report(out)}
    assert rows[1]["title"] == "Page 11"
    assert rows[2]["title"] == "Page 12"
    assert rows[3]["error"].startswith("invalid_url")


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_list_from_url(site: DemoSite, tmp_path: Path) -> None:
    list_url = f"{site.url}/urls?count=5"
    result = await crawl(list_url, tmp_path)
    assert sorted(r["title"] for r in result.rows) == [f"Page {i}" for i in range(5)]


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_list_from_unreachable_url_fails_visibly(tmp_path: Path) -> None:
    result = await crawl(f"http://127.0.0.1:{_closed_port()}/urls.txt", tmp_path)
    assert result.stats["finish_reason"] == "input_error"
    assert "cannot fetch URL list" in result.stats["input/error"]
    assert result.rows == []
    assert not (tmp_path / "report.jsonl").exists()  # nothing stored (issue 15)


@pytest.mark.timeout(60)
def test_bom_crlf_and_bad_bytes(site: DemoSite, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(
        b"\xef\xbb\xbf"
        + f"{site.url}/page/21\r\n".encode()
        + f"{site.url}/caf\xe9\r\n".encode("latin-1")
    )
    out = tmp_path / "report.csv"
    proc = run_cli(["crawl", "pages", "-a", f"urls={urls}", "-O", str(out), *settings_args({})])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rows = {r["line"]: r for r in read_report(out)}
    assert rows["1"]["url"] == f"{site.url}/page/21"
    assert rows["1"]["title"] == "Page 21"
    assert rows["2"]["url"] == f"{site.url}/caf%E9"
    assert rows["2"]["status"] == "404"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["-a", "urls=does/not/exist.txt"],
            {},
            "URL list not found: 'does/not/exist.txt'",
        ),
        ([], {}, "no URL list given"),
        (
            ["-a", "urls=-", "-s", "CONCURRENT_REQUESTS=abc"],
            {},
            "CONCURRENT_REQUESTS must be an integer, got 'abc'",
        ),
        (
            ["-a", "urls=-", "-s", "DOWNLOAD_TIMEOUT=-3"],
            {},
            "DOWNLOAD_TIMEOUT must be a number >= 0, got '-3'",
        ),
        (
            ["-a", "urls=-", "-a", "timeout=soon"],
            {},
            "timeout must be a positive number of seconds, got 'soon'",
        ),
        (
            ["-a", "urls=-", "-s", "RATELIMIT_RATE=fast"],
            {},
            "RATELIMIT_RATE must be a number of requests per second, got 'fast'",
        ),
        (
            ["-a", "urls=-", "-s", "RATELIMIT_DOMAINS={bad"],
            {},
            "RATELIMIT_DOMAINS must be a JSON object",
        ),
        (["-a", "urls=-", "-s", "PAGES_MAX_PARKED=0"], {}, "PAGES_MAX_PARKED must be > 0, got '0'"),
        (
            ["-a", "urls=-"],
            {"SCRAPER_CONCURRENCY": "many"},
            "CONCURRENT_REQUESTS must be an integer, got 'many' (from environment variable SCRAPER_CONCURRENCY)",
        ),
    ],
)
def test_usage_errors(args: list[str], env: dict[str, str], message: str, tmp_path: Path) -> None:
    proc = run_cli(["crawl", "pages", *args, "-O", str(tmp_path / "r.csv")], env=env, stdin=b"")
    assert proc.returncode == 2
    assert message in proc.stderr.decode()
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"SCRAPER_CONCURRENCY": "3"}, [], "3"),
        ({"SCRAPER_CONCURRENCY": "3"}, ["-s", "CONCURRENT_REQUESTS=5"], "5"),
        ({}, [], "16"),
    ],
)
def test_concurrency_from_environment(env: dict[str, str], args: list[str], expected: str) -> None:
    proc = run_cli(["settings", "--get", "CONCURRENT_REQUESTS", *args], env=env)
    assert proc.stdout.decode().strip() == expected


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_user_agents_rotate_or_stay_fixed(site: DemoSite, tmp_path: Path) -> None:
    base = len(site.requests())
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?ua" for i in range(30)])
    await crawl(urls, tmp_path)
    agents = {r["user_agent"] for r in site.requests(base) if r["path"].endswith("?ua")}
    assert len(agents) > 5
    base = len(site.requests())
    urls = write_list(tmp_path / "urls2.txt", [f"{site.url}/page/{i}?fixed" for i in range(10)])
    await crawl(urls, tmp_path, {"USER_AGENT": "MyChecker/1.0"})
    agents = {r["user_agent"] for r in site.requests(base) if r["path"].endswith("?fixed")}
    assert agents == {"MyChecker/1.0"}


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_list_is_read_lazily(site: DemoSite, tmp_path: Path) -> None:
    """A long list: the crawl starts before it is read, and only what the
    engine can take is read ahead."""
    total = 200_000
    urls = write_list(tmp_path / "urls.txt", (f"{site.url}/page/{i}" for i in range(total)))
    result = await crawl(urls, tmp_path, {"CLOSESPIDER_ITEMCOUNT": 50, "CONCURRENT_REQUESTS": 8})
    stats = result.stats
    assert stats["finish_reason"] == "closespider_itemcount"
    # When the crawl stopped, one batch of the reader plus what was in
    # flight had been read, not the whole list ...
    assert stats["input/lines_read_at_stop"] <= 5_000
    # ... and then every other line was accounted for.
    assert len(result.rows) == total
    assert stats["input/not_attempted"] >= total - 5_000


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_invalid_lines_with_undecodable_bytes_keep_their_rows(
    site: DemoSite, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(b"bad \xff line\nftp://x/\xfe\n" + f"{site.url}/page/31\n".encode())
    for report in ("report.csv", "report.jsonl"):
        result = await crawl(urls, tmp_path, report=report)
        rows = {r["line"] if isinstance(r["line"], int) else int(r["line"]): r for r in result.rows}
        assert sorted(rows) == [1, 2, 3]
        assert rows[1]["url"] == "bad %FF line"
        assert rows[1]["error"].startswith("invalid_url")
        assert rows[2]["error"].startswith("invalid_url")


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_truncated_remote_list_fails_visibly(site: DemoSite, tmp_path: Path) -> None:
    body = "".join(f"{site.url}/page/{i}\n" for i in range(3)).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n"
    with RawServer(responses={"/list.txt": head + body}) as server:
        result = await crawl(f"{server.url}/list.txt", tmp_path)
    assert result.stats["finish_reason"] == "input_error"
    assert "ended" in result.stats["input/error"]
    # The lines that did arrive are still reported.
    assert sorted(r["title"] for r in result.rows) == ["Page 0", "Page 1", "Page 2"]
