"""A throwaway redis-server on 127.0.0.1 (random port, no persistence)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


@contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server; yield its URL; stop it (by PID) and remove its files."""
    binary = redis_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs Debian's redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    with tempfile.TemporaryDirectory(prefix="pages-redis-") as tmp:
        for _ in range(5):  # the port may be taken between probe and bind
            port = _free_port()
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", tmp, "--daemonize", "no",
                 "--protected-mode", "yes"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            client = redis.Redis(port=port, socket_connect_timeout=1)
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        client.ping()
                        break
                    except redis.ConnectionError:
                        time.sleep(0.02)
                else:
                    proc.kill()
                    proc.wait(5)
                    continue
                try:
                    yield f"redis://127.0.0.1:{port}/0"
                finally:
                    client.close()
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
                return
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
        raise RuntimeError("could not start redis-server")
