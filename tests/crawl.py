"""Run real crawls of the ``pages`` spider in process and through the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler, CrawlerRunner
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.project import get_project_settings

from scraper_project.spiders.pages import PagesSpider

REPO_ROOT = Path(__file__).resolve().parents[1]

# A loopback port nothing listens on: a query sent there fails at once
# (ICMP port unreachable: dns_error: servfail).
NO_NAMESERVER = "127.0.0.1:1"

# Settings every test crawl uses: no real nameserver is ever asked (names
# not in RESOLVE_HOSTS fail as dns_error; a test that turns
# RESOLVE_HOSTS_ONLY off and gives no DNS_NAMESERVERS of its own, such as
# tests/support/dnsserver.py's, reaches nothing either), quick failures.
TEST_SETTINGS: dict[str, Any] = {
    "RESOLVE_HOSTS_ONLY": True,
    "RESOLVE_HOSTS": dict.fromkeys(
        ("site.test", "other.test", "a.test", "b.test", "c.test", "d.test", "localhost"),
        "127.0.0.1",
    ),
    "DNS_NAMESERVERS": NO_NAMESERVER,
    "DNS_HOSTS_FILE": "",
    "LOG_LEVEL": "INFO",
    "DOWNLOAD_TIMEOUT": 10,
    "RETRY_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
}


@dataclass
class CrawlResult:
    rows: list[dict[str, Any]]
    stats: dict[str, Any]
    crawler: Crawler | None = None


def write_list(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def read_report(path: Path) -> list[dict[str, Any]]:
    """Parse a CSV, JSON or JSON-lines report, by its suffix."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    if path.suffix == ".json":
        data = json.loads(text)
        assert isinstance(data, list)
        return data
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def crawl(
    urls: Path | str,
    tmp_path: Path,
    settings: Mapping[str, Any] | None = None,
    *,
    report: str = "report.jsonl",
    **spider_args: Any,
) -> CrawlResult:
    """Crawl in this process (the test's reactor); return the report's rows."""
    out = tmp_path / report
    merged = get_project_settings()
    merged.setdict({**TEST_SETTINGS, **(settings or {})}, priority="cmdline")
    merged.set(
        "FEEDS",
        {str(out): {"format": _format(out), "overwrite": True}},
        priority="cmdline",
    )
    runner = CrawlerRunner(merged)
    crawler = runner.create_crawler(PagesSpider)
    # CrawlerRunner, unlike CrawlerProcess, installs no resolver: install the
    # project's for this crawl (a fresh cache) and put the previous ones back
    # afterwards.
    from twisted.internet import reactor

    previous = reactor.resolver  # type: ignore[attr-defined]
    previous_name = reactor.nameResolver  # type: ignore[attr-defined]
    resolver = build_from_crawler(
        load_object(merged["TWISTED_DNS_RESOLVER"]), crawler, reactor=reactor
    )
    resolver.install_on_reactor()
    try:
        await crawler.crawl(urls=str(urls), **spider_args)
    finally:
        reactor.installNameResolver(previous_name)  # type: ignore[attr-defined]
        reactor.resolver = previous  # type: ignore[attr-defined]
        if hasattr(resolver, "close"):
            await resolver.close()
    assert crawler.stats is not None
    # A crawl that fails before its first row leaves no report (issue 15).
    rows = read_report(out) if out.exists() else []
    return CrawlResult(rows, dict(crawler.stats.get_stats()), crawler)


def _format(path: Path) -> str:
    return {".csv": "csv", ".json": "json", ".jsonl": "jsonlines"}[path.suffix]


def run_cli(
    args: list[str],
    *,
    timeout: float = 120,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``scrapy ARGS`` from the repository root, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def settings_args(settings: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in {**TEST_SETTINGS, **settings}.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        args += ["-s", f"{name}={text}"]
    return args
