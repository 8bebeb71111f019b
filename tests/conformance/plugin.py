"""pytest plugin for the conformance run (``-p scraper_conformance``).

- Name resolution stays on this machine (``offline_dns.py``, imported by
  ``sitecustomize`` in every Python process of the run), and the reactor's
  name resolver uses it too.
- Every skip must be one of :data:`DECLARED_SKIPS` (a difference the README's
  HTTP-client section lists, or a test Scrapy itself skips for HTTP/1.1
  handlers); any other skip fails the run, as does a handler with fewer than
  ``--conformance-min`` tests run. The counts are printed at the end.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from scraper_conformance_dns import getaddrinfo

if TYPE_CHECKING:
    import pytest

# Skip reason -> why it is not a gap. Keep README's HTTP-client section in step.
DECLARED_SKIPS: dict[str, str] = {
    "Streams are specific to HTTP/2": "HTTP/2 only (skipped for Scrapy's HTTP/1.1 handler too)",
    "GOAWAY frames are specific to HTTP/2": "HTTP/2 only",
    "Frames are specific to HTTP/2": "HTTP/2 only",
    "Unable to test on HTTPS": "Scrapy skips it for every handler",
    "Only applies to HTTPS": "Scrapy runs it on its https twin only",
    "SOCKS proxies are not supported": "neither handler speaks SOCKS (nor does Scrapy's Twisted one)",
    "HTTPS proxies for HTTPS destinations are not supported": (
        "TLS inside TLS: proxied requests go through Twisted's client, which has none"
    ),
    "DOWNLOADER_CLIENTCONTEXTFACTORY is a Twisted object": (
        "FastHTTPDownloadHandler warns that it ignores it; tests/test_http_settings.py"
    ),
}

HANDLERS = ("FastHTTPDownloadHandler", "CancellableHTTP11DownloadHandler")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--conformance-min",
        type=int,
        default=250,
        help="fail unless each handler had at least this many tests run",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    from twisted.internet import reactor
    from twisted.internet._resolver import GAIResolver  # what Scrapy's own tests use

    reactor.installNameResolver(GAIResolver(reactor, getaddrinfo=getaddrinfo))  # type: ignore[attr-defined]
    _project_resolver_offline()


def _project_resolver_offline() -> None:
    """The project's resolver (c-ares) asks the nameservers of resolv.conf
    itself, not getaddrinfo: give it a closed loopback port instead, so that
    no query leaves this machine (``localhost`` comes from the hosts file;
    any other name fails at once, the nameserver refusing)."""
    import socket

    import scraper_project.dns

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    scraper_project.dns.system_nameservers = lambda: [closed]


class _Tally:
    def __init__(self) -> None:
        self.outcomes: dict[str, Counter[str]] = {name: Counter() for name in HANDLERS}
        self.undeclared: list[str] = []
        self.problems: list[str] = []

    @staticmethod
    def handler(nodeid: str) -> str:
        return HANDLERS[0] if "::TestFast" in nodeid else HANDLERS[1]

    def add(self, report: pytest.TestReport) -> None:
        counts = self.outcomes[self.handler(report.nodeid)]
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
            reason = reason.removeprefix("Skipped: ")
            counts["skipped"] += 1
            if reason not in DECLARED_SKIPS:
                self.undeclared.append(f"{report.nodeid}: {reason}")
        elif report.when == "call":
            counts["xfailed" if hasattr(report, "wasxfail") else report.outcome] += 1
        elif report.failed:
            counts["errors"] += 1


_tally = _Tally()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _tally.add(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    minimum = session.config.getoption("--conformance-min")
    for name, counts in _tally.outcomes.items():
        ran = counts["passed"] + counts["failed"] + counts["xfailed"]
        if ran < minimum:
            _tally.problems.append(f"{name}: {ran} tests run, fewer than {minimum}")
    if _tally.undeclared:
        _tally.problems.append(f"{len(_tally.undeclared)} skips for no declared reason")
    if _tally.problems and session.exitstatus == 0:
        session.exitstatus = 1  # pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write = terminalreporter.write_line
    terminalreporter.section("Scrapy's download-handler suite: tests run per handler")
    for name, counts in _tally.outcomes.items():
        ran = counts["passed"] + counts["failed"] + counts["xfailed"]
        write(
            f"{name}: {ran} run ({counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['xfailed']} xfailed), {counts['errors']} errors, "
            f"{counts['skipped']} skipped"
        )
    if not _tally.undeclared:
        write("every skip is a declared difference (README, 'The HTTP client')")
    for line in _tally.undeclared:
        write(f"UNDECLARED SKIP {line}")
    for problem in _tally.problems:
        write(f"CONFORMANCE FAILED: {problem}")
