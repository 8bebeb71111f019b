"""``PAGES_DEBUG``: Scrapy's memory debugging and the telnet console, in one switch.

A Scrapy add-on (``ADDONS``): its ``update_settings`` runs when the crawl
starts, after every ``-s`` option and the spider's settings are in and
before any extension reads them, which is the one place where a setting
can turn on other settings. With ``PAGES_DEBUG`` (or the environment
variable ``SCRAPER_DEBUG=1``) it sets:

- ``MEMDEBUG_ENABLED = True``: at the end, ``memdebug/gc_garbage_count`` and
  ``memdebug/live_refs/<class>`` stats (objects still alive that should not be);
- ``TELNETCONSOLE_ENABLED = True`` and ``TELNETCONSOLE_HOST = "127.0.0.1"``:
  a telnet console on loopback only (port from ``TELNETCONSOLE_PORT``, 6023
  to 6073; the password is logged at INFO): ``telnet 127.0.0.1 6023``, then
  ``est()`` for the engine status, ``prefs()`` for live references.

A value given with ``-s`` for one of those settings wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.settings import SETTINGS_PRIORITIES

from scraper_project.observability.config import parse_bool

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["DEBUG_SETTINGS", "DebugAddon"]

DEBUG_SETTINGS: dict[str, object] = {
    "MEMDEBUG_ENABLED": True,
    "TELNETCONSOLE_ENABLED": True,
    "TELNETCONSOLE_HOST": "127.0.0.1",
}


class DebugAddon:
    """``ADDONS``: see the module docstring."""

    def update_settings(self, settings: BaseSettings) -> None:
        try:
            debug = parse_bool(settings.get("PAGES_DEBUG", False))
        except ValueError:
            return  # reported by ObservabilityConfig when the crawl starts
        if not debug:
            return
        cmdline = SETTINGS_PRIORITIES["cmdline"]
        for name, value in DEBUG_SETTINGS.items():
            if (settings.getpriority(name) or 0) < cmdline:
                settings.set(name, value, priority="spider")
