"""Realistic report rows, and report files written by the project's own
feed exporters (so their quirks are the real ones)."""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scrapy.exporters import JsonItemExporter, JsonLinesItemExporter

from scraper_project.exporters import SafeCsvItemExporter
from scraper_project.htmlreport import HtmlItemExporter
from scraper_project.items import FIELDS, PageItem, new_item

HOSTILE_TITLES = (
    "</script><script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    "<!--<script>window.__pwned = 3</script>-->",
    "</SCRIPT ><b>bold?</b> &amp; &lt;",
    '=HYPERLINK("http://evil.test","x")',
    "line\u2028separator \u00e9 \u4e2d\u6587",
)

#: Files that are not reports: (name, content or None for missing, message).
BAD_REPORTS = (
    ("missing.csv", None, "missing.csv: no such file"),
    ("urls.txt", b"http://a.test/\nhttp://b.test/\n", "urls.txt: unknown format"),
    ("other.csv", b"name,size\nx,1\n", "other.csv: not a report of this project"),
    ("object.json", b'{"url": "http://a.test/"}', "object.json: not a report"),
    ("list.json", b'["http://a.test/"]', "list.json: not a report"),
    ("numbers.jsonl", b"1\n2\n", "numbers.jsonl: not a report"),
    ("fake.csv.gz", b"url,status,error\n", "fake.csv.gz: not a gzip file"),
)

_ERRORS = (
    "timeout: took longer than 10.0 seconds",
    "dns_error: DNS lookup failed",
    "connection_refused: Connection refused",
    "robots_forbidden: Forbidden by robots.txt",
    "not_attempted: the crawl stopped first",
    "cancelled: the crawl stopped during the download",
)


def make_rows(count: int, seed: int = 1, hosts: int = 5) -> list[PageItem]:
    """``count`` rows over ``hosts`` hosts: mostly 200s, some 3xx/4xx/5xx/429,
    errors of several classes, a few hostile titles and one invalid URL."""
    rng = random.Random(seed)
    rows: list[PageItem] = []
    for i in range(count):
        host = f"h{rng.randrange(hosts)}.test" + (":8080" if i % 7 == 0 else "")
        url = f"http://{host}/p/{i}?q={rng.randrange(1000)}"
        roll = rng.random()
        if i == 3:
            rows.append(new_item("not a url", i + 1, "invalid_url: not a URL"))
            continue
        if roll < 0.12:
            row = new_item(url, i + 1, rng.choice(_ERRORS))
            if not row["error"].startswith(("robots", "not_att")):
                row["attempts"] = 1
                row["elapsed_ms"] = rng.randrange(5, 20_000)
            rows.append(row)
            continue
        status = rng.choices([200, 301, 404, 429, 500, 503], [80, 4, 6, 3, 4, 3])[0]
        redirected = rng.random() < 0.1
        rows.append(
            {
                "url": url,
                "final_url": f"http://{host}/moved/{i}" if redirected else url,
                "status": status,
                "length": rng.randrange(0, 50_000),
                "title": rng.choice(HOSTILE_TITLES) if rng.random() < 0.05 else f"Page {i}",
                "content_type": "text/html; charset=utf-8",
                "error": "",
                "attempts": 1,
                "elapsed_ms": int(rng.lognormvariate(4, 1)),
                "redirects": 1 if redirected else 0,
                "line": i + 1,
            }
        )
    return rows


def write_report(path: Path, rows: Iterable[PageItem]) -> Path:
    """Write ``rows`` as Scrapy would for ``-O path`` (csv, json, jsonl; .gz)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    exporter_cls: Any = {
        ".csv": SafeCsvItemExporter,
        ".json": JsonItemExporter,
        ".jsonl": JsonLinesItemExporter,
    }[Path(name).suffix]
    buffer = io.BytesIO()
    exporter = exporter_cls(buffer, fields_to_export=list(FIELDS), encoding="utf-8")
    exporter.start_exporting()
    for row in rows:
        exporter.export_item(row)
    exporter.finish_exporting()
    data = buffer.getvalue()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def export_html(rows: Iterable[PageItem], path: Path, **options: Any) -> Path:
    """Write the HTML report of ``rows`` with the feed exporter."""
    with path.open("wb") as f:
        exporter = HtmlItemExporter(f, source="test", **options)
        exporter.start_exporting()
        for row in rows:
            exporter.export_item(row)
        exporter.finish_exporting()
    return path
