"""The ``pages`` spider: one report row per distinct URL of a list.

    scrapy crawl pages -a urls=urls.txt -O report.csv

Arguments (``-a NAME=VALUE``):

- ``urls``: the list: a path, ``-`` for standard input, or an http(s) URL.
- ``timeout``: a global deadline in seconds, the short form of
  ``-s CLOSESPIDER_TIMEOUT=N``.
- ``resume``: an earlier report of the list: its finished rows are kept,
  only the rest of the list is crawled (:mod:`scraper_project.resume`).
- ``retry_errors``: with ``resume``, rows to crawl again besides the
  ``not_attempted`` and ``cancelled`` ones (``PAGES_FAIL_ON``'s syntax).

``PAGES_SKIP`` / ``PAGES_SKIP_FILE`` leave URLs out (:mod:`scraper_project.skip`).

In cluster mode (``-s PAGES_REDIS_URL=redis://...``, see
:mod:`scraper_project.cluster`) ``urls`` is optional: a worker given a list
loads it into the shared queue, and every worker crawls from that queue.

The list is read lazily: ``start()`` yields the next request only when the
engine has room for it (it waits on ``scheduler_empty`` while
``engine.needs_backout()``), so a list of any length starts fetching at once
and holds only what is in flight in memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from contextlib import suppress
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from scrapy import Request, Spider, signals
from scrapy.exceptions import CloseSpider, UsageError
from scrapy.http import HtmlResponse, Response
from scrapy.utils.defer import deferred_from_coro

from scraper_project import logfilters
from scraper_project.cancel import CANCELLED_KEY, NOT_ATTEMPTED_KEY
from scraper_project.cluster.connection import is_clustered
from scraper_project.cluster.worker import ClusterWorker
from scraper_project.config import did_you_mean, get_bool, get_float, get_int, usage_error
from scraper_project.dedupe import FingerprintSet, fingerprint
from scraper_project.errors import classify, format_error
from scraper_project.inputs import InputError, LineReader, check_source, is_remote
from scraper_project.items import PageItem, new_item
from scraper_project.middlewares.retry import LAST_RESPONSE_KEY, LastResponse
from scraper_project.middlewares.timing import START_KEY
from scraper_project.pipelines.failon import FailOn
from scraper_project.report import ReportWriter, keep_existing_reports
from scraper_project.resolver import AsyncResolver
from scraper_project.resume import (
    ResumePlan,
    ResumeReader,
    check_resume_file,
    check_resumed_feed,
    copy_aside,
    resumed_feed,
)
from scraper_project.scheduler import DelayQueueMixin
from scraper_project.skip import MAX_PATTERN_STATS, SKIP_REDIRECT_KEY, SKIPPED, SkipRules
from scraper_project.stats import inc, live_stats
from scraper_project.title import clean_text, page_title
from scraper_project.urls import (
    InvalidURL,
    escape_surrogates,
    normalize_url,
    request_url,
    url_host,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# How long start() sleeps between capacity checks if no scheduler_empty
# signal arrives (the engine also re-checks every 5 s on its own).
_CAPACITY_POLL = 0.25
# Lines per read of the list once the crawl is stopping.
ACCOUNTING_BATCH_SIZE = 20_000


class InputUsageError(UsageError):
    """The URL list argument is unusable (missing, unreadable, relative on Scrapyd)."""


#: The spider's arguments (``-a NAME=VALUE``), as ``scrapy crawl -h`` lists
#: them. Arguments starting with ``_`` are Scrapyd's (``_job``).
ARGUMENTS: Final = {
    "urls": "the URL list: a file, - (standard input) or an http(s) URL; required, "
    "except for cluster workers that only crawl",
    "timeout": "deadline of the whole crawl in seconds (short for -s CLOSESPIDER_TIMEOUT=N)",
    "resume": "an earlier report of this list (CSV, JSON lines): keep its finished rows, "
    "crawl the rest (not_attempted, cancelled, lines it lacks); may be the -O file itself",
    "retry_errors": "with resume: also crawl again the rows matching these conditions "
    "(PAGES_FAIL_ON's syntax), e.g. timeout,connection_lost,5xx",
}


@dataclass(frozen=True)
class SpiderArguments:
    """The spider's arguments, validated."""

    deadline: float | None = None
    resume: Path | None = None
    retry: FailOn | None = None


@dataclass(frozen=True)
class SpiderConfig:
    """The spider's own settings, validated."""

    url_max_length: int
    title_max_length: int
    list_timeout: float
    log_duplicates: bool
    max_parked: int
    maxsize: int
    max_queued: int
    error_max_length: int
    skip: SkipRules | None


def invalid_row(text: str, line: int, exc: InvalidURL, max_length: int) -> PageItem:
    """The row of a list line that is not a URL the crawl can fetch."""
    return new_item(
        clean_text(escape_surrogates(text), max_length or 0),
        line,
        format_error("invalid_url", str(exc), 0),
    )


class PagesSpider(Spider):
    """Fetch every URL of a list once and report what happened to it."""

    name = "pages"

    def __init__(
        self,
        urls: str = "",
        timeout: str | None = None,
        resume: str = "",
        retry_errors: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.urls_spec = urls
        self._seen = FingerprintSet()
        self._capacity: asyncio.Future[None] | None = None
        self.stop_reason: str | None = None
        self._reading = False
        # pattern -> (its rows' error cell, its stats key or None)
        self._skip_errors: dict[str, tuple[str, str | None]] = {}

    @classmethod
    def check_arguments(
        cls,
        settings: BaseSettings,
        urls: str = "",
        timeout: str | None = None,
        resume: str = "",
        retry_errors: str = "",
        **others: Any,
    ) -> SpiderArguments:
        """Validate the spider arguments; raise ``UsageError``.

        Called by ``scrapy crawl`` before anything starts (so a mistake is a
        one-line usage error, exit code 2) and again by ``from_crawler`` for
        crawls started from code. A list or a report to resume that cannot be
        used is an :class:`InputUsageError` (on Scrapyd: the job's input error).
        """
        for name in others:
            if not name.startswith("_"):  # Scrapyd's own (_job, _version)
                hint = did_you_mean(name, ARGUMENTS) or f" (known: {', '.join(ARGUMENTS)})"
                raise usage_error(f"unknown spider argument {name!r}{hint}")
        try:
            if urls or not is_clustered(settings):
                check_source(urls, absolute_only="_job" in others)
        except InputError as exc:
            raise InputUsageError(str(exc), print_help=False) from None
        deadline: float | None = None
        if timeout is not None:
            try:
                deadline = float(timeout)
            except ValueError:
                deadline = math.nan
            if not deadline > 0 or math.isinf(deadline):
                raise usage_error(f"timeout must be a positive number of seconds, got {timeout!r}")
        retry = None
        if retry_errors:
            if not resume:
                raise usage_error("retry_errors needs a report to resume: -a resume=REPORT")
            tokens = [t.strip() for t in str(retry_errors).split(",") if t.strip()]
            retry = FailOn.parse(tokens, "retry_errors")
        report = None
        if resume:
            if is_clustered(settings):
                raise usage_error(
                    "resume does not apply in cluster mode: the cluster resumes by itself "
                    "(a loader restarts after its last queued line, unfinished URLs go back "
                    "to the queue); to crawl a merged report's not_attempted rows again, "
                    "resume it in a local crawl (without PAGES_REDIS_URL)"
                )
            try:
                report = check_resume_file(resume, absolute_only="_job" in others)
            except UsageError as exc:
                raise InputUsageError(str(exc), print_help=False) from None
            check_resumed_feed(report, settings)
        return SpiderArguments(deadline, report, retry)

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> SpiderConfig:
        """The spider's own settings, validated (``UsageError`` naming a bad one)."""
        return SpiderConfig(
            url_max_length=get_int(settings, "PAGES_URL_MAX_LENGTH", minimum=0),
            title_max_length=get_int(settings, "PAGES_TITLE_MAX_LENGTH", minimum=0),
            list_timeout=get_float(settings, "PAGES_LIST_TIMEOUT", positive=True),
            log_duplicates=get_bool(settings, "PAGES_LOG_DUPLICATES"),
            max_parked=get_int(settings, "PAGES_MAX_PARKED", minimum=1),
            maxsize=get_int(settings, "DOWNLOAD_MAXSIZE", minimum=0),
            max_queued=get_int(settings, "PAGES_CLUSTER_MAX_QUEUED", minimum=1),
            error_max_length=get_int(settings, "PAGES_ERROR_MAX_LENGTH", minimum=0),
            skip=SkipRules.from_settings(settings),
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> PagesSpider:
        settings = crawler.settings
        input_problem = None
        try:
            arguments = cls.check_arguments(settings, **kwargs)
        except InputUsageError as exc:
            if "_job" not in kwargs:
                raise
            # A Scrapyd job (it passes _job): fail the job visibly, in its log
            # and its finish reason, instead of dying before logging starts.
            input_problem = str(exc)
            arguments = SpiderArguments()
        config = cls.check_settings(settings)
        if arguments.deadline is not None:
            settings.set("CLOSESPIDER_TIMEOUT", arguments.deadline, priority="spider")
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.input_problem = input_problem
        spider.url_max_length = config.url_max_length
        spider.title_max_length = config.title_max_length
        spider.list_timeout = config.list_timeout
        spider.log_duplicates = config.log_duplicates
        spider.maxsize = config.maxsize
        spider.max_parked = config.max_parked
        spider.clustered = is_clustered(settings)
        spider.max_queued = config.max_queued
        spider.skip_rules = config.skip
        spider.error_max_length = config.error_max_length
        spider.resume_report = arguments.resume
        spider.retry_rows = arguments.retry
        crawler.signals.connect(spider._on_scheduler_empty, signals.scheduler_empty, weak=False)
        logfilters.install()
        return spider

    url_max_length: int
    input_problem: str | None
    title_max_length: int
    list_timeout: float
    log_duplicates: bool
    maxsize: int
    max_parked: int
    clustered: bool
    max_queued: int
    skip_rules: SkipRules | None
    error_max_length: int
    resume_report: Path | None
    retry_rows: FailOn | None

    # -- reading the list ------------------------------------------------

    def _on_scheduler_empty(self) -> None:
        waiter = self._capacity
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _scheduler(self) -> DelayQueueMixin | None:
        scheduler = getattr(getattr(self.crawler.engine, "_slot", None), "scheduler", None)
        return scheduler if isinstance(scheduler, DelayQueueMixin) else None

    def begin_stop(self, reason: str) -> None:
        """Stop fetching, account for everything not fetched, then close.

        Called by :class:`~scraper_project.extensions.shutdown.GracefulShutdown`
        once the downloads in progress are cancelled (their errbacks give
        them ``cancelled`` rows). Requests waiting in the scheduler, parked or
        not, get their rows here; lines not read yet get theirs in
        :meth:`start`, which then closes the spider.
        """
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if self.crawler.stats is not None:
            stats = live_stats(self.crawler.stats)
            stats["input/lines_read_at_stop"] = stats.get("input/lines", 0)
        scheduler = self._scheduler()
        if scheduler is not None:
            if self.clustered:  # the cluster's work: back to the shared queue
                release = ClusterWorker.for_crawler(self.crawler).release_requests
                release(scheduler.take_all(release))
            else:
                self._export_unfinished(scheduler.take_all(self._export_unfinished))
        self._on_scheduler_empty()  # wake start() if it waits for capacity
        engine = self.crawler.engine
        if not self._reading and engine is not None:
            deferred_from_coro(engine.close_spider_async(reason=reason))

    def _export_unfinished(self, requests: list[Request]) -> None:
        self.export_rows([self.unfinished_row(r) for r in requests])

    def unfinished_row(self, request: Request, *, in_flight: bool = False) -> PageItem:
        """The row of a request that never got its answer because the crawl
        stopped: ``in_flight`` while it was downloading (``cancelled``), else
        before it was sent (``not_attempted``, or ``cancelled`` for a retry:
        the URL was fetched). A retry keeps what the last response said."""
        meta = request.meta
        retries: int = meta.get("retry_times", 0)
        last: LastResponse | None = meta.get(LAST_RESPONSE_KEY)
        reason = self.stop_reason
        after = f" after {last.status}" if last is not None else ""
        if in_flight:
            retry = f" of a retry{after}" if retries else ""
            error = format_error(
                "cancelled", f"the crawl stopped ({reason}) during the download{retry}", 0
            )
        elif retries:
            error = format_error(
                "cancelled", f"retry pending{after} when the crawl stopped ({reason})", 0
            )
        else:
            error = self._not_attempted_error()
        item = new_item(meta["url"], meta["line"], error)
        item["attempts"] = retries + 1 if in_flight else retries
        if meta.get("redirect_urls"):
            item["final_url"] = request.url
            item["redirects"] = len(meta["redirect_urls"])
        if last is not None:
            item["final_url"] = last.url
            item["status"] = last.status
            item["length"] = last.length
            item["title"] = last.title
            item["content_type"] = last.content_type
        if in_flight and (t0 := meta.get(START_KEY)) is not None:
            item["elapsed_ms"] = round((monotonic() - t0) * 1000)
        return item

    def export_rows(self, rows: list[PageItem], *, trusted: bool = False) -> None:
        """Write rows straight to the report (pipelines, then feeds), without
        a trip through the engine for each: accounting for the rest of a
        million-line list must take seconds, not minutes."""
        if not rows:
            return
        ReportWriter.for_crawler(self.crawler).write(rows, trusted=trusted)

    def _too_many_parked(self) -> bool:
        # Requests parked by the rate limiter or a retry backoff hold no
        # downloader slot, so needs_backout() does not see them: bound them
        # here, or a slow domain would let the whole list pile up in memory.
        scheduler = self._scheduler()
        return scheduler is not None and scheduler.delayed_count() >= self.max_parked

    async def _wait_for_capacity(self) -> None:
        assert self.crawler.engine is not None
        engine = self.crawler.engine
        loop = asyncio.get_running_loop()
        while engine.needs_backout() or self._too_many_parked():
            if not engine.running or self.stop_reason is not None:
                return
            self._capacity = waiter = loop.create_future()
            handle = loop.call_later(_CAPACITY_POLL, waiter.cancel)
            try:
                await waiter
            except asyncio.CancelledError:
                if not waiter.cancelled():  # we were cancelled, not the poll
                    raise
            finally:
                handle.cancel()
                self._capacity = None

    def page_request(self, url: str, line: int, meta: dict[str, Any] | None = None) -> Request:
        """The request for normalised ``url`` of list line ``line``."""
        return Request(
            request_url(url),
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,
            meta={"line": line, "url": url, **meta} if meta else {"line": line, "url": url},
        )

    async def start(self) -> AsyncIterator[Any]:
        assert self.crawler.stats is not None
        stats = live_stats(self.crawler.stats)
        if self.clustered and self.input_problem is None:
            # The scheduler takes the URLs from Redis; this only loads a list.
            if self.urls_spec:
                await self._load_into_cluster()
            if self.stop_reason is not None:
                raise CloseSpider(self.stop_reason)
            return
        reader = LineReader(self.urls_spec, timeout=self.list_timeout)
        seen = self._seen
        max_length = self.url_max_length
        skip = self.skip_rules
        if self.input_problem is not None:
            raise self._input_error(self.input_problem)
        accounted: list[PageItem] = []  # rows written directly (skipped; while stopping)
        unread: list[tuple[str, int]] = []  # (url, line) of not_attempted lines
        self._reading = True
        try:
            plan = await self._resume() if self.resume_report is not None else None
            kept = plan.kept if plan is not None else None
            kept_in_list = 0
            async for batch, normalized in self._read_ahead(reader, kept, skip):
                if accounted or unread:
                    self._export_accounting(accounted, unread)
                    accounted, unread = [], []
                if self.stop_reason is not None:
                    # Accounting: fewer, bigger reads (each is a thread hop).
                    reader.batch_size = ACCOUNTING_BATCH_SIZE
                inc(stats, "input/lines", len(batch))
                for i, (lineno, text) in enumerate(batch):
                    try:
                        if normalized is None:
                            url = normalize_url(text, max_length)
                        else:
                            prepared = normalized[i]
                            if isinstance(prepared, InvalidURL):
                                raise prepared
                            url = prepared
                    except InvalidURL as exc:
                        inc(stats, "input/invalid")
                        row = invalid_row(text, lineno, exc, max_length)
                        if self.stop_reason is None:
                            yield row
                        else:
                            accounted.append(row)
                        continue
                    fp = fingerprint(url)
                    if not seen.add(fp):
                        inc(stats, "input/duplicates")
                        if self.log_duplicates:
                            logger.info(
                                "Duplicate URL on line %(line)d: %(url)s",
                                {"line": lineno, "url": url},
                                extra={"line": lineno, "url": url},
                            )
                        continue
                    if kept is not None and fp in kept:
                        inc(stats, "input/urls")  # its row is in the report already
                        kept_in_list += 1
                        continue
                    if skip is not None:
                        pattern = skip.match(url)
                        if pattern is not None:
                            inc(stats, "input/urls")
                            accounted.append(self._skipped_row(url, lineno, pattern))
                            continue
                    if self.stop_reason is None:
                        inc(stats, "input/urls")
                        await self._wait_for_capacity()
                    if self.stop_reason is not None:
                        unread.append((url, lineno))  # counted in bulk
                        continue
                    if plan is not None:
                        self._count_resumed(stats, plan, fp)
                    yield self.page_request(url, lineno)
            if plan is not None:
                self._check_resumed_list(plan, kept_in_list)
        except InputError as exc:
            raise self._input_error(str(exc)) from None
        finally:
            self._reading = False
        if accounted or unread:
            self._export_accounting(accounted, unread)
        if self.stop_reason is not None:
            raise CloseSpider(self.stop_reason)

    async def _read_ahead(
        self, reader: LineReader, kept: FingerprintSet | None, skip: SkipRules | None
    ) -> AsyncIterator[tuple[list[tuple[int, str]], list[str | InvalidURL] | None]]:
        """The list's batches, each with its lines normalised (or ``None``:
        normalise them yourself).

        With ``DNS_PREFETCH``, the next batch is read while this one is
        crawled, and the lookups of its hosts start as soon as it is read: by
        the time its requests are made their names are known or on their
        way, so a dead name's ``DNS_TIMEOUT`` passes during the crawl of the
        lines before it, not after the last one (a tail of seconds on any
        list with dead names near its end)."""
        batches = reader.batches()
        resolver = AsyncResolver.for_crawler(self.crawler)
        if not resolver.prefetch_enabled:
            async for batch in batches:
                yield batch, None
            return
        max_length = self.url_max_length

        async def next_batch() -> tuple[list[tuple[int, str]], list[str | InvalidURL]]:
            batch = await anext(batches)
            normalized: list[str | InvalidURL] = []
            hosts: list[str] = []
            for _, text in batch:
                try:
                    url = normalize_url(text, max_length)
                except InvalidURL as exc:
                    normalized.append(exc)
                    continue
                normalized.append(url)
                if self.stop_reason is not None:
                    continue
                if kept is not None and fingerprint(url) in kept:
                    continue  # its row is kept: never requested
                if skip is not None and skip.match(url) is not None:
                    continue
                hosts.append(url_host(url))
            resolver.prefetch(hosts)
            return batch, normalized

        pending = asyncio.ensure_future(next_batch())
        try:
            while True:
                try:
                    batch, normalized = await pending
                except StopAsyncIteration:
                    return
                pending = asyncio.ensure_future(next_batch())
                yield batch, normalized
        finally:
            if not pending.done():
                pending.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await pending
            await batches.aclose()

    def _skipped_row(self, url: str, line: int, pattern: str) -> PageItem:
        """The row of a list URL that ``PAGES_SKIP`` leaves out (counted)."""
        assert self.crawler.stats is not None
        stats = live_stats(self.crawler.stats)
        inc(stats, "input/skipped")
        known = self._skip_errors.get(pattern)
        if known is None:
            # The first MAX_PATTERN_STATS patterns seen get a stat of their own.
            key = f"input/skipped/{pattern}" if len(self._skip_errors) < MAX_PATTERN_STATS else None
            error = format_error(SKIPPED, pattern, self.error_max_length)
            known = self._skip_errors[pattern] = (error, key)
        if known[1] is not None:
            inc(stats, known[1])
        return new_item(url, line, known[0])

    def _check_resumed_list(self, plan: ResumePlan, kept_in_list: int) -> None:
        """Count, and say, kept rows whose URL is not in the list: they stay
        in the report, but the list is perhaps not the one of the report."""
        assert self.crawler.stats is not None
        missing = len(plan.kept) - kept_in_list
        self.crawler.stats.set_value("resume/not_in_list", missing)
        if missing:
            logger.warning(
                "%(count)d rows kept from %(report)s are of URLs not in the list %(list)s "
                "(they stay in the report): is it the list that report was made from?",
                {"count": missing, "report": str(self.resume_report), "list": self.urls_spec},
                extra={"resume": str(self.resume_report)},
            )

    @staticmethod
    def _count_resumed(stats: dict[str, Any], plan: ResumePlan, fp: int) -> None:
        reason = plan.recrawl_reason(fp)
        if reason is None:
            inc(stats, "resume/new")  # no row in the old report: a line it never read
        else:
            inc(stats, "resume/recrawled")
            inc(stats, f"resume/recrawled/{reason}")

    async def _resume(self) -> ResumePlan:
        """Stream the kept rows of the report to resume into the new report;
        return what it says (:mod:`scraper_project.resume`)."""
        assert self.resume_report is not None
        assert self.crawler.stats is not None
        stats = live_stats(self.crawler.stats)
        report = self.resume_report
        source, copy = report, None
        if resumed_feed(report, self.crawler.settings) is not None:
            # The new report overwrites it: read a copy, made before the
            # feed opens the file (at its first row).
            try:
                source = copy = copy_aside(report)
            except OSError as exc:  # a full disk, a read-only folder
                raise InputError(
                    f"resume: cannot copy {report} before overwriting it: {exc}"
                ) from None
            logger.info(
                "Resuming %(report)s into itself: reading a copy, %(copy)s, deleted once "
                "its rows are in the new report",
                {"report": str(report), "copy": str(copy)},
            )
        stats["resume/report"] = str(report)
        reader = ResumeReader(
            source,
            retry=self.retry_rows,
            skip=self.skip_rules,
            url_max_length=self.url_max_length,
        )
        writer = ReportWriter.for_crawler(self.crawler)
        loop = asyncio.get_running_loop()
        batches = reader.batches()
        started = monotonic()
        try:
            while True:
                # Read and parsed in a thread; written here (the pipelines
                # and exporters belong to the reactor thread).
                batch = await loop.run_in_executor(None, next, batches, None)
                if batch is None:
                    break
                writer.write(batch, kept=True, accounted=False)
        except UsageError as exc:  # changed since the check, or unreadable
            raise InputError(f"resume: {exc}") from None
        except OSError as exc:
            raise InputError(f"resume: cannot read {report}: {exc}") from None
        finally:
            batches.close()
            if copy is not None:
                copy.unlink(missing_ok=True)
        for name, value in reader.counts.items():
            stats[f"resume/{name}"] = value
        stats.setdefault("resume/recrawled", 0)
        stats.setdefault("resume/new", 0)
        stats["resume/seconds"] = round(monotonic() - started, 3)  # reading the old report
        logger.info(
            "Resuming from %(report)s: %(kept)d rows kept, %(recrawl)d URLs to crawl again, "
            "%(damaged)d damaged rows ignored",
            {
                "report": str(report),
                "kept": reader.counts["kept"],
                "recrawl": reader.counts["to_recrawl"],
                "damaged": reader.counts["damaged_rows"],
            },
            extra={"resume": str(report)},
        )
        return reader.plan

    async def _load_into_cluster(self) -> None:
        """Queue the list in Redis, batch by batch, as the local mode reads it:
        same validation, same line accounting; duplicates are dropped across
        the whole cluster. A load resumes after the last line queued by an
        earlier load of the same list, so a loader that died loses nothing."""
        assert self.crawler.stats is not None
        stats = live_stats(self.crawler.stats)
        worker = ClusterWorker.for_crawler(self.crawler)
        frontier = worker.frontier
        spec = self.urls_spec
        if spec == "-":
            source = f"-:{worker.id}"  # standard input: nothing to resume
        elif is_remote(spec):
            source = spec
        else:  # the same file, unchanged: a reload resumes
            st = os.stat(spec)
            source = f"{os.path.abspath(spec)}:{st.st_size}:{st.st_mtime_ns}"
        completed = frontier.completed(source)
        if completed:
            raise self._input_error(
                f"{spec}: this list was loaded completely into the cluster crawl "
                f"{frontier.prefix!r} before ({completed} lines), so there is nothing left "
                f"to load. To crawl it again, start afresh: scrapy cluster reset (same "
                f"PAGES_REDIS_URL and PAGES_CLUSTER_KEY), or another PAGES_CLUSTER_KEY. "
                f"To help with what is queued, start the worker without -a urls"
            )
        loaded = frontier.loaded_until(source)
        if loaded:
            logger.info(
                "%(list)s: lines up to %(line)d were queued by an earlier load; resuming",
                {"list": source, "line": loaded},
                extra={"line": loaded},
            )
        loader = f"{worker.id}:load"
        reader = LineReader(spec, timeout=self.list_timeout)
        reader.batch_size = max(1, min(reader.batch_size, self.max_queued))
        max_length = self.url_max_length
        skip = self.skip_rules
        read = queued = 0  # lines read, entries queued by this load
        self._reading = True
        try:
            async for lines in reader.batches():
                if self.stop_reason is not None:
                    break  # the rest stays in the list; a later load resumes
                read = lines[-1][0]
                batch = [entry for entry in lines if entry[0] > loaded]
                if not batch:
                    continue
                urls: list[tuple[str, int]] = []
                rows: list[dict[str, Any]] = []
                skipped = 0
                for lineno, text in batch:
                    try:
                        url = normalize_url(text, max_length)
                    except InvalidURL as exc:
                        rows.append(dict(invalid_row(text, lineno, exc, max_length)))
                        continue
                    pattern = skip.match(url) if skip is not None else None
                    if pattern is None:
                        urls.append((url, lineno))
                    elif self._seen.add(fingerprint(url)):
                        # A ready row, like an invalid line's; duplicates
                        # dropped within this list (merge drops the others).
                        rows.append(dict(self._skipped_row(url, lineno, pattern)))
                        skipped += 1
                    else:
                        inc(stats, "input/duplicates")
                while frontier.queued() >= self.max_queued and self.stop_reason is None:
                    frontier.touch_loader(loader, worker.ttl)
                    await asyncio.sleep(_CAPACITY_POLL)
                if self.stop_reason is not None:
                    break
                dups = frontier.load(
                    source=source,
                    last_line=batch[-1][0],
                    lines=len(batch),
                    urls=urls,
                    rows=rows,
                    loader=loader,
                    ttl=worker.ttl,
                )
                if dups is None:
                    queued += 1  # a concurrent load of the same list got there first
                    continue
                queued += len(urls) - len(dups) + len(rows)
                inc(stats, "input/lines", len(batch))
                inc(stats, "input/invalid", len(rows) - skipped)
                inc(stats, "input/urls", len(urls) - len(dups) + skipped)
                inc(stats, "input/duplicates", len(dups))
                if self.log_duplicates:
                    for i in dups:
                        url, lineno = urls[i]
                        logger.info(
                            "Duplicate URL on line %(line)d: %(url)s",
                            {"line": lineno, "url": url},
                            extra={"line": lineno, "url": url},
                        )
            if self.stop_reason is None:
                frontier.mark_completed(source, read)
                if read and not queued and not loaded:
                    # Not a resumed load: every URL was queued by other lists.
                    raise InputError(
                        f"{spec}: every URL of this list was loaded into the cluster crawl "
                        f"{frontier.prefix!r} before (by another list), so there is nothing "
                        f"new to crawl. To crawl them again, start afresh: scrapy cluster "
                        f"reset (same PAGES_REDIS_URL and PAGES_CLUSTER_KEY), or another "
                        f"PAGES_CLUSTER_KEY"
                    )
        except InputError as exc:
            raise self._input_error(str(exc)) from None
        finally:
            self._reading = False
            frontier.loader_done(loader)

    def _input_error(self, message: str) -> CloseSpider:
        """Log why the list cannot be used; the crawl closes (``input_error``,
        exit code 2) and a report that got no row is left as it was."""
        logger.error("%(error)s", {"error": message}, extra={"input": self.urls_spec})
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("input/error", message)
        keep_existing_reports(self.crawler)
        return CloseSpider("input_error")

    def _export_accounting(self, rows: list[PageItem], unread: list[tuple[str, int]]) -> None:
        writer = ReportWriter.for_crawler(self.crawler)
        if rows:
            writer.write(rows, trusted=True, accounted=self.stop_reason is not None)
        if unread:
            assert self.crawler.stats is not None
            stats = live_stats(self.crawler.stats)
            inc(stats, "input/urls", len(unread))
            inc(stats, "input/not_attempted", len(unread))
            writer.write_not_attempted(unread, self._not_attempted_error())

    def _not_attempted_error(self) -> str:
        return format_error("not_attempted", f"the crawl stopped ({self.stop_reason}) first", 0)

    # -- building rows ---------------------------------------------------

    def parse(self, response: Response) -> PageItem:
        meta = response.meta
        t0 = meta.get(START_KEY)
        content_type = response.headers.get(b"Content-Type")
        title = ""
        if isinstance(response, HtmlResponse):
            title = page_title(response.body, content_type, self.title_max_length)
        error = ""
        if self.skip_rules is not None and SKIP_REDIRECT_KEY in meta:
            # A redirect to a skipped URL, not followed (middlewares/skip.py).
            pattern, target = meta[SKIP_REDIRECT_KEY]
            error = format_error(
                SKIPPED, f"{pattern} (redirect to {target})", self.error_max_length
            )
        return {
            "url": meta["url"],
            "final_url": response.url,
            "status": response.status,
            "length": len(response.body),
            "title": title,
            "content_type": content_type.decode("latin-1") if content_type else "",
            "error": error,
            "attempts": meta.get("retry_times", 0) + 1,
            "elapsed_ms": round((monotonic() - t0) * 1000) if t0 is not None else None,
            "redirects": len(meta.get("redirect_urls", ())),
            "line": meta["line"],
        }

    def on_error(self, failure: Failure) -> PageItem | None:
        request: Request = failure.request  # type: ignore[attr-defined]
        meta = request.meta
        assert failure.value is not None
        stopped = meta.get(NOT_ATTEMPTED_KEY) or meta.get(CANCELLED_KEY)
        if stopped and self.clustered:
            # This worker is stopping: another one will fetch it.
            ClusterWorker.for_crawler(self.crawler).release(meta["url"])
            return None
        if stopped:
            return self.unfinished_row(request, in_flight=bool(meta.get(CANCELLED_KEY)))
        error_class, detail = classify(
            failure.value, maxsize=meta.get("download_maxsize", self.maxsize)
        )
        item = new_item(meta["url"], meta["line"], format_error(error_class, detail, 0))
        redirects = meta.get("redirect_urls", ())
        if redirects:
            item["final_url"] = request.url
            item["redirects"] = len(redirects)
        t0 = meta.get(START_KEY)
        if t0 is not None:
            item["elapsed_ms"] = round((monotonic() - t0) * 1000)
            item["attempts"] = meta.get("retry_times", 0) + 1
        return item
