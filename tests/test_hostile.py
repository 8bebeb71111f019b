"""Hostile input and hostile servers (issue 10): bombs, drips, malformed
HTTP, spreadsheet formulas, credentials, SSRF. The invariants: one row per
URL, nothing crashes, memory stays bounded."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from scraper_project.middlewares.redirect import LoopAwareRedirectMiddleware
from tests.crawl import REPO_ROOT, crawl, settings_args, write_list
from tests.support.rawserver import BOMB_ENCODINGS, RawServer, bomb_body
from tests.support.servers import DemoSite

FORMULA_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"
    b'<title>=HYPERLINK("http://evil.test","x")</title>'
)


def _peak_rss_mb(proc: subprocess.Popen[bytes], until: float) -> float:
    """Sample the child's VmHWM until it exits (or ``until``)."""
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None and time.monotonic() < until:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.05)
    return peak / 1024


@pytest.fixture(scope="module")
def hostile() -> RawServer:
    with RawServer(responses={"/formula": FORMULA_PAGE}) as server:
        yield server  # type: ignore[misc]


@pytest.mark.timeout(180)
def test_hostile_list(site: DemoSite, hostile: RawServer, tmp_path: Path) -> None:
    raw, demo = hostile.url, site.url
    port = demo.rsplit(":", 1)[1]
    expect: dict[str, str | tuple[str, ...] | None] = {
        f"{raw}/bomb/gzip": "too_large",
        f"{raw}/bomb/deflate": "too_large",
        f"{raw}/bomb/br": "too_large",
        f"{raw}/bomb/zstd": "too_large",
        f"{raw}/bomb/nested": "too_large",
        f"{raw}/endless": ("too_large", "timeout"),  # whichever limit comes first
        f"{raw}/slow-drip": "timeout",
        f"{raw}/header-drip": "timeout",
        f"{raw}/huge-headers": None,  # any outcome, one row
        f"{raw}/malformed": "malformed_response",
        f"{raw}/garbage": None,
        f"{raw}/reset": "connection_lost",
        f"{raw}/truncated": "truncated",
        f"{raw}/formula": "",
        f"{demo}/loop": "redirect_loop",
        f"{demo}/title/decoys": "",
        f"{demo}/title/long": "",
        f"{demo}/title/control": "",
        f"{demo}/charset/utf16": "",
        f"{demo}/redirect?to=ftp://files.test/x": "",  # not followed: the 302 is the row
        f"http://***@site.test:{port}/page/41": "",
    }
    lines = [*expect]
    lines[-1] = f"http://user:hunter2@site.test:{port}/page/41"
    long_url = f"{demo}/page/1?" + "x" * 3000
    lines += [long_url, '=HYPERLINK("http://evil.test")', "+1-2", "@SUM(A1)", "-cmd"]
    urls = write_list(tmp_path / "urls.txt", lines)
    out = tmp_path / "report.csv"
    args = ["crawl", "pages", "-a", f"urls={urls}", "-O", str(out)]
    args += settings_args({"DOWNLOAD_TIMEOUT": 4, "LOG_LEVEL": "DEBUG"})
    for name in BOMB_ENCODINGS:  # built on first use: seconds of CPU, not the crawl's
        bomb_body(name)
    log = tmp_path / "crawl.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", *args],
            cwd=REPO_ROOT,
            stderr=err,
            stdout=subprocess.DEVNULL,
        )
    peak = _peak_rss_mb(proc, time.monotonic() + 150)
    assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    print(f"hostile run: peak RSS {peak:.0f} MB")
    assert peak < 300, peak
    text = out.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(lines)
    by_url = {r["url"]: r for r in rows}
    for url, error in expect.items():
        row = by_url[url]
        if error is not None:
            allowed = error if isinstance(error, tuple) else (error,)
            assert row["error"].split(":")[0] in allowed, (url, row)
    assert by_url[f"{demo}/redirect?to=ftp://files.test/x"]["status"] == "302"
    assert by_url[f"{raw}/formula"]["title"].startswith("'=HYPERLINK(")
    invalid = [r for r in rows if r["error"].startswith("invalid_url")]
    assert len(invalid) == 5
    # Spreadsheet safety: no cell a spreadsheet would run.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    # Credentials never echoed.
    assert "hunter2" not in text
    assert "hunter2" not in log.read_text()
    assert "\x00" not in text


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_json_keeps_exact_text(hostile: RawServer, tmp_path: Path) -> None:
    urls = write_list(tmp_path / "u.txt", [f"{hostile.url}/formula", "=1+1"])
    result = await crawl(urls, tmp_path, report="report.json")
    titles = {r["title"] for r in result.rows}
    assert '=HYPERLINK("http://evil.test","x")' in titles
    assert "=1+1" in {r["url"] for r in result.rows}


@pytest.mark.timeout(60)
@pytest_twisted.ensureDeferred
async def test_ssrf_guard(site: DemoSite, tmp_path: Path) -> None:
    port = site.url.rsplit(":", 1)[1]
    since = len(site.requests())
    lines = [
        f"{site.url}/page/51?ssrf",  # loopback literal
        f"http://[::1]:{port}/page/52?ssrf",
        f"http://metadata.test:{port}/latest/meta-data/",  # 169.254.169.254
        f"http://intranet.test:{port}/",  # 10.0.0.7
        f"http://local.test:{port}/page/53?ssrf",  # a name for 127.0.0.1
    ]
    hosts = {
        "metadata.test": "169.254.169.254",
        "intranet.test": "10.0.0.7",
        "local.test": "127.0.0.1",
    }
    settings = {
        "ROBOTSTXT_OBEY": False,
        "PAGES_BLOCK_PRIVATE_ADDRESSES": True,
        "RESOLVE_HOSTS": hosts,
    }
    result = await crawl(write_list(tmp_path / "u.txt", lines), tmp_path, settings)
    assert len(result.rows) == 5
    for row in result.rows:
        assert row["error"].startswith("blocked_address"), row
    assert not [r for r in site.requests(since) if "ssrf" in r["path"]]

    # A host allowed through PAGES_ALLOWED_ADDRESSES (standing for a public
    # one) that redirects to an internal name: refused on that hop.
    since = len(site.requests())
    hop = f"{site.url}/redirect?to=http://intranet.test:{port}/x"
    settings["PAGES_ALLOWED_ADDRESSES"] = ["127.0.0.1/32"]
    result = await crawl(
        write_list(tmp_path / "v.txt", [hop]), tmp_path, settings, report="v.jsonl"
    )
    (row,) = result.rows
    assert row["error"].startswith("blocked_address"), row
    assert row["final_url"] == f"http://intranet.test:{port}/x"
    assert next(r["path"] for r in site.requests(since)).startswith("/redirect")


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("http://a.test/next", True),  # same origin
        ("http://b.test/next", False),  # another host
        ("https://a.test/next", False),  # another scheme
    ],
)
def test_credentials_not_sent_to_another_origin(target: str, kept: bool) -> None:
    crawler = get_crawler(Spider, {"REDIRECT_MAX_TIMES": 5})
    crawler.spider = crawler._create_spider("t")
    mw = LoopAwareRedirectMiddleware.from_crawler(crawler)
    request = Request(
        "http://a.test/start", headers={"Authorization": "Basic eDp5", "Cookie": "sid=1"}
    )
    response = Response(request.url, status=302, headers={"Location": target}, request=request)
    redirected = mw.process_response(request, response)
    assert isinstance(redirected, Request)
    assert ("Authorization" in redirected.headers) is kept
    # Cookies stay on https upgrades of the same host, as browsers do.
    assert ("Cookie" in redirected.headers) is (kept or target.startswith("https://a.test"))
