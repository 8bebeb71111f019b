"""The observability settings, parsed and validated once.

Settings (``-s NAME=VALUE``; the environment variables are read by
``settings.py``, for tools that cannot pass ``-s``; ``-s`` wins):

- ``PAGES_LOG_JSON`` (bool, ``False``; env ``SCRAPER_LOG_JSON``): every log
  line, on stderr and in ``LOG_FILE``, is one JSON object.
- ``PAGES_URL_LOG_LEVEL`` (str, ``"DEBUG"``): level of the one log event per
  finished URL; ``"OFF"`` for none.
- ``PAGES_LATENCY_SAMPLES`` (int, ``100000``): latencies kept for the
  percentiles (a uniform sample beyond that: 4 bytes each).
- ``PAGES_STATS_FILE`` (str, ``""``): write the final stats there as JSON;
  ``%(name)s``, ``%(time)s`` and spider attributes (``%(_job)s`` on Scrapyd)
  are replaced, as in ``FEEDS`` URIs.
- ``PAGES_PROMETHEUS_ENABLED`` (bool, ``False``), ``PAGES_PROMETHEUS_HOST``
  (str, ``"127.0.0.1"``), ``PAGES_PROMETHEUS_PORT`` (int, ``0`` = a free one).
- ``PAGES_PROGRESS`` (``"auto"``, ``"on"`` or ``"off"``; also a bool): the
  live progress bar; ``auto`` = when stderr is a terminal.
- ``PAGES_PROGRESS_INTERVAL`` (float, ``10``): seconds between progress log
  lines when there is no bar; ``0`` = none.
- ``PAGES_DEBUG`` (bool, ``False``; env ``SCRAPER_DEBUG``): Scrapy's memory
  debugging and the telnet console on 127.0.0.1 (see :mod:`.addon`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

from scraper_project.config import get_log_level

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = [
    "ENV_VARIABLES",
    "ObservabilityConfig",
    "ObservabilitySettings",
    "env_flag",
    "parse_bool",
]

ProgressMode = Literal["auto", "on", "off"]

# Settings that settings.py takes from the environment.
ENV_VARIABLES = {
    "PAGES_LOG_JSON": "SCRAPER_LOG_JSON",
    "PAGES_DEBUG": "SCRAPER_DEBUG",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_OFF_LEVELS = frozenset({"", "OFF", "NONE", "FALSE", "0"})


def parse_bool(value: Any) -> bool:
    """``value`` as a bool: a bool, an int, or one of ``1/true/yes/on`` and
    ``0/false/no/off`` (any case). Raises ``ValueError`` otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"not a boolean: {value!r}")


def env_flag(name: str, default: bool = False) -> bool | str:
    """The environment variable ``name`` as a bool, for ``settings.py``.

    An unset variable gives ``default``; a value that is not a boolean is
    returned as is, so that the setting's validation names it.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        return raw


def _source(settings: BaseSettings, name: str) -> str:
    env = ENV_VARIABLES.get(name)
    if env and env in os.environ and settings.getpriority(name) == SETTINGS_PRIORITIES["project"]:
        return f" (from environment variable {env})"
    return ""


def _bool(settings: BaseSettings, name: str) -> bool:
    raw = settings.get(name, False)
    try:
        return parse_bool(raw)
    except ValueError:
        raise UsageError(
            f"{name} must be a boolean, got {raw!r}{_source(settings, name)}", print_help=False
        ) from None


def _int(settings: BaseSettings, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = settings.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise UsageError(f"{name} must be an integer {bound}, got {raw!r}", print_help=False)
    return value


def _level(settings: BaseSettings, name: str) -> int | None:
    raw = settings.get(name, "DEBUG")
    if raw is None or str(raw).strip().upper() in _OFF_LEVELS:
        return None
    return get_log_level(
        settings, name, "DEBUG", expected="a log level name (DEBUG, INFO, ...) or OFF"
    )


def _progress(settings: BaseSettings, name: str) -> ProgressMode:
    raw = settings.get(name, "auto")
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return "auto"
    try:
        return "on" if parse_bool(raw) else "off"
    except ValueError:
        raise UsageError(f"{name} must be auto, on or off, got {raw!r}", print_help=False) from None


class ObservabilitySettings:
    """Mixin of the observability components: ``check_settings`` validates
    every ``PAGES_*`` observability setting (they share one parser)."""

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> ObservabilityConfig:
        return ObservabilityConfig.from_settings(settings)


@dataclass(frozen=True)
class ObservabilityConfig:
    """Every ``PAGES_*`` observability setting, typed (see the module docstring)."""

    log_json: bool = False
    url_log_level: int | None = logging.DEBUG
    latency_samples: int = 100_000
    stats_file: str = ""
    prometheus_enabled: bool = False
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 0
    progress: ProgressMode = "auto"
    progress_interval: float = 10.0
    debug: bool = False

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ObservabilityConfig:
        """Parse and validate; raise ``UsageError`` naming a bad setting."""
        interval_raw = settings.get("PAGES_PROGRESS_INTERVAL", 10.0)
        try:
            interval = float(interval_raw)
        except (TypeError, ValueError):
            interval = math.nan
        if not interval >= 0 or math.isinf(interval):
            raise UsageError(
                f"PAGES_PROGRESS_INTERVAL must be a number of seconds >= 0, got {interval_raw!r}",
                print_help=False,
            )
        host = str(settings.get("PAGES_PROMETHEUS_HOST") or "127.0.0.1")
        return cls(
            log_json=_bool(settings, "PAGES_LOG_JSON"),
            url_log_level=_level(settings, "PAGES_URL_LOG_LEVEL"),
            latency_samples=_int(settings, "PAGES_LATENCY_SAMPLES", 100_000, 1),
            stats_file=str(settings.get("PAGES_STATS_FILE") or ""),
            prometheus_enabled=_bool(settings, "PAGES_PROMETHEUS_ENABLED"),
            prometheus_host=host,
            prometheus_port=_int(settings, "PAGES_PROMETHEUS_PORT", 0, 0, 65535),
            progress=_progress(settings, "PAGES_PROGRESS"),
            progress_interval=interval,
            debug=_bool(settings, "PAGES_DEBUG"),
        )
