"""Typed setting readers: a bad value is one line naming the setting, the
value and what is expected.

Every component reads its own settings through these readers in
``from_crawler`` and exposes the same checks as a ``check_settings(settings)``
classmethod, which ``scrapy crawl`` runs for every enabled component before
anything starts (see :mod:`scraper_project.commands.crawl`). A reader raises
:class:`~scrapy.exceptions.UsageError` (``print_help=False``); the message
ends with ``(from environment variable X)`` when ``settings.py`` took the
value from the environment.

Also here: the names of every known setting (Scrapy's, the project's, those
of the plugins it uses), for "did you mean" on a mistyped ``-s NAME``, and the
checks of the Scrapy settings the project depends on (Scrapy validates few of
them itself, most fail later with a traceback).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import ssl
from collections.abc import Collection, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = [
    "ENV_SOURCES",
    "PROJECT_PREFIXES",
    "check_scrapy_settings",
    "check_setting_names",
    "did_you_mean",
    "get_bool",
    "get_choice",
    "get_dict",
    "get_float",
    "get_int",
    "get_json_list",
    "get_list",
    "get_log_level",
    "get_path",
    "known_settings",
    "usage_error",
]

#: Settings that ``settings.py`` takes from an environment variable.
ENV_SOURCES: Final = {
    "CONCURRENT_REQUESTS": "SCRAPER_CONCURRENCY",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "SCRAPER_CONCURRENCY_PER_DOMAIN",
    "LOG_LEVEL": "SCRAPER_LOG_LEVEL",
    "PAGES_LOG_JSON": "SCRAPER_LOG_JSON",
    "PAGES_DEBUG": "SCRAPER_DEBUG",
    "PAGES_REDIS_URL": "SCRAPER_REDIS_URL",
    "PAGES_CLUSTER_KEY": "SCRAPER_CLUSTER_KEY",
}

#: Prefixes of the project's own settings: an unknown name with one of them
#: is a mistake, never another plugin's setting.
PROJECT_PREFIXES: Final = (
    "PAGES_",
    "RATELIMIT_",
    "RETRY_",
    "DNS_",
    "DNSCACHE_",
    "RESOLVE_",
    "FAKE_USERAGENT_",
    "FAKEUSERAGENT_",
    "ROBOTSTXT_",
    "COOKIES_",
    "CLOSESPIDER_",
    "CONCURRENT_",
    "DOWNLOAD_",
)

# Settings of the plugins the project uses (scrapy-redis, scrapy-fake-useragent)
# that neither Scrapy's defaults nor settings.py name.
_PLUGIN_SETTINGS: Final = frozenset(
    {
        "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PARAMS", "REDIS_ENCODING",
        "REDIS_START_URLS_KEY", "REDIS_START_URLS_AS_SET", "REDIS_START_URLS_AS_ZSET",
        "REDIS_ITEMS_KEY", "REDIS_ITEMS_SERIALIZER", "SCHEDULER_PERSIST",
        "SCHEDULER_FLUSH_ON_START", "SCHEDULER_IDLE_BEFORE_CLOSE", "SCHEDULER_QUEUE_KEY",
        "SCHEDULER_QUEUE_CLASS", "SCHEDULER_DUPEFILTER_KEY", "SCHEDULER_DUPEFILTER_CLASS",
        "SCHEDULER_SERIALIZER", "DUPEFILTER_KEY", "STATS_KEY", "MAX_IDLE_TIME_BEFORE_CLOSE",
        "FAKEUSERAGENT_PROVIDERS", "FAKEUSERAGENT_FALLBACK", "FAKE_USERAGENT_RANDOM_UA_TYPE",
        "FAKER_RANDOM_UA_TYPE", "RANDOM_UA_PER_PROXY", "CONCURRENT_REQUESTS_PER_IP",
    }
)  # fmt: skip

_FLOAT_TYPES: Final = (int, float, str)


def usage_error(message: str) -> UsageError:
    """A one-line :class:`UsageError` (no help text after it)."""
    return UsageError(message, print_help=False)


def _source(settings: BaseSettings, name: str) -> str:
    env = ENV_SOURCES.get(name)
    if env and env in os.environ and settings.getpriority(name) == SETTINGS_PRIORITIES["project"]:
        return f" (from environment variable {env})"
    return ""


def _fail(settings: BaseSettings, name: str, expected: str, raw: Any) -> UsageError:
    return usage_error(f"{name} must be {expected}, got {raw!r}{_source(settings, name)}")


# -- readers ------------------------------------------------------------------


def get_bool(settings: BaseSettings, name: str, default: bool = False) -> bool:
    """A boolean, with the spellings Scrapy's ``getbool`` accepts (``True``,
    ``true``, ``1``, ``False``, ``false``, ``0``), so that every component
    reading the setting with ``getbool`` later gets the same answer."""
    raw = settings.get(name, default)
    try:
        return settings.getbool(name, default)
    except (TypeError, ValueError):
        raise _fail(settings, name, "a boolean (true/false, 1/0)", raw) from None


def get_int(
    settings: BaseSettings,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int = 0,
) -> int:
    """An integer within ``[minimum, maximum]``."""
    raw = settings.get(name, default)
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise _fail(settings, name, "an integer", raw) from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(settings, name, _bounds(minimum, maximum, integer=True), raw)
    return value


def get_float(
    settings: BaseSettings,
    name: str,
    *,
    minimum: float | None = 0.0,
    maximum: float | None = None,
    positive: bool = False,
    default: float = 0.0,
) -> float:
    """A finite number within ``[minimum, maximum]`` (``> 0`` if ``positive``)."""
    raw = settings.get(name, default)
    try:
        if isinstance(raw, bool) or not isinstance(raw, _FLOAT_TYPES):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        raise _fail(settings, name, "a number", raw) from None
    low = 0.0 if positive else minimum
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (positive and value <= 0)
        or (maximum is not None and value > maximum)
    ):
        bounds = "a number > 0" if positive else "a number " + _bounds(minimum, maximum)
        raise _fail(settings, name, bounds.strip(), raw)
    return value


def _bounds(minimum: float | None, maximum: float | None, *, integer: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return "> 0" if integer and minimum == 1 else f">= {minimum:g}"
    if maximum is not None:
        return f"<= {maximum:g}"
    return ""


def get_dict(
    settings: BaseSettings, name: str, *, example: str = '{"key": "value"}'
) -> dict[Any, Any]:
    """A dict, or a JSON object in a string (``-s 'NAME={"a": 1}'``)."""
    raw = settings.get(name)
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict):
            value = dict(value)  # a BaseSettings, or pairs
    except (TypeError, ValueError):
        raise _fail(settings, name, f"a JSON object, e.g. {example}", raw) from None
    return dict(value)


def get_list(settings: BaseSettings, name: str) -> list[str]:
    """A list of strings: a list, or a comma-separated string (Scrapy's
    ``getlist``), each item stripped, empty items dropped."""
    raw = settings.get(name)
    try:
        items = settings.getlist(name)
    except (TypeError, ValueError):
        raise _fail(settings, name, "a comma-separated list", raw) from None
    return [text for text in (str(item).strip() for item in items) if text]


def get_json_list(settings: BaseSettings, name: str, *, example: str = '["a", "b"]') -> list[str]:
    """A list of strings given as a list, or as a JSON array in a string
    (``-s 'NAME=["a", "b"]'``): for items that may hold commas (regular
    expressions), where ``get_list``'s comma splitting would cut them."""
    raw = settings.get(name)
    if raw is None or raw == "":
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError
    except (TypeError, ValueError):
        raise _fail(settings, name, f"a JSON list of strings, e.g. {example}", raw) from None
    return list(value)


def get_choice(
    settings: BaseSettings, name: str, choices: Collection[str], default: str = ""
) -> str:
    """One of ``choices`` (any case), lowercased."""
    raw = settings.get(name, default)
    value = str(raw if raw is not None else "").strip().lower()
    if value not in choices:
        raise _fail(settings, name, "one of " + ", ".join(choices), raw)
    return value


def get_log_level(
    settings: BaseSettings,
    name: str,
    default: str = "INFO",
    *,
    expected: str = "a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)",
) -> int:
    """A log level: a name (``DEBUG``, ``INFO``, ...) or a number."""
    raw = settings.get(name, default)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise _fail(settings, name, expected, raw)
    return level


def get_path(settings: BaseSettings, name: str) -> Path | None:
    """A file to write (or ``None`` when unset): its folder must exist."""
    raw = settings.get(name)
    if not raw:
        return None
    path = Path(str(raw)).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise _fail(
            settings, name, f"a file in an existing folder ({str(folder)!r} is not one)", raw
        )
    if path.is_dir():
        raise _fail(settings, name, "a file, not a folder", raw)
    return path


# -- known setting names --------------------------------------------------------


@cache
def known_settings() -> frozenset[str]:
    """Every setting name Scrapy, this project (``settings.py``, whatever is
    added there) and the plugins it uses know."""
    import scrapy.settings.default_settings as scrapy_defaults

    import scraper_project.settings as project

    names = {n for n in dir(scrapy_defaults) if n.isupper()}
    names |= {n for n in dir(project) if n.isupper()}
    return frozenset(names | _PLUGIN_SETTINGS)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate, or ``""``."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {matches[0]}?)" if matches else ""


def check_setting_names(names: Iterable[str]) -> list[str]:
    """Raise ``UsageError`` for a name given on the command line that no
    component knows and that is either close to a known one or has one of
    the project's prefixes; return warnings for the other unknown names
    (settings of a plugin this project does not know of)."""
    known = known_settings()
    warnings = []
    for name in names:
        if name in known:
            continue
        hint = did_you_mean(name, known)
        if hint or name.startswith(PROJECT_PREFIXES):
            raise usage_error(f"unknown setting {name}{hint or ': no such setting'}")
        warnings.append(f"unknown setting {name} (not one of Scrapy's or this project's)")
    return warnings


# -- the Scrapy settings the project depends on ----------------------------------

_TLS_VERSIONS: Final = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def check_scrapy_settings(settings: BaseSettings) -> None:
    """Validate the Scrapy settings this project relies on (Scrapy reads them
    with ``getint``/``getbool``/... and fails with a traceback, or at the
    first request). The project's own components check their own settings."""
    for name in ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "CONCURRENT_ITEMS"):
        get_int(settings, name, minimum=1)
    for name in ("DOWNLOAD_MAXSIZE", "DOWNLOAD_WARNSIZE", "REDIRECT_MAX_TIMES", "DNSCACHE_SIZE"):
        get_int(settings, name, minimum=0)
    get_int(settings, "REACTOR_THREADPOOL_MAXSIZE", minimum=1, default=10)
    get_int(settings, "MEMUSAGE_LIMIT_MB", minimum=0)
    get_int(settings, "MEMUSAGE_WARNING_MB", minimum=0)
    for name in ("DOWNLOAD_TIMEOUT", "DOWNLOAD_DELAY", "DNS_TIMEOUT"):
        get_float(settings, name)
    get_float(settings, "LOGSTATS_INTERVAL", default=60.0)
    for name in (
        "ROBOTSTXT_OBEY", "COOKIES_ENABLED", "COOKIES_DEBUG", "REDIRECT_ENABLED",
        "RETRY_ENABLED", "METAREFRESH_ENABLED", "HTTPERROR_ALLOW_ALL", "COMPRESSION_ENABLED",
        "DNSCACHE_ENABLED", "DOWNLOADER_STATS", "TELNETCONSOLE_ENABLED", "MEMUSAGE_ENABLED",
        "DOWNLOAD_VERIFY_CERTIFICATES", "DOWNLOAD_FAIL_ON_DATALOSS", "LOG_ENABLED",
        "FEED_STORE_EMPTY", "MEMDEBUG_ENABLED",
    ):  # fmt: skip
        get_bool(settings, name)
    get_log_level(settings, "LOG_LEVEL")
    get_path(settings, "LOG_FILE")
    if settings.get("USER_AGENT") is not None and not isinstance(settings.get("USER_AGENT"), str):
        raise _fail(settings, "USER_AGENT", "a string", settings.get("USER_AGENT"))
    _check_tls(settings)


def _check_tls(settings: BaseSettings) -> None:
    bounds = []
    for name in ("DOWNLOAD_TLS_MIN_VERSION", "DOWNLOAD_TLS_MAX_VERSION"):
        raw = settings.get(name)
        if raw is None or raw == "":
            continue
        if raw not in _TLS_VERSIONS:
            raise _fail(settings, name, "one of " + ", ".join(_TLS_VERSIONS), raw)
        bounds.append(_TLS_VERSIONS.index(raw))
    if len(bounds) == 2 and bounds[0] > bounds[1]:
        raise usage_error(
            f"DOWNLOAD_TLS_MIN_VERSION ({settings.get('DOWNLOAD_TLS_MIN_VERSION')}) is above "
            f"DOWNLOAD_TLS_MAX_VERSION ({settings.get('DOWNLOAD_TLS_MAX_VERSION')})"
        )
    ciphers = settings.get("DOWNLOADER_CLIENT_TLS_CIPHERS")
    if ciphers:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(str(ciphers))
        except ssl.SSLError:
            raise _fail(
                settings, "DOWNLOADER_CLIENT_TLS_CIPHERS", "an OpenSSL cipher list", ciphers
            ) from None
