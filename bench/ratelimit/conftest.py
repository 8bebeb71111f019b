"""Collect ``bench_*.py`` here (the default run only collects ``tests/``).

Run::

    .venv/bin/pytest bench/ratelimit --benchmark-only \
        --benchmark-json=/tmp/ratelimit-bench.json
    .venv/bin/python bench/ratelimit/report.py /tmp/ratelimit-bench.json
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)  # given explicitly: already
    ):
        module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
        return module
    return None
