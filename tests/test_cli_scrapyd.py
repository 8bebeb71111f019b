"""The command-line contract on Scrapyd (issue 15, item 9): the README's
``scrapyd-client schedule`` step as written, and exit codes as the job's
finish reason and log. A real Scrapyd on 127.0.0.1 (tests/test_scrapyd.py's
fixtures), the demo site for pages."""

# ruff: noqa: F811

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.crawl import REPO_ROOT, write_list
from tests.support.servers import DemoSite

# Scrapyd's fixtures (a Scrapyd with basic auth, the project deployed to it),
# imported: their names are the test functions' parameters.
from tests.test_scrapyd import (  # noqa: F401
    BIN,
    OFFLINE,
    PASSWORD,
    USER,
    Scrapyd,
    _schedule,
    deployed,
    scrapyd,
)


@pytest.mark.timeout(240)
def test_readme_scrapyd_client_schedule_works_as_written(
    deployed: Scrapyd, site: DemoSite, tmp_path: Path
) -> None:
    """``SCRAPYD_URL`` without a trailing slash, as the README writes it
    (scrapyd-client appends "/listprojects.json" to it)."""
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/{i}?readme" for i in range(3)])
    env = {
        **os.environ,
        "SCRAPYD_URL": deployed.url.rstrip("/"),
        "SCRAPYD_USERNAME": USER,
        "SCRAPYD_PASSWORD": PASSWORD,
    }
    proc = subprocess.run(
        [str(BIN / "scrapyd-client"), "schedule", "-p", "scraper_project", "pages",
         "--arg", f"urls={urls}", "--arg", "setting=RESOLVE_HOSTS_ONLY=True",
         "--arg", "setting=ROBOTSTXT_OBEY=False"],
        cwd=REPO_ROOT, env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    match = re.search(r"scraper_project / pages => (\w+)", out)
    assert match, out
    job = match.group(1)
    deployed.wait_finished(job)
    assert sorted(r["title"] for r in deployed.items(job)) == ["Page 0", "Page 1", "Page 2"]
    log = deployed.log(job)
    assert "'finish_reason': 'finished'" in log
    assert "Exit code 0" in log


@pytest.mark.timeout(240)
def test_fail_on_is_the_jobs_finish_reason(
    deployed: Scrapyd, site: DemoSite, tmp_path: Path
) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1", f"{site.url}/status/404"])
    job = _schedule(deployed, str(urls), {**OFFLINE, "PAGES_FAIL_ON": "4xx"})
    deployed.wait_finished(job)
    log = deployed.log(job)
    assert "'finish_reason': 'fail_on'" in log
    assert "Exit code 4: 1 row match PAGES_FAIL_ON=4xx (4xx: 1)" in log
    assert len(deployed.items(job)) == 2


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RATELIMIT_RATE": "fast"}, "RATELIMIT_RATE must be a number of requests per second"),
        ({"RATELIMT_RATE": "5"}, "unknown setting RATELIMT_RATE (did you mean RATELIMIT_RATE?)"),
    ],
)
def test_a_bad_setting_fails_the_job_in_its_log(
    deployed: Scrapyd, site: DemoSite, tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    urls = write_list(tmp_path / "urls.txt", [f"{site.url}/page/1"])
    job = _schedule(deployed, str(urls), {**OFFLINE, **settings})
    deployed.wait_finished(job)
    log = deployed.log(job)
    assert f"ERROR: {message}" in log
    assert "Exit code 2: nothing crawled" in log
    assert "Traceback" not in log
    assert deployed.items(job) == []
