"""``scrapy crawl`` that checks spider arguments before starting anything.

A missing URL list or a bad setting becomes a one-line usage error and exit
code 2, instead of a traceback from inside the reactor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        # Not for Scrapyd jobs (they pass _job): there the spider reports the
        # problem in the job's log and finish reason instead.
        if len(args) == 1 and self.crawler_process is not None and "_job" not in opts.spargs:
            spidercls = self.crawler_process.spider_loader.load(args[0])
            check = getattr(spidercls, "check_arguments", None)
            if check is not None:
                assert self.settings is not None
                check(self.settings, **opts.spargs)
        super().run(args, opts)
