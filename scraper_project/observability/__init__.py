"""Observability: JSON logs, per-URL events, metrics, progress and a summary.

Components (enabled in ``settings.py``, block ``# -- observability``):

- :mod:`.jsonlog`: ``PAGES_LOG_JSON`` -- one JSON object per log line;
- :mod:`.pipeline`: ``ObservabilityPipeline`` -- latency, bytes, the
  per-URL log event;
- :mod:`.extension`: ``SummaryExtension`` -- the end-of-crawl summary and
  ``PAGES_STATS_FILE``;
- :mod:`.progress`: ``ProgressExtension`` -- a progress bar or progress lines;
- :mod:`.prometheus`: ``PrometheusExtension`` -- ``/metrics`` during the crawl;
- :mod:`.addon`: ``DebugAddon`` -- ``PAGES_DEBUG``.

Every setting is described in :mod:`.config`.
"""

from scraper_project.observability.config import ObservabilityConfig

__all__ = ["ObservabilityConfig"]
