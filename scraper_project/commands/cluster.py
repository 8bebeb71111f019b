"""``scrapy cluster``: look after a cluster crawl and merge its reports.

    scrapy cluster status  -s PAGES_REDIS_URL=redis://host:6379/0
    scrapy cluster reset   -s PAGES_REDIS_URL=...   # delete the crawl's keys
    scrapy cluster merge -o report.csv report-*.csv

``status`` prints one JSON object (queued, leased, workers, loaders,
finished, lines, urls, invalid, duplicates, done, requeued, reclaimed) and
re-queues the URLs of dead workers first. ``merge`` reads the workers' CSV or
JSON-lines reports and writes one row per URL (a URL repeated after a worker
died keeps its first row; a row cut short by a killed worker is skipped),
sorted by list line.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from scraper_project.cluster.connection import check_redis, cluster_key, redis_client
from scraper_project.cluster.frontier import Frontier
from scraper_project.items import FIELDS
from scraper_project.reportfile import read_rows

if TYPE_CHECKING:
    import argparse


def merge_reports(paths: list[Path], out: Path) -> dict[str, int]:
    """Write one row per URL of ``paths`` to ``out``; return counts."""
    rows: dict[str, dict[str, Any]] = {}
    duplicates = damaged = 0
    for path in paths:
        for row in read_rows(path):
            if row is None:
                damaged += 1
            elif row["url"] in rows:
                duplicates += 1
            else:
                rows[row["url"]] = row

    def line_of(row: dict[str, Any]) -> int:
        try:
            return int(row.get("line") or 0)
        except (TypeError, ValueError):
            return 0

    ordered = sorted(rows.values(), key=line_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in {".jsonl", ".jl", ".ndjson"}:
        with out.open("w", encoding="utf-8", errors="surrogateescape") as f:
            for row in ordered:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        with out.open("w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            writer = csv.DictWriter(f, fieldnames=list(FIELDS), extrasaction="ignore")
            writer.writeheader()
            for row in ordered:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return {"rows": len(ordered), "duplicates": duplicates, "damaged": damaged}


class Command(ScrapyCommand):
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "status | reset | merge -o OUT REPORT..."

    def short_desc(self) -> str:
        return "Cluster mode: status of the shared queue, reset it, merge reports"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", help="merge: the merged report (.csv or .jsonl)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageError("give an action: status, reset or merge")
        action, rest = args[0], args[1:]
        if action == "merge":
            if not opts.output or not rest:
                raise UsageError("merge needs -o OUT and at least one report")
            missing = [p for p in rest if not Path(p).is_file()]
            if missing:
                raise UsageError(f"no such report: {', '.join(missing)}", print_help=False)
            counts = merge_reports([Path(p) for p in rest], Path(opts.output))
            sys.stderr.write(
                f"{counts['rows']} rows written to {opts.output} "
                f"({counts['duplicates']} repeated rows dropped, "
                f"{counts['damaged']} damaged rows skipped)\n"
            )
            return
        if action not in {"status", "reset"} or rest:
            raise UsageError(f"unknown action {' '.join(args)!r}: status, reset or merge")
        assert self.settings is not None
        if not self.settings.get("PAGES_REDIS_URL"):
            raise UsageError("set PAGES_REDIS_URL (-s PAGES_REDIS_URL=redis://host:6379/0)")
        check_redis(self.settings)
        frontier = Frontier(redis_client(self.settings), cluster_key(self.settings))
        if action == "reset":
            deleted = frontier.reset()
            sys.stdout.write(json.dumps({"deleted_keys": deleted}) + "\n")
            return
        frontier.reclaim()
        sys.stdout.write(json.dumps(frontier.status().as_dict(), sort_keys=True) + "\n")
