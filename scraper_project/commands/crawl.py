"""``scrapy crawl``, with the page checker's command-line contract.

- Every mistake that can be found before the crawl starts is one line on
  stderr and exit code 2, before Scrapy's banner and before any report file
  is opened: the spider's arguments, the URL list, setting names ("did you
  mean"), the Scrapy settings the project depends on, and the settings of
  every enabled component (each class's ``check_settings``, see
  :mod:`scraper_project.config`). On Scrapyd (jobs pass ``_job``) the same
  checks run once logging is set up, so that the job's log says why.
- A setting found bad later (a component built during the crawl) is still
  one line and exit code 2, not a traceback.
- The exit code says how the crawl ended (:mod:`scraper_project.outcome`);
  the last log line says it in words.
- ``scrapy crawl -h`` documents the spider's arguments and the exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import textwrap
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy.commands import ScrapyHelpFormatter
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object
from twisted.internet.defer import Deferred

from scraper_project.config import (
    check_scrapy_settings,
    check_setting_names,
    did_you_mean,
    usage_error,
)
from scraper_project.outcome import EXIT_ERROR, EXIT_USAGE, exit_code, summary

if TYPE_CHECKING:
    from types import FrameType

    from scrapy import Spider
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# Settings naming component classes (besides the *_MIDDLEWARES, ITEM_PIPELINES
# and EXTENSIONS lists): the ones whose settings a crawl depends on.
_COMPONENT_SETTINGS = ("SCHEDULER", "DOWNLOADER", "TWISTED_DNS_RESOLVER", "LOG_FORMATTER")
_COMPONENT_LISTS = ("SPIDER_MIDDLEWARES", "DOWNLOADER_MIDDLEWARES", "ITEM_PIPELINES", "EXTENSIONS")


def _help_epilog() -> str:
    # Imported here: every scrapy command imports this module.
    from scraper_project.spiders.pages import ARGUMENTS

    width = max(len(name) for name in ARGUMENTS) + len("=VALUE") + 2
    arguments = "\n".join(
        textwrap.fill(
            text,
            79,
            initial_indent=f"  {name + '=VALUE':<{width}}",
            subsequent_indent=" " * (width + 2),
        )
        for name, text in ARGUMENTS.items()
    )
    return f"""\
Arguments of the pages spider (-a NAME=VALUE):
{arguments}

Exit codes:
  0    every line accounted for, every URL finished
  1    an unexpected error (a traceback is logged)
  2    usage or input error: a bad argument, setting or URL list; nothing
       crawled, an existing report left as it was
  3    partial report: the crawl stopped early (-a timeout, CLOSESPIDER_*, a
       first Ctrl-C or SIGTERM); its cancelled and not_attempted rows say which
  4    finished, and rows match PAGES_FAIL_ON (a CI switch):
       -s PAGES_FAIL_ON=error,4xx,5xx,-robots_forbidden  (error, an error class,
       a status class, a status; - excludes)
  130  a second Ctrl-C (143: SIGTERM): the report is closed, the crawl ends now

Examples:
  scrapy crawl pages -a urls=urls.txt -O report.csv
  cat urls.txt | scrapy crawl pages -a urls=- -O report.jsonl
  scrapy crawl pages -a urls=urls.txt -a timeout=600 -s PAGES_FAIL_ON=error,4xx,5xx -o report.csv
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, ScrapyHelpFormatter):
    """Scrapy's help layout, keeping the line breaks of the epilog."""


def _is_scrapyd_job(spargs: dict[str, Any]) -> bool:
    return "_job" in spargs


class Command(ScrapyCrawlCommand):
    def short_desc(self) -> str:
        return "Run a spider: scrapy crawl pages -a urls=LIST -O report.csv"

    def long_desc(self) -> str:
        return (
            "Run a spider of the project. The pages spider fetches every URL of a list\n"
            "once and writes one report row per distinct URL: status, size, title, error."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.epilog = _help_epilog()
        parser.formatter_class = _HelpFormatter

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        # Until the crawl handles Ctrl-C itself (once it runs): exit 130 with
        # one line instead of a KeyboardInterrupt traceback and exit code 1.
        signal.signal(signal.SIGINT, _interrupted)
        super().process_options(args, opts)
        # Before the crawler process exists: it logs the banner and, with
        # the crawl, opens the report files.
        if len(args) == 1 and not _is_scrapyd_job(opts.spargs):
            try:
                warnings = self.check(args[0], opts.spargs)
            except UsageError as exc:
                _fail(str(exc))
            for warning in warnings:
                sys.stderr.write(f"scrapy crawl: warning: {warning}\n")

    def check(self, spider_name: str, spargs: dict[str, Any]) -> list[str]:
        """Every check that needs no crawl; raise ``UsageError``. Return
        warnings (setting names no component knows, that look like no
        known one: perhaps another plugin's)."""
        from scraper_project.report import check_feed_targets
        from scraper_project.spiders.pages import InputUsageError

        assert self.settings is not None
        settings = self.settings
        cmdline = SETTINGS_PRIORITIES["cmdline"]
        warnings = check_setting_names(
            name for name in settings if settings.getpriority(name) == cmdline
        )
        loader = get_spider_loader(settings)
        try:
            spidercls = loader.load(spider_name)
        except KeyError:
            raise usage_error(
                f"unknown spider {spider_name!r}{did_you_mean(spider_name, loader.list())}"
            ) from None
        # A crawler that never crawls: the settings as the crawl will see
        # them (the spider's and the add-ons' changes applied).
        crawler = Crawler(spidercls, settings)
        crawler.addons.load_settings(crawler.settings)
        effective = crawler.settings
        check_arguments = getattr(spidercls, "check_arguments", None)
        if check_arguments is not None:
            try:
                check_arguments(effective, **spargs)
            except InputUsageError:
                if not _is_scrapyd_job(spargs):
                    raise  # on Scrapyd the job's log and finish reason say it
        check_scrapy_settings(effective)
        for component in _components(effective, spidercls):
            check_settings = getattr(component, "check_settings", None)
            if check_settings is not None:
                check_settings(effective)
        check_feed_targets(effective)
        return warnings

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)  # Scrapy's usage errors
            return
        assert self.crawler_process is not None
        if _is_scrapyd_job(opts.spargs):
            # The job's log (LOG_FILE) is open now: the checks report there.
            try:
                for warning in self.check(args[0], opts.spargs):
                    logger.warning("%(warning)s", {"warning": warning})
            except UsageError as exc:
                logger.error("%(error)s", {"error": str(exc)})
                logger.error("Exit code 2: nothing crawled")
                self.exitcode = EXIT_USAGE
                return
        crawler = self._create_crawler(args[0])
        errors: list[BaseException] = []
        _keep_errors(self.crawler_process.crawl(crawler, **opts.spargs), errors)
        try:
            self.crawler_process.start()
        except UsageError as exc:  # a component built before the reactor runs
            errors.append(exc)
        self.exitcode = self._exit_code(crawler, errors)

    def _exit_code(self, crawler: Crawler, errors: list[BaseException]) -> int:
        if errors:
            error = errors[0]
            if isinstance(error, UsageError):
                # A setting only a component built during the crawl checks.
                logger.error("%(error)s", {"error": str(error)})
                if not _logs_to_stderr(crawler.settings):
                    sys.stderr.write(f"scrapy crawl: error: {error}\n")
                return EXIT_USAGE
            logger.error("The crawl failed", exc_info=error)
            return EXIT_ERROR
        if crawler.spider is None or (
            self.crawler_process is not None and self.crawler_process.bootstrap_failed
        ):
            return EXIT_ERROR  # Scrapy's code for a crawl that did not start
        stats = crawler.stats.get_stats()
        code = exit_code(stats)
        logger.log(logging.INFO if code == 0 else logging.WARNING, "%s", summary(code, stats))
        return code


def _components(settings: BaseSettings, spidercls: type[Spider]) -> list[type]:
    """The classes of the enabled components, spider first (``UsageError``
    for a path that does not load)."""
    paths: list[tuple[str, Any]] = []
    for name in _COMPONENT_LISTS:
        paths += [(name, path) for path in build_component_list(settings.getwithbase(name))]
    for name in _COMPONENT_SETTINGS:
        if settings.get(name):
            paths.append((name, settings.get(name)))
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    paths += [("DOWNLOAD_HANDLERS", handlers[s]) for s in ("http", "https") if handlers.get(s)]
    exporters = settings.getwithbase("FEED_EXPORTERS")
    for uri, options in settings.getdict("FEEDS").items():
        fmt = (options or {}).get("format") or str(uri).rsplit(".", 1)[-1].lower()
        if exporters.get(fmt):
            paths.append(("FEED_EXPORTERS", exporters[fmt]))
    classes: list[type] = [spidercls]
    for name, path in paths:
        try:
            component = load_object(path) if isinstance(path, str) else path
        except (ImportError, AttributeError, NameError, ValueError) as exc:
            raise usage_error(f"{name}: cannot load {path!r} ({exc})") from None
        if component not in classes:
            classes.append(component)
    return classes


def _keep_errors(result: Any, errors: list[BaseException]) -> None:
    """Collect the exception the crawl ends with, so that it is reported
    once, by the command (asyncio would print "Task exception was never
    retrieved" and a traceback)."""
    if isinstance(result, asyncio.Future):

        def done(task: asyncio.Future[Any]) -> None:
            if not task.cancelled() and task.exception() is not None:
                errors.append(task.exception())  # type: ignore[arg-type]

        result.add_done_callback(done)
    elif isinstance(result, Deferred):

        def failed(failure: Failure) -> None:
            assert failure.value is not None
            errors.append(failure.value)

        result.addErrback(failed)


def _logs_to_stderr(settings: BaseSettings) -> bool:
    return settings.getbool("LOG_ENABLED") and not settings.get("LOG_FILE")


def _interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    sys.stderr.write("scrapy crawl: interrupted before the crawl started\n")
    raise SystemExit(128 + signum)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"scrapy crawl: error: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_USAGE)
