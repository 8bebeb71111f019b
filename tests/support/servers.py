"""Start the demo site (``python -m scraper_project.demo serve``) as a subprocess.

::

    with demo_site(log_file=tmp_path / "requests.jsonl") as site:
        status, headers, body = site.get("/page/3")
        assert site.requests()[-1]["path"] == "/page/3"

The subprocess is stopped by PID on exit (SIGTERM, then SIGKILL if needed).
All HTTP helpers here talk to 127.0.0.1 directly, ignoring proxy variables.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_OPENER_NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True)
class Fetched:
    """A fetched response: ``url`` is the final URL after redirects."""

    status: int
    headers: Message
    body: bytes
    url: str


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = True,
    timeout: float = 10.0,
) -> Fetched:
    """GET/HEAD ``url`` with urllib (no proxy); HTTP errors are returned too."""
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    opener = _OPENER if follow_redirects else _OPENER_NO_REDIRECT
    try:
        with opener.open(request, timeout=timeout) as response:
            return Fetched(response.status, response.headers, response.read(), response.url)
    except urllib.error.HTTPError as err:
        with err:
            return Fetched(err.code, err.headers, err.read(), err.url)


def fetch_json(url: str, timeout: float = 10.0) -> Any:
    result = fetch(url, timeout=timeout)
    if result.status != 200:
        raise RuntimeError(f"{url} answered {result.status}")
    return json.loads(result.body)


@dataclass
class DemoSite:
    """A running demo-site subprocess."""

    url: str
    process: subprocess.Popen[str]
    log_file: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url_for(self, path: str) -> str:
        """Absolute URL for a path such as ``/page/1``."""
        return self.url + path

    def get(self, path: str, **kwargs: Any) -> Fetched:
        """``fetch(self.url + path, ...)``."""
        return fetch(self.url + path, **kwargs)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The server's request log (``GET /__requests?since=N``)."""
        records: list[dict[str, Any]] = fetch_json(f"{self.url}/__requests?since={since}")
        return records

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = fetch_json(f"{self.url}/__stats")
        return stats

    def reset(self) -> None:
        """Clear the request log and the ``/fail`` counters."""
        fetch_json(f"{self.url}/__reset")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Stop the subprocess (SIGTERM, then SIGKILL); return its exit code."""
        if not self._stopped:
            self._stopped = True
            _stop_process(self.process, timeout)
        code = self.process.returncode
        assert code is not None
        return code


def _stop_process(process: subprocess.Popen[str], timeout: float) -> None:
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
    finally:
        if process.stdout is not None:
            process.stdout.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    """First stdout line of ``process``, or None on timeout/EOF."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: lines.put(stdout.readline()), name="demo-site-url", daemon=True
    )
    reader.start()
    try:
        return lines.get(timeout=timeout) or None
    except queue.Empty:
        return None


def start_demo_site(
    log_file: str | os.PathLike[str] | None = None,
    *,
    args: Sequence[str] = (),
    startup_timeout: float = STARTUP_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> DemoSite:
    """Start the demo site on 127.0.0.1, a free port; call ``.stop()`` after."""
    command = [
        sys.executable,
        "-m",
        "scraper_project.demo",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    if log_file is not None:
        command += ["--log-file", os.fspath(log_file)]
    command += list(args)
    child_env = dict(os.environ if env is None else env)
    pythonpath = child_env.get("PYTHONPATH")
    child_env["PYTHONPATH"] = (
        f"{REPO_ROOT}{os.pathsep}{pythonpath}" if pythonpath else str(REPO_ROOT)
    )
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = _read_line(process, startup_timeout)
    if line is None or not line.startswith("http://"):
        _stop_process(process, STOP_TIMEOUT)
        raise RuntimeError(
            f"demo site did not announce its URL within {startup_timeout}s "
            f"(exit code {process.returncode}, got {line!r})"
        )
    return DemoSite(
        url=line.strip(),
        process=process,
        log_file=Path(log_file) if log_file is not None else None,
    )


@contextmanager
def demo_site(
    log_file: str | os.PathLike[str] | None = None,
    *,
    args: Sequence[str] = (),
    startup_timeout: float = STARTUP_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Iterator[DemoSite]:
    """Run the demo site in a subprocess for the duration of the block."""
    site = start_demo_site(log_file, args=args, startup_timeout=startup_timeout, env=env)
    try:
        yield site
    finally:
        site.stop()
