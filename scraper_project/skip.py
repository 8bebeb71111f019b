"""Skip rules: URLs of the list that are never fetched (``PAGES_SKIP``).

    scrapy crawl pages -a urls=urls.txt -O report.csv -s 'PAGES_SKIP=["/logout", "^https?://staging\\."]'
    scrapy crawl pages -a urls=urls.txt -O report.csv -s PAGES_SKIP_FILE=skip.txt

A pattern is a Python regular expression, searched (``re.search``: anywhere,
anchor it with ``^``/``$``) in the *normalised* URL, the ``url`` column of the
report: lower-case scheme and host, IDNA host (``xn--...``), no default port,
no fragment, percent-encoding normalised. So ``^http://example\\.com/`` also
skips ``HTTP://Example.COM:80/#top``, as the report shows it. Matching is
case-sensitive; ``(?i)`` at the start of a pattern makes it insensitive.

A line whose URL matches becomes a row ``error = skipped: <pattern>`` (the
first matching pattern, in the order given: ``PAGES_SKIP``, then the file)
and is never fetched: no robots.txt request for it either. Invalid lines
stay ``invalid_url`` rows and duplicates stay duplicates. A redirect to a
URL that matches is not followed
(:class:`~scraper_project.middlewares.skip.SkipRedirectMiddleware`).

Cost: nothing per URL when no pattern is set (``from_settings`` returns
``None`` and every caller tests for that); else one ``search`` of one
compiled alternation of every pattern. Patterns that cannot share an
alternation (a backreference, whose group numbers would shift; a leading
``(?x)``, whose comments would swallow the closing parenthesis; group names
used twice) are searched one by one, which is still correct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from scraper_project.config import get_json_list, usage_error

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["MAX_PATTERN_STATS", "SKIPPED", "SKIP_REDIRECT_KEY", "SkipRules"]

#: The error class of a skipped URL's row.
SKIPPED: Final = "skipped"
#: Request meta: ``(pattern, target)`` of a redirect that was not followed.
SKIP_REDIRECT_KEY: Final = "pages_skip_redirect"
#: Patterns counted apart in the stats (``input/skipped/<pattern>``); later
#: ones are counted only in the total.
MAX_PATTERN_STATS: Final = 100

_EXAMPLE: Final = '\'["/logout", "^https://staging\\\\."]\''
_LEADING_FLAGS: Final = re.compile(r"\(\?([aiLmsux]+)\)")
# A backslash and a digit, or (?P=name): renumbered groups would change it.
_BACKREFERENCE: Final = re.compile(r"\\[1-9]|\(\?P=")


def _combinable(pattern: str) -> str | None:
    """``pattern`` as one alternative of a bigger alternation, or ``None``."""
    if _BACKREFERENCE.search(pattern):
        return None
    flags = _LEADING_FLAGS.match(pattern)
    if flags is None:
        return f"(?:{pattern})"
    if "x" in flags.group(1):
        return None
    # Global flags are allowed only at the start: make them scoped.
    return f"(?{flags.group(1)}:{pattern[flags.end() :]})"


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    if not pattern:
        raise usage_error(f"{where}: an empty pattern would skip every URL")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise usage_error(
            f"{where}: {pattern!r} is not a valid regular expression ({exc})"
        ) from None


def read_skip_file(path: str) -> list[tuple[str, str]]:
    """``(pattern, where)`` for each pattern of a skip file: one per line,
    UTF-8, surrounding whitespace removed, blank lines and lines starting
    with ``#`` ignored. ``UsageError`` if it cannot be read."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise usage_error(
            f"PAGES_SKIP_FILE must be a readable file of regular expressions, "
            f"got {path!r} ({reason})"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise usage_error(f"PAGES_SKIP_FILE {path!r} is not UTF-8 text ({exc})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        pattern = line.strip()
        if pattern and not pattern.startswith("#"):
            entries.append((pattern, f"PAGES_SKIP_FILE {path!r} line {number}"))
    return entries


@dataclass(frozen=True)
class SkipRules:
    """Compiled skip patterns; :meth:`match` says which one a URL matches."""

    patterns: tuple[str, ...]
    compiled: tuple[re.Pattern[str], ...]
    #: One alternation of every pattern, or ``None`` if some cannot share one.
    combined: re.Pattern[str] | None

    @classmethod
    def compile(cls, entries: list[tuple[str, str]]) -> SkipRules:
        """Rules from ``(pattern, where)`` pairs (``where`` names the setting
        in a ``UsageError``); a pattern given twice counts once."""
        where: dict[str, str] = {}
        for pattern, setting in entries:
            where.setdefault(pattern, setting)  # the first mention, in order
        patterns = tuple(where)
        compiled = tuple(_compile(p, where[p]) for p in patterns)
        parts = [_combinable(p) for p in patterns]
        combined = None
        if all(part is not None for part in parts):
            try:
                combined = re.compile("|".join(parts))  # type: ignore[arg-type]
            except re.error:  # a group name used in two patterns
                combined = None
        return cls(patterns, compiled, combined)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> SkipRules | None:
        """``PAGES_SKIP`` and ``PAGES_SKIP_FILE``, or ``None`` when neither
        holds a pattern. ``UsageError`` naming the setting and the pattern."""
        entries = [
            (p, "PAGES_SKIP") for p in get_json_list(settings, "PAGES_SKIP", example=_EXAMPLE)
        ]
        path = settings.get("PAGES_SKIP_FILE")
        if path:
            entries += read_skip_file(str(path))
        return cls.compile(entries) if entries else None

    def match(self, url: str) -> str | None:
        """The first pattern (in the order given) found in ``url``, or ``None``."""
        combined = self.combined
        if combined is not None and combined.search(url) is None:
            return None
        for pattern, regex in zip(self.patterns, self.compiled, strict=True):
            if regex.search(url) is not None:
                return pattern
        return None
