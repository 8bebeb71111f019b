"""Deploy to a real Scrapyd and schedule ``pages`` jobs (issue 7).

A Scrapyd process runs on 127.0.0.1 with basic auth, its directories in a
temporary folder; the project is deployed with ``scrapyd-deploy`` from a copy
of the repository (so the build leaves nothing in the work tree).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.crawl import REPO_ROOT, read_report, write_list
from tests.support.servers import DemoSite

USER, PASSWORD = "checker", "s3cret-for-tests"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Scrapyd:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def call(
        self, endpoint: str, data: dict[str, Any] | list[tuple[str, str]] | None = None
    ) -> Any:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(f"{self.url}{endpoint}", data=body)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_finished(self, job: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.call("listjobs.json?project=scraper_project")
            for entry in jobs["finished"]:
                if entry["id"] == job:
                    return dict(entry)
            time.sleep(0.5)
        raise AssertionError(f"job {job} did not finish in {timeout} s")

    def log(self, job: str) -> str:
        return (self.root / "logs" / "scraper_project" / "pages" / f"{job}.log").read_text()

    def items(self, job: str) -> list[dict[str, Any]]:
        path = self.root / "items" / "scraper_project" / "pages" / f"{job}.jl"
        return read_report(path) if path.exists() else []


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    root = tmp_path_factory.mktemp("scrapyd")
    (root / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"username = {USER}\n"
        f"password = {PASSWORD}\n"
        "poll_interval = 0.5\n"
        f"eggs_dir = {root / 'eggs'}\n"
        f"logs_dir = {root / 'logs'}\n"
        f"items_dir = {root / 'items'}\n"
        f"dbs_dir = {root / 'dbs'}\n"
        "max_proc = 4\n"
    )
    port = _free_port()  # http_port = 0 crashes Scrapyd 1.6
    env = {**os.environ, "SCRAPYD_HTTP_PORT": str(port)}
    with (root / "scrapyd.out").open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "scrapyd"), "--nodaemon", "--pidfile="],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Scrapyd(f"http://127.0.0.1:{port}/", root, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.call("daemonstatus.json")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((root / "scrapyd.out").read_text()) from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def deployed(scrapyd: Scrapyd, tmp_path_factory: pytest.TempPathFactory) -> Scrapyd:
    project = tmp_path_factory.mktemp("project") / "scraper_project"
    shutil.copytree(
        REPO_ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", ".mypy_cache", ".ruff_cache"
        ),
    )
    env = {
        **os.environ,
        "SCRAPYD_URL": scrapyd.url,
        "SCRAPYD_USERNAME": USER,
        "SCRAPYD_PASSWORD": PASSWORD,
    }
    proc = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--version", "test-1"],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert scrapyd.call("listspiders.json?project=scraper_project")["spiders"] == ["pages"]
    return scrapyd


def _schedule(server: Scrapyd, urls: str, settings: dict[str, Any]) -> str:
    data = [("project", "scraper_project"), ("spider", "pages"), ("urls", urls)]
    data += [("setting", f"{name}={value}") for name, value in settings.items()]
    answer = server.call("schedule.json", data)
    assert answer["status"] == "ok", answer
    return str(answer["jobid"])


# The jobs' DNS stays offline too.
OFFLINE = {"RESOLVE_HOSTS_ONLY": "True", "ROBOTSTXT_OBEY": "False"}


@pytest.mark.timeout(240)
def test_two_jobs_with_their_own_settings(
    deployed: Scrapyd, site: DemoSite, tmp_path: Path
) -> None:
    urls = write_list(tmp_path / "urls.txt", (f"{site.url}/page/{i}?jobA" for i in range(6)))
    since = len(site.requests())
    job_a = _schedule(
        deployed, str(urls), {**OFFLINE, "CONCURRENT_REQUESTS": 2, "USER_AGENT": "JobA/1.0"}
    )
    job_b = _schedule(
        deployed,
        f"{site.url}/urls?count=4&start=100",  # the list from a URL
        {**OFFLINE, "RATELIMIT_RATE": 4, "USER_AGENT": "JobB/2.0"},
    )
    for job in (job_a, job_b):
        deployed.wait_finished(job)
    rows_a, rows_b = deployed.items(job_a), deployed.items(job_b)
    assert sorted(r["title"] for r in rows_a) == [f"Page {i}" for i in range(6)]
    assert sorted(r["title"] for r in rows_b) == [f"Page {i}" for i in range(100, 104)]
    log_a, log_b = deployed.log(job_a), deployed.log(job_b)
    assert "'CONCURRENT_REQUESTS': '2'" in log_a  # Scrapy logs its own overridden settings
    assert "'USER_AGENT': 'JobB/2.0'" in log_b
    for log in (log_a, log_b):
        assert "'finish_reason': 'finished'" in log
    # The settings took effect: each job's User-Agent reached the server,
    # and job B was paced at 4 requests/second.
    seen = site.requests(since)
    agents_a = {r["user_agent"] for r in seen if r["path"].endswith("?jobA")}
    b_times = sorted(
        r["time"] for r in seen if r["user_agent"] == "JobB/2.0" and r["path"].startswith("/page/")
    )
    assert agents_a == {"JobA/1.0"}
    assert len(b_times) == 4
    assert b_times[-1] - b_times[0] >= 0.7  # 3 intervals of 0.25 s


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ("/definitely/not/here/urls.txt", "URL list not found"),
        ("urls.txt", "is not an absolute path or an http(s) URL"),
    ],
)
def test_a_bad_list_fails_the_job_visibly(deployed: Scrapyd, urls: str, message: str) -> None:
    job = _schedule(deployed, urls, OFFLINE)
    deployed.wait_finished(job)
    log = deployed.log(job)
    assert message in log
    assert "ERROR" in log
    assert "'finish_reason': 'input_error'" in log
    assert deployed.items(job) == []
