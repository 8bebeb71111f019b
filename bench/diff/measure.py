"""Run a command and measure it: wall and CPU time, peak RSS (VmHWM).

Peak RSS is read from ``/proc/PID/status`` every 20 ms until the process
exits, not from ``ru_maxrss``: Linux carries the parent's high-water mark
over fork and exec, so a bench that holds data itself would inflate it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def measure(command: list[str], timeout: float) -> dict[str, Any]:
    """Run ``command`` from the repository (project settings in the
    environment); return wall and CPU seconds, peak RSS (MB), exit code,
    stdout and the end of stderr."""
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "scraper_project.settings"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
        deadline = start + timeout
        status_file = Path(f"/proc/{proc.pid}/status")
        peak_kb = 0
        while True:
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"timed out: {' '.join(command)}")
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "seconds": round(wall, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "code": proc.returncode,
            "stdout": out.read().decode(),
            "stderr": err.read().decode()[-2000:],
        }
