"""Extensions whose libraries are imported only when they are switched on.

prometheus-client costs about 10 ms and several MB of memory at start-up;
most crawls never turn the endpoint on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from scraper_project.observability.config import ObservabilitySettings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

__all__ = ["LazyPrometheusExtension"]


class LazyPrometheusExtension(ObservabilitySettings):
    """``EXTENSIONS``: :class:`~.prometheus.PrometheusExtension` when
    ``PAGES_PROMETHEUS_ENABLED``, else nothing (and no import)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        if not cls.check_settings(crawler.settings).prometheus_enabled:
            raise NotConfigured
        from scraper_project.observability.prometheus import PrometheusExtension

        return PrometheusExtension.from_crawler(crawler)
