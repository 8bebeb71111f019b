"""A 100,000-line list finished in three time-boxed runs (issue 17, item 2).

Each run resumes from the report of the run before, into the same file
(``-a resume=report.csv -O report.csv``). The pages come from nginx (the
speed benchmark's server, ``bench/speed/server.py`` where nginx is missing),
so the crawler's own CPU sets the pace.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.crawl import REPO_ROOT, read_report, run_cli, settings_args, write_list

LINES = 100_000
PAGE = b"<!DOCTYPE html><html><head><title>Run page</title></head><body>ok</body></html>\n"

NGINX_CONF = """\
{user}worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html; }}
    default_type text/html;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    log_format uri '$request_uri';
    access_log {tmp}/access.log uri;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


@dataclass
class StaticServer:
    url: str
    count_requests: Any  # () -> Counter of request paths (with the query for nginx)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the page server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/p.html?ready")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.05)
    raise RuntimeError("the page server did not start")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def static_server(tmp: Path) -> Iterator[StaticServer]:
    """nginx serving one page for ``/p.html?anything``; the Python server of
    the speed benchmark where nginx is not installed."""
    root = tmp / "root"
    root.mkdir(parents=True)
    (root / "p.html").write_bytes(PAGE)
    port = _free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if nginx is not None:
        conf = tmp / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
        cmd = [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

        def count() -> Counter[str]:
            return Counter((tmp / "access.log").read_text().splitlines())

    else:
        script = REPO_ROOT / "bench" / "speed" / "server.py"
        cmd = [sys.executable, str(script), "--root", str(root), "--port", str(port)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

        def count() -> Counter[str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/__bench__/stats")
            data = json.loads(conn.getresponse().read())
            conn.close()
            return Counter(path for _, _, path, _ in data["requests"])

    try:
        _wait(port, proc)
        yield StaticServer(f"http://127.0.0.1:{port}", count)
    finally:
        _stop(proc)


def run(args: list[str], stats_file: Path) -> tuple[int, dict[str, Any], str]:
    settings = {
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
        "PAGES_LOG_DUPLICATES": False,
        "PAGES_STATS_FILE": str(stats_file),
        # Not what this test is about: less CPU per page.
        "ROBOTSTXT_OBEY": False,
        "RATELIMIT_ENABLED": False,
    }
    proc = run_cli(["crawl", "pages", *args, *settings_args(settings)], timeout=1100)
    err = proc.stderr.decode()
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return proc.returncode, stats, err


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_deadline_cut_100000_line_list_in_three_runs(tmp_path: Path) -> None:
    with static_server(tmp_path / "server") as server:
        base = f"{server.url}/p.html?n="
        lines = [f"{base}{i}" for i in range(LINES)]
        for i in range(0, LINES, 10_000):
            lines[i + 5] = f"{base}{i}"  # a duplicate of a line above
            lines[i + 7] = f"not a url {i}"
        urls = write_list(tmp_path / "urls.txt", lines)
        distinct = {line for line in lines if line.startswith("http")}
        out = tmp_path / "report.csv"
        expected_rows = len(distinct) + 10  # and the invalid lines

        done_before = 0
        cancelled = 0
        for number, extra in enumerate(
            (["-a", "timeout=4"], ["-a", f"resume={out}", "-a", "timeout=4"], ["-a", f"resume={out}", "-a", "timeout=1000"]),
            1,
        ):  # fmt: skip
            stats_file = tmp_path / f"stats-{number}.json"
            code, stats, err = run(["-a", f"urls={urls}", "-O", str(out), *extra], stats_file)
            rows = read_report(out)
            assert len(rows) == expected_rows, err[-3000:]  # every line, each run
            assert len({r["url"] for r in rows}) == expected_rows
            errors = Counter(r["error"].split(":")[0] for r in rows)
            done = errors[""]
            assert errors["invalid_url"] == 10
            assert stats["input/lines"] == LINES
            assert stats["input/duplicates"] == 10
            assert stats["input/urls"] == len(distinct)
            if number == 3:
                assert code == 0, err[-3000:]
                assert done == len(distinct)
                fetched_rows = [r for r in rows if r["url"].startswith("http")]
                assert all(r["status"] == "200" for r in fetched_rows)
                assert all(r["length"] == str(len(PAGE)) for r in fetched_rows)
            else:
                assert code == 3, err[-3000:]
                assert done_before < done < len(distinct) // 2, (number, done)
                assert stats["finish_reason"] == "closespider_timeout"
            if number > 1:
                # Every row finished before was kept and not fetched again.
                assert stats["resume/kept"] == done_before
                crawled = stats["resume/recrawled"] + stats["resume/new"]
                assert stats["resume/new"] == 0  # a deadline-cut report has every line
                assert done - done_before <= crawled
            cancelled += errors["cancelled"]
            done_before = done
        # Each URL fetched once, plus once more for those cancelled mid-download.
        requests = server.count_requests()
        fetched = sum(n for path, n in requests.items() if path.startswith("/p.html?n"))
        assert fetched == len(distinct) + cancelled
