"""A CSV exporter that is safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a TAB or a CR is a formula
to Excel, LibreOffice and Google Sheets (CSV injection); page titles and
input lines are attacker-controlled. Following OWASP's advice, such cells get
a leading ``'``, which spreadsheets show as text. Only text cells are changed
(numbers stay numbers), and only in CSV: JSON and JSON lines keep the exact
text.

``FEED_EXPORTERS = {"csv": "scraper_project.exporters.SafeCsvItemExporter"}``
"""

from __future__ import annotations

from typing import Any, Final

from scrapy.exporters import CsvItemExporter

__all__ = ["FORMULA_PREFIXES", "SafeCsvItemExporter", "neutralise"]

FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would run it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class SafeCsvItemExporter(CsvItemExporter):
    """Scrapy's CSV exporter with formula-looking text cells neutralised."""

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        value = super().serialize_field(field, name, value)
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
            return "'" + value
        return value
