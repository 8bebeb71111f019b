"""How a crawl ended, for scripts: the exit code of ``scrapy crawl`` and the
finish reason of the crawl (what Scrapyd jobs show), one table:

======  ===========================================  ==========================
 code   finish reason                                 meaning
======  ===========================================  ==========================
 0      ``finished``                                  every line accounted for,
                                                      every URL finished
 1      (none)                                        an unexpected error (a bug,
                                                      a traceback is logged)
 2      ``input_error`` (or no crawl at all)          usage or input error: a bad
                                                      argument, setting or list
 3      ``closespider_timeout``, ``shutdown``, any    partial report: stopped
        other stop                                    early, ``cancelled`` and
                                                      ``not_attempted`` rows
 4      ``fail_on``                                   finished, and rows match
                                                      ``PAGES_FAIL_ON``
 130,   (none)                                        a second SIGINT / SIGTERM
 143                                                  (128 + the signal)
======  ===========================================  ==========================

Code 1 is Python's own for an uncaught exception, 2 is the usual usage-error
code (Scrapy's and argparse's too), 128+N is the shell's convention for death
by signal N; 3 and 4 are free of those meanings. A stopped crawl is reported
as partial (3) even when some of its rows also match ``PAGES_FAIL_ON``: the
report is incomplete either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAIL_ON",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "FAIL_ON_REASON",
    "INPUT_ERROR_REASON",
    "exit_code",
    "summary",
]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_PARTIAL: Final = 3
EXIT_FAIL_ON: Final = 4

INPUT_ERROR_REASON: Final = "input_error"
FAIL_ON_REASON: Final = "fail_on"


def exit_code(stats: Mapping[str, Any]) -> int:
    """The exit code of a crawl that ran, from its final stats."""
    reason = stats.get("finish_reason")
    if reason == "finished":
        return EXIT_OK
    if reason == INPUT_ERROR_REASON:
        return EXIT_USAGE
    if reason == FAIL_ON_REASON:
        return EXIT_FAIL_ON
    if reason is None:
        return EXIT_ERROR  # never opened
    return EXIT_PARTIAL


def summary(code: int, stats: Mapping[str, Any]) -> str:
    """One line saying what the exit code means for this crawl."""
    reason = stats.get("finish_reason")
    if code == EXIT_OK:
        return "Exit code 0: every line accounted for, every URL finished"
    if code == EXIT_USAGE:
        return f"Exit code 2: the URL list could not be used ({stats.get('input/error', reason)})"
    if code == EXIT_FAIL_ON:
        return f"Exit code 4: {stats.get('fail_on/summary', 'rows match PAGES_FAIL_ON')}"
    if code == EXIT_PARTIAL:
        cancelled = stats.get("report/error/cancelled", 0)
        unattempted = stats.get("report/error/not_attempted", 0)
        return (
            f"Exit code 3: partial report, the crawl stopped early ({reason}): "
            f"{cancelled} cancelled and {unattempted} not_attempted rows"
        )
    return f"Exit code {code}: the crawl did not run to its end ({reason})"
