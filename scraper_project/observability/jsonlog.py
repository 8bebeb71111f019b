"""One JSON object per log line, Scrapy's own lines included.

Scrapy builds its root log handler (stderr, or ``LOG_FILE``) in
``scrapy.utils.log._get_handler(settings)``, called by ``configure_logging``
when ``scrapy crawl`` starts and again by ``install_scrapy_root_handler``
each time a crawler is created and started (``Crawler._update_root_log_handler``).
No setting chooses its formatter, so :func:`install` wraps that factory:
the wrapper calls Scrapy's, then, when the settings it is given have
``PAGES_LOG_JSON`` on, replaces the handler's formatter with a
:class:`JsonLogFormatter`. Everything else (which handler, its level, its
filters) stays Scrapy's. ``settings.py`` calls :func:`install` when it is
imported, which ``scrapy crawl`` does before configuring logging, so the very
first line ("Scrapy 2.19 started") is JSON too.

Each line holds ``timestamp`` (ISO 8601, UTC, milliseconds), ``level``,
``logger``, ``message`` and the fields the call passed in ``extra={...}``;
a traceback is the ``exc_info`` field of the same line, and a multi-line
message (the final stats dump) is one JSON string.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scraper_project.observability.config import parse_bool

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.settings import Settings

__all__ = ["install", "json_enabled"]

_WRAPPED = "_pages_json_wrapped"


def __getattr__(name: str) -> Any:
    # python-json-logger is imported only when JSON logs are on (3 MB).
    if name == "JsonLogFormatter":
        from scraper_project.observability.jsonformat import JsonLogFormatter

        return JsonLogFormatter
    raise AttributeError(name)


def json_enabled(settings: Settings) -> bool:
    """Whether ``settings`` ask for JSON logs (an invalid value: no; the
    crawl's settings check reports it)."""
    try:
        return parse_bool(settings.get("PAGES_LOG_JSON", False))
    except ValueError:
        return False


def install() -> None:
    """Wrap ``scrapy.utils.log._get_handler`` (idempotent; see the module
    docstring). Without ``PAGES_LOG_JSON`` the handler is exactly Scrapy's."""
    import scrapy.utils.log as scrapy_log

    original: Callable[[Settings], logging.Handler] = scrapy_log._get_handler
    if getattr(original, _WRAPPED, False):
        return

    def _get_handler(settings: Settings) -> logging.Handler:
        handler = original(settings)
        if json_enabled(settings):
            from scraper_project.observability.jsonformat import JsonLogFormatter

            handler.setFormatter(JsonLogFormatter())
        return handler

    setattr(_get_handler, _WRAPPED, True)
    _get_handler.__wrapped__ = original  # type: ignore[attr-defined]
    _get_handler.__doc__ = original.__doc__
    scrapy_log._get_handler = _get_handler
