"""The report fast path writes exactly what Scrapy's exporters write."""

from __future__ import annotations

import io
from typing import Any

import pytest
from scrapy.exporters import BaseItemExporter, CsvItemExporter, JsonLinesItemExporter

from scraper_project.items import FIELDS, new_item
from scraper_project.report import _fast_exporter

ROWS: list[dict[str, Any]] = [
    dict(new_item('http://a.test/ü,"x"', 3, "not_attempted: the crawl stopped, sorry")),
    {**new_item("http://b.test/", 4), "status": 200, "title": 'T "q"\n', "length": 10},
    {**new_item("http://c.test/", 5), "elapsed_ms": 0, "attempts": 2, "redirects": 1},
    dict(new_item("=cmd|' /C calc'!A0", 6, "invalid_url: not a URL")),
]


class _Kept(io.BytesIO):
    """Keeps its bytes when the exporter closes it."""

    value = b""

    def close(self) -> None:
        self.value = self.getvalue()
        super().close()


def _export(cls: type[BaseItemExporter], fast: bool) -> bytes:
    out = _Kept()
    exporter = cls(out, fields_to_export=list(FIELDS))
    exporter.start_exporting()
    exporter.export_item(dict(ROWS[0]))  # the first row (CSV: the header)
    write = _fast_exporter(exporter) if fast else None
    for row in ROWS:
        if write is None:
            exporter.export_item(dict(row))
        else:
            write(dict(row))
    exporter.finish_exporting()
    return out.value or out.getvalue()


@pytest.mark.parametrize("cls", [CsvItemExporter, JsonLinesItemExporter])
def test_fast_path_is_byte_identical(cls: type[BaseItemExporter]) -> None:
    fast = _export(cls, fast=True)
    assert fast == _export(cls, fast=False)
    assert fast.count(b"http://c.test/") == 1


def test_no_fast_path_for_other_exporters() -> None:
    from scrapy.exporters import JsonItemExporter

    exporter = JsonItemExporter(io.BytesIO(), fields_to_export=list(FIELDS))
    assert _fast_exporter(exporter) is None


class _Slot:
    def __init__(self, exporter: BaseItemExporter) -> None:
        self.exporter = exporter
        self._exporting = True
        self.itemcount = 0


class _NoStats:
    stats = None


@pytest.mark.parametrize("cls", [CsvItemExporter, JsonLinesItemExporter])
def test_bulk_not_attempted_rows_match_the_exporter(cls: type[BaseItemExporter]) -> None:
    from scraper_project.report import ReportWriter

    entries = [("http://a.test/1", 7), ('http://a.test/"2",', 9)]
    error = "not_attempted: the crawl stopped (shutdown) first"
    outputs = []
    for bulk in (True, False):
        out = _Kept()
        exporter = cls(out, fields_to_export=list(FIELDS))
        exporter.start_exporting()
        exporter.export_item(dict(ROWS[1]))
        slot = _Slot(exporter)
        writer = ReportWriter([], [slot], _NoStats())  # type: ignore[arg-type]
        if bulk:
            writer.write_not_attempted(entries, error)
        else:
            for url, line in entries:
                exporter.export_item(dict(new_item(url, line, error)))
        exporter.finish_exporting()
        outputs.append(out.value or out.getvalue())
        if bulk:
            assert slot.itemcount == 2
    assert outputs[0] == outputs[1]
