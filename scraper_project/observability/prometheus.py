"""An optional Prometheus endpoint exposing the crawl's stats while it runs.

``PAGES_PROMETHEUS_ENABLED = True`` starts prometheus-client's HTTP server
(a daemon thread) on ``PAGES_PROMETHEUS_HOST`` (``127.0.0.1``) and
``PAGES_PROMETHEUS_PORT`` (``0``: a free port) when the spider opens, logs its
URL (``Prometheus metrics at http://127.0.0.1:PORT/metrics``, field
``prometheus_url``) and stops it when the spider closes.

Each crawl has its own ``CollectorRegistry`` (several crawls in one process
do not collide) holding one collector that reads the stats collector when it
is scraped, so metrics cost nothing per page. Every numeric stat becomes a
metric named ``scrapy_`` + the key with non-alphanumerics as ``_``
(``report/status/2xx`` -> ``scrapy_report_status_2xx``): integers are
counters (``..._total``) except keys whose last part names a gauge (``max``,
``min``, ``current``, ``startup``, ``pNN``); floats are gauges; datetimes
become ``..._timestamp_seconds`` gauges. Keys are documented in ``HELP``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from scrapy import signals
from scrapy.exceptions import NotConfigured

from scraper_project.observability.config import ObservabilityConfig

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable
    from wsgiref.simple_server import WSGIServer

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

__all__ = ["PrometheusExtension", "StatsBridge", "metric_name"]

logger = logging.getLogger(__name__)

_INVALID = re.compile(r"[^a-zA-Z0-9_]+")
_GAUGE_TAIL = re.compile(r"(?:^|[/_])(?:max|min|current|startup|p\d+)$")


def metric_name(key: str, prefix: str = "scrapy_") -> str:
    """``report/status/2xx`` -> ``scrapy_report_status_2xx``."""
    return prefix + _INVALID.sub("_", key).strip("_").lower()


class StatsBridge(Collector):
    """A prometheus-client collector reading a Scrapy stats collector."""

    def __init__(self, stats: StatsCollector, prefix: str = "scrapy_") -> None:
        self.stats = stats
        self.prefix = prefix

    def _snapshot(self) -> list[tuple[str, Any]]:
        data = self.stats.get_stats()
        for _ in range(3):
            try:  # a C-level copy; the crawl may add a key meanwhile
                return list(data.items())
            except RuntimeError:
                continue
        return []

    def collect(self) -> Iterable[Metric]:
        seen: set[str] = set()
        for key, value in sorted(self._snapshot()):
            if isinstance(value, bool) or not isinstance(value, (int, float, datetime)):
                continue
            name = metric_name(key, self.prefix)
            metric: Metric
            if isinstance(value, datetime):
                name += "_timestamp_seconds"
                metric = GaugeMetricFamily(name, f"Scrapy stat {key}", value=value.timestamp())
            elif isinstance(value, int) and not _GAUGE_TAIL.search(key):
                if name.endswith("_total"):
                    name = name[: -len("_total")]
                metric = CounterMetricFamily(name, f"Scrapy stat {key}", value=value)
            else:
                metric = GaugeMetricFamily(name, f"Scrapy stat {key}", value=float(value))
            if name in seen:  # two keys that differ only in punctuation
                continue
            seen.add(name)
            yield metric


class PrometheusExtension:
    """``EXTENSIONS``: see the module docstring."""

    def __init__(self, stats: StatsCollector, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatsBridge(stats))
        self.server: WSGIServer | None = None
        self.thread: threading.Thread | None = None
        self.url: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrometheusExtension:
        config = ObservabilityConfig.from_settings(crawler.settings)
        if not config.prometheus_enabled:
            # No message: Scrapy would log one at WARNING for a default choice.
            raise NotConfigured
        assert crawler.stats is not None
        ext = cls(crawler.stats, config.prometheus_host, config.prometheus_port)
        crawler.signals.connect(ext.start, signals.spider_opened)
        crawler.signals.connect(ext.stop, signals.spider_closed)
        return ext

    def start(self) -> None:
        """Start serving ``/metrics``; log the URL."""
        try:
            self.server, self.thread = start_http_server(self.port, self.host, self.registry)
        except OSError as exc:
            logger.error(
                "Cannot serve Prometheus metrics on %(host)s:%(port)d: %(error)s",
                {"host": self.host, "port": self.port, "error": exc},
            )
            return
        port = self.server.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}/metrics"
        logger.info(
            "Prometheus metrics at %(url)s", {"url": self.url}, extra={"prometheus_url": self.url}
        )

    def stop(self) -> None:
        """Stop the server (waits up to its 0.5 s poll interval)."""
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
