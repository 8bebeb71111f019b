"""``ClusterAddon``: ``PAGES_REDIS_URL`` turns the cluster mode's components on.

A Scrapy add-on (``ADDONS``), so it runs after every ``-s`` option is in: it
sets scrapy-redis's settings (``SCHEDULER``, ``SCHEDULER_QUEUE_CLASS``,
``DUPEFILTER_CLASS``, their keys under ``PAGES_CLUSTER_KEY``,
``SCHEDULER_PERSIST = True`` so that the queue outlives each worker,
``SCHEDULER_IDLE_BEFORE_CLOSE = 0`` so that no Redis call blocks the reactor,
``REDIS_URL``). A value given with ``-s`` for one of them wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.settings import SETTINGS_PRIORITIES

from scraper_project.cluster.connection import cluster_key, is_clustered

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["ClusterAddon", "cluster_settings"]


def cluster_settings(settings: BaseSettings) -> dict[str, object]:
    key = cluster_key(settings)
    return {
        "SCHEDULER": "scraper_project.cluster.scheduler.ClusterScheduler",
        "SCHEDULER_QUEUE_CLASS": "scraper_project.cluster.scheduler.LeasedQueue",
        "SCHEDULER_QUEUE_KEY": f"{key}:queue",
        "DUPEFILTER_CLASS": "scraper_project.cluster.scheduler.URLDupeFilter",
        "SCHEDULER_DUPEFILTER_KEY": f"{key}:dupefilter",
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_FLUSH_ON_START": False,
        "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
        "REDIS_URL": settings.get("PAGES_REDIS_URL"),
    }


class ClusterAddon:
    """``ADDONS``: see the module docstring."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not is_clustered(settings):
            return
        cmdline = SETTINGS_PRIORITIES["cmdline"]
        for name, value in cluster_settings(settings).items():
            if (settings.getpriority(name) or 0) < cmdline:
                settings.set(name, value, priority="spider")
