"""Progress: a live bar on a terminal, periodic log lines elsewhere.

``PAGES_PROGRESS`` = ``auto`` (default) shows a tqdm bar on stderr when
stderr is a terminal; ``on`` always, ``off`` never. Without a bar, a line
"Progress: ..." is logged every ``PAGES_PROGRESS_INTERVAL`` seconds (CI,
Scrapyd, a log file).

Progress is counted in input lines accounted for: rows written plus
duplicate lines (``report/rows + input/duplicates``), read from the live
stats by a timer, never per page. The total is known only for a list in a
local file: a thread counts its URL lines (not blank, not ``#``) at C speed
while the crawl starts; for standard input or a list given as a URL the bar
shows the count and the rate, without a total or an ETA.

While the bar is shown, Scrapy's root log handler (when it writes to the
same terminal) writes through ``tqdm.write``, which clears the bar, writes
the line and redraws the bar: log lines are never cut by it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from time import monotonic
from typing import IO, TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.log import get_scrapy_root_handler

from scraper_project.inputs import is_remote
from scraper_project.observability.config import ObservabilitySettings
from scraper_project.stats import live_stats

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from tqdm import tqdm

__all__ = ["ProgressExtension", "count_url_lines"]

logger = logging.getLogger(__name__)

BAR_REFRESH = 0.25  # seconds between bar updates
_CHUNK = 1 << 20
# Lines that the list reader skips: blank, or a comment.
_SKIPPED = re.compile(rb"^[ \t\r\f\v]*(?:#[^\n]*)?$", re.MULTILINE)


def count_url_lines(
    path: str | os.PathLike[str], stop: threading.Event | None = None
) -> int | None:
    """The URL lines of a list file (blank and ``#`` lines excluded), read in
    1 MiB chunks with C-level scans; ``None`` if ``stop`` was set first."""
    total = 0
    carry = b""
    with open(path, "rb") as f:
        while True:
            if stop is not None and stop.is_set():
                return None
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            data, carry = data[:cut], data[cut:]
            if data:
                lines = data.count(b"\n")
                # Each blank/comment line matches once before its newline.
                skipped = sum(1 for _ in _SKIPPED.finditer(data, 0, len(data) - 1))
                total += lines - skipped
    if carry and not _SKIPPED.fullmatch(carry):
        total += 1
    return total


def _format_eta(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _BarAwareStream:
    """A stream that writes through ``tqdm.write`` (bar cleared, then redrawn)."""

    def __init__(self, stream: IO[str]) -> None:
        from tqdm import tqdm

        self.stream = stream
        self._write = tqdm.write

    def write(self, text: str) -> int:
        self._write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


class ProgressExtension(ObservabilitySettings):
    """``EXTENSIONS``: see the module docstring."""

    def __init__(
        self,
        crawler: Crawler,
        stats: StatsCollector,
        *,
        bar: bool,
        interval: float,
        stream: IO[str] | None = None,
    ) -> None:
        self.crawler = crawler
        self.stats = stats
        self.use_bar = bar
        self.interval = interval
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.total: int | None = None
        self.bar: tqdm[Any] | None = None
        self._timer: Any = None
        self._stop_counting = threading.Event()
        self._handler: logging.StreamHandler[Any] | None = None
        self._handler_stream: IO[str] | None = None
        self._started = 0.0
        self._last = (0.0, 0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressExtension:
        assert crawler.stats is not None
        config = cls.check_settings(crawler.settings)
        bar = sys.stderr.isatty() if config.progress == "auto" else config.progress == "on"
        if not bar and config.progress_interval <= 0:
            # No message: Scrapy would log one at WARNING for a default choice.
            raise NotConfigured
        ext = cls(crawler, crawler.stats, bar=bar, interval=config.progress_interval)
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signals.spider_closed)
        return ext

    # -- the numbers ----------------------------------------------------------

    def done(self) -> tuple[int, int]:
        """(lines accounted for, rows with an error) so far."""
        stats = live_stats(self.stats)
        rows = stats.get("report/rows", 0)
        return rows + stats.get("input/duplicates", 0), rows - stats.get("report/ok", 0)

    def _count_total(self, path: str) -> None:
        try:
            total = count_url_lines(path, self._stop_counting)
        except OSError:
            return
        if total is not None:
            self.total = total

    # -- signals ----------------------------------------------------------------

    def spider_opened(self) -> None:
        self._started = monotonic()
        spec = str(getattr(self.crawler.spider, "urls_spec", "") or "")
        if spec and spec != "-" and not is_remote(spec) and os.path.isfile(spec):
            threading.Thread(
                target=self._count_total, args=(spec,), name="progress-total", daemon=True
            ).start()
        if self.use_bar:
            self._start_bar()
            self._timer = create_looping_call(self.update_bar)
            self._timer.start(BAR_REFRESH, now=False)
        else:
            self._timer = create_looping_call(self.log_progress)
            self._timer.start(self.interval, now=False)

    def spider_closed(self) -> None:
        self._stop_counting.set()
        if self._timer is not None and getattr(self._timer, "running", False):
            self._timer.stop()
        self._timer = None
        if self.bar is not None:
            self.update_bar()
            self.bar.close()
            self.bar = None
        if self._handler is not None and self._handler_stream is not None:
            self._handler.setStream(self._handler_stream)
        self._handler = self._handler_stream = None

    # -- the bar --------------------------------------------------------------

    def _start_bar(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total,
            unit=" URLs",
            file=self.stream,
            dynamic_ncols=True,
            smoothing=0.1,
            mininterval=BAR_REFRESH,
            leave=True,
        )
        handler = get_scrapy_root_handler()
        if (
            isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and handler.stream is self.stream
        ):
            self._handler = handler
            self._handler_stream = handler.setStream(_BarAwareStream(self.stream))

    def update_bar(self) -> None:
        bar = self.bar
        if bar is None:
            return
        done, errors = self.done()
        if self.total is not None and bar.total != self.total:
            bar.total = max(self.total, done)
        bar.set_postfix_str(f"{errors} errors", refresh=False)
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    # -- the log lines ----------------------------------------------------------

    def log_progress(self) -> None:
        """Log one "Progress: ..." line."""
        now = monotonic()
        done, errors = self.done()
        last_time, last_done = self._last
        self._last = (now, done)
        since = now - (last_time or self._started)
        rate = (done - last_done) / since if since > 0 else 0.0
        elapsed = now - self._started
        average = done / elapsed if elapsed > 0 else 0.0
        total = self.total
        fields: dict[str, Any] = {
            "event": "progress",
            "done": done,
            "total": total,
            "errors": errors,
            "rate": round(rate, 2),
            "eta_seconds": None,
        }
        if total:
            remaining = max(total - done, 0)
            eta = remaining / average if average > 0 else None
            fields["eta_seconds"] = round(eta) if eta is not None else None
            logger.info(
                "Progress: %(done)d/%(total)d URLs (%(percent).1f%%), %(rate).1f/s, "
                "%(errors)d errors, ETA %(eta)s",
                {
                    "done": done,
                    "total": total,
                    "percent": 100 * min(done / total, 1.0),
                    "rate": rate,
                    "errors": errors,
                    "eta": _format_eta(eta) if eta is not None else "?",
                },
                extra=fields,
            )
        else:
            logger.info(
                "Progress: %(done)d URLs, %(rate).1f/s, %(errors)d errors",
                {"done": done, "rate": rate, "errors": errors},
                extra=fields,
            )
