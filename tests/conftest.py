"""Shared fixtures: the demo sites and the raw (malformed HTTP) server.

Both run outside the test's reactor (a subprocess and a thread), are started
once per session and stopped by PID / by their own stop() at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rawserver import RawServer
from tests.support.servers import DemoSite, demo_site


@pytest.fixture(scope="session")
def site() -> Iterator[DemoSite]:
    with demo_site() as running:
        yield running


@pytest.fixture(scope="session")
def latent_site() -> Iterator[DemoSite]:
    """A demo site that answers every request 20 ms late. A crawl of it is
    bound by latency and concurrency, not by the CPU the machine has left, so
    a comparison of two crawls' speeds shows starvation, not CPU noise."""
    with demo_site(args=["--latency", "0.02"]) as running:
        yield running


@pytest.fixture(scope="session")
def raw_server() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server
