"""Skip rules (issue 17, item 4): ``PAGES_SKIP`` and ``PAGES_SKIP_FILE``.

The rules' matching is checked against a pattern-by-pattern search; the
behaviour with the real ``scrapy crawl`` command, real list and skip files
and the demo site (whose request log shows what was never fetched).
"""

# ruff: noqa: F811

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from scraper_project.pipelines.failon import FailOn
from scraper_project.skip import SkipRules
from tests.crawl import read_report, run_cli, settings_args, write_list
from tests.support.servers import DemoSite

# The cluster tests' fixtures (a redis-server per module, workers stopped by
# PID), imported: their names are the test functions' parameters.
from tests.test_cluster import Worker, cluster_args, redis_url, workers  # noqa: F401

BANNER = "Scrapy 2.19"


def rules(*patterns: str) -> SkipRules:
    return SkipRules.compile([(p, "PAGES_SKIP") for p in patterns])


# -- matching -------------------------------------------------------------------

URLS = [
    "https://example.com/logout",
    "https://example.com/LOGOUT?x=1",
    "https://staging.example.com/",
    "https://example.com/files/a.zip",
    "https://example.com/aa/bb",
    "https://example.com/abab",
    "https://example.com/page/1",
    "http://xn--bcher-kva.example/",
]

TRICKY = [
    ("/logout",),
    ("(?i)/logout", "^https://staging\\."),  # a leading global flag
    ("(a)\\1", "/files/.*\\.zip$"),  # a backreference: searched apart
    ("(?P<x>ab)(?P=x)", "(?P<x>zz)"),  # named groups, one name twice
    ("(?x) /files/ .* \\.zip  # comment", "page"),  # verbose: searched apart
    ("(?i:LOGOUT)", "xn--bcher"),
    ("^http://", "zip$", "/aa/"),
]


@pytest.mark.parametrize("patterns", TRICKY)
def test_match_is_the_first_pattern_found_one_by_one(patterns: tuple[str, ...]) -> None:
    skip = rules(*patterns)
    for url in URLS:
        expected = next((p for p in patterns if re.search(p, url)), None)
        assert skip.match(url) == expected, (patterns, url)


def test_one_alternation_when_the_patterns_allow_it() -> None:
    assert rules("/logout", "(?i)^https://STAGING\\.", "\\.zip$").combined is not None
    assert rules("(a)\\1").combined is None
    assert rules("(?P<x>a)", "(?P<x>b)").combined is None
    assert rules("/a", "/a", "/b").patterns == ("/a", "/b")  # a repeat counts once


def test_settings_json_list_and_file(tmp_path: Path) -> None:
    skip_file = tmp_path / "skip.txt"
    skip_file.write_bytes(b"\xef\xbb\xbf# comment\n\n  \\.pdf$  \r\n#/not-a-rule\n/logout\n")
    skip = SkipRules.from_settings(
        Settings(
            {
                "PAGES_SKIP": '["/logout", "^https://staging\\\\."]',
                "PAGES_SKIP_FILE": str(skip_file),
            }
        )
    )
    assert skip is not None
    assert skip.patterns == ("/logout", "^https://staging\\.", "\\.pdf$")
    assert SkipRules.from_settings(Settings({"PAGES_SKIP": ["a", "b"]})) is not None
    assert SkipRules.from_settings(Settings({"PAGES_SKIP": "[]"})) is None
    assert SkipRules.from_settings(Settings({})) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PAGES_SKIP": '["ok", "(bad"]'}, "PAGES_SKIP: '(bad' is not a valid regular expression (missing ), unterminated subpattern"),
        ({"PAGES_SKIP": "/logout"}, "PAGES_SKIP must be a JSON list of strings, e.g. '[\"/logout\""),
        ({"PAGES_SKIP": '{"a": 1}'}, "PAGES_SKIP must be a JSON list of strings"),
        ({"PAGES_SKIP": "[1]"}, "PAGES_SKIP must be a JSON list of strings"),
        ({"PAGES_SKIP": '[""]'}, "PAGES_SKIP: an empty pattern would skip every URL"),
        ({"PAGES_SKIP_FILE": "no-such-skip.txt"}, "PAGES_SKIP_FILE must be a readable file of regular expressions, got 'no-such-skip.txt' (No such file or directory)"),
    ],
)  # fmt: skip
def test_bad_settings(settings: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        SkipRules.from_settings(Settings(settings))
    assert str(info.value).startswith(message), str(info.value)


def test_bad_pattern_in_a_file_names_its_line(tmp_path: Path) -> None:
    skip_file = tmp_path / "skip.txt"
    skip_file.write_text("# rules\n/logout\n[a-\n")
    with pytest.raises(UsageError) as info:
        SkipRules.from_settings(Settings({"PAGES_SKIP_FILE": str(skip_file)}))
    assert str(info.value).startswith(
        f"PAGES_SKIP_FILE {str(skip_file)!r} line 3: '[a-' is not a valid regular expression"
    )


def test_fail_on_error_leaves_skipped_rows_out() -> None:
    skipped = {"error": "skipped: /logout", "status": None}
    redirect = {"error": "skipped: /logout (redirect to http://a/logout)", "status": 302}
    failing = {"error": "timeout: too slow", "status": None}
    on_error = FailOn.parse(["error"], "PAGES_FAIL_ON")
    assert on_error.match(skipped) is None
    assert on_error.match(redirect) is None
    assert on_error.match(failing) == "error"
    assert FailOn.parse(["skipped"], "PAGES_FAIL_ON").match(skipped) == "skipped"
    assert FailOn.parse(["3xx"], "PAGES_FAIL_ON").match(redirect) == "3xx"


# -- the real command -------------------------------------------------------------


def crawl_cli(args: list[str], settings: dict[str, object]) -> tuple[int, str]:
    proc = run_cli(["crawl", "pages", *args, *settings_args(settings)])
    return proc.returncode, proc.stderr.decode()


@pytest.mark.timeout(120)
def test_skipped_lines_are_rows_and_never_fetched(site: DemoSite, tmp_path: Path) -> None:
    """Lines matching a rule (the -s list and a file) are `skipped` rows; no
    request reaches the site for them, not even robots.txt for a host whose
    every URL is skipped; duplicates and invalid lines keep their accounting;
    a redirect to a skipped URL is not followed."""
    port = site.url.rsplit(":", 1)[1]
    tag = "skiptest"
    lines = [
        f"{site.url}/page/1?{tag}",
        f"{site.url}/page/2?{tag}&logout=1",  # PAGES_SKIP
        f"{site.url}/binary/pdf?{tag}",  # the file
        f"http://a.test:{port}/page/3?{tag}",  # a host only skipped URLs use
        f"HTTP://A.TEST:{port}/page/4?{tag}#frag",  # matched normalised
        f"{site.url}/page/2?{tag}&logout=1",  # a duplicate of a skipped line
        "not a url",
        f"{site.url}/redirect?code=301&to=/page/5%3F{tag}%26logout%3D1",  # to a skipped URL
        f"{site.url}/redirect?to=/page/6%3F{tag}",  # followed
    ]
    urls = write_list(tmp_path / "urls.txt", lines)
    skip_file = tmp_path / "skip.txt"
    skip_file.write_text("# leave out heavy files\n/binary/\n^http://a\\.test:\n")
    out = tmp_path / "report.csv"
    since = len(site.requests())
    code, err = crawl_cli(
        ["-a", f"urls={urls}", "-O", str(out)],
        {"PAGES_SKIP": '["[?&]logout="]', "PAGES_SKIP_FILE": str(skip_file)},
    )
    assert code == 0, err[-3000:]
    rows = {r["line"]: r for r in read_report(out)}
    assert sorted(rows) == ["1", "2", "3", "4", "5", "7", "8", "9"]
    assert rows["1"]["error"] == ""
    assert rows["1"]["status"] == "200"
    assert rows["2"]["error"] == "skipped: [?&]logout="
    assert rows["2"]["attempts"] == "0"
    assert rows["2"]["status"] == ""
    assert rows["3"]["error"] == "skipped: /binary/"
    assert rows["4"]["error"] == "skipped: ^http://a\\.test:"
    assert rows["5"]["url"] == f"http://a.test:{port}/page/4?{tag}"
    assert rows["5"]["error"] == "skipped: ^http://a\\.test:"
    assert rows["7"]["error"].startswith("invalid_url")
    redirect = rows["8"]
    assert redirect["status"] == "301"
    assert redirect["final_url"] == lines[7]
    assert redirect["redirects"] == "0"
    assert redirect["error"] == (
        f"skipped: [?&]logout= (redirect to {site.url}/page/5?{tag}&logout=1)"
    )
    assert rows["9"]["error"] == ""
    assert rows["9"]["final_url"] == f"{site.url}/page/6?{tag}"
    fetched = [r for r in site.requests(since) if tag in r["path"] or "a.test" in str(r["host"])]
    paths = sorted(r["path"] for r in fetched)
    assert paths == sorted(
        [
            f"/page/1?{tag}",
            f"/redirect?code=301&to=/page/5%3F{tag}%26logout%3D1",
            f"/redirect?to=/page/6%3F{tag}",
            f"/page/6?{tag}",
        ]
    )
    assert not [r for r in site.requests(since) if "a.test" in str(r["host"])]  # no robots.txt
    assert "'input/skipped': 4" in err
    assert "'input/skipped/[?&]logout=': 1" in err
    assert "'input/skipped//binary/': 1" in err
    assert "'input/duplicates': 1" in err
    assert "'skip/redirects': 1" in err
    assert "'report/error/skipped': 5" in err
    assert (
        "Summary: 4 lines skipped by PAGES_SKIP (^http://a\\.test:: 2, /binary/: 1, "
        "[?&]logout=: 1), 1 redirects to skipped URLs not followed"
    ) in err


@pytest.mark.timeout(120)
def test_fail_on_error_does_not_count_skipped_rows(site: DemoSite, tmp_path: Path) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1", f"{site.url}/page/2"])
    out = tmp_path / "report.jsonl"
    args = ["-a", f"urls={urls}", "-O", str(out)]
    settings = {"PAGES_SKIP": '["/2$"]', "PAGES_FAIL_ON": "error,4xx,5xx"}
    code, err = crawl_cli(args, settings)
    assert code == 0, err[-3000:]
    code, err = crawl_cli(args, {**settings, "PAGES_FAIL_ON": "skipped"})
    assert code == 4, err[-3000:]
    assert "Exit code 4: 1 row match PAGES_FAIL_ON=skipped (skipped: 1)" in err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("form", ["setting", "file"])
def test_bad_pattern_is_one_line_before_the_banner(
    site: DemoSite, tmp_path: Path, form: str
) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1"])
    out = tmp_path / "report.csv"
    out.write_text("kept\n")
    if form == "setting":
        settings = {"PAGES_SKIP": '["/ok", "(?<bad"]'}
        expected = "PAGES_SKIP: '(?<bad' is not a valid regular expression ("
    else:
        skip_file = tmp_path / "skip.txt"
        skip_file.write_text("/ok\n*oops\n")
        settings = {"PAGES_SKIP_FILE": str(skip_file)}
        expected = (
            f"PAGES_SKIP_FILE {str(skip_file)!r} line 2: '*oops' is not a valid regular "
            f"expression (nothing to repeat at position 0)"
        )
    code, err = crawl_cli(["-a", f"urls={urls}", "-O", str(out)], settings)
    assert code == 2, err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"scrapy crawl: error: {expected}"), lines[0]
    assert BANNER not in err
    assert out.read_text() == "kept\n"


@pytest.mark.timeout(240)
def test_cluster_loader_writes_skipped_rows(
    site: DemoSite, redis_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """In cluster mode the loading worker applies the rules as it reads the
    list: skipped lines are ready rows in the shared queue (written by
    whichever worker takes them), never fetched."""
    key = f"skip{uuid.uuid4().hex[:10]}"
    lines = [f"{site.url}/page/{i}?{key}" for i in range(6)]
    lines.append(lines[1])  # a duplicate of a skipped line
    urls = write_list(tmp_path / "urls.txt", lines)
    since = len(site.requests())
    args = cluster_args(redis_url, key, PAGES_CLUSTER_IDLE_CLOSE=0.5, PAGES_SKIP='["/[13]\\\\?"]')
    loader = Worker([*args, "-a", f"urls={urls}"], tmp_path / "one.csv")
    helper = Worker(args, tmp_path / "two.csv")
    workers += [loader, helper]
    assert loader.wait(90) == 0, loader.text()[-3000:]
    assert helper.wait(90) == 0, helper.text()[-3000:]
    rows = read_report(loader.report) + read_report(helper.report)
    by_line = {r["line"]: r["error"] for r in rows}
    assert by_line == {
        "1": "",
        "2": "skipped: /[13]\\?",
        "3": "",
        "4": "skipped: /[13]\\?",
        "5": "",
        "6": "",
    }
    fetched = {r["path"] for r in site.requests(since) if key in r["path"]}
    assert fetched == {f"/page/{i}?{key}" for i in (0, 2, 4, 5)}
    assert "'input/skipped': 2" in loader.text()


def test_per_pattern_stats_are_bounded(tmp_path: Path) -> None:
    """The first 100 patterns that match get a stat each, counted for the
    whole crawl; later ones only count in the total."""
    from scrapy.utils.test import get_crawler

    from scraper_project.skip import MAX_PATTERN_STATS
    from scraper_project.spiders.pages import PagesSpider

    urls = write_list(tmp_path / "urls.txt", ["http://a.test/"])
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings().copy_to_dict()
    crawler = get_crawler(PagesSpider, {**settings, "PAGES_SKIP": ["x"]})
    spider = PagesSpider.from_crawler(crawler, urls=str(urls))
    for i in range(MAX_PATTERN_STATS + 20):
        row = spider._skipped_row(f"http://a.test/{i}", i + 1, f"p{i}")
        assert row["error"] == f"skipped: p{i}"
    spider._skipped_row("http://a.test/again", 999, "p0")
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    per_pattern = {k: v for k, v in stats.items() if k.startswith("input/skipped/")}
    assert len(per_pattern) == MAX_PATTERN_STATS
    assert per_pattern["input/skipped/p0"] == 2
    assert stats["input/skipped"] == MAX_PATTERN_STATS + 21
