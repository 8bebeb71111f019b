"""A CSV exporter that is safe to open in a spreadsheet, and whole.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a TAB or a CR is a formula
to Excel, LibreOffice and Google Sheets (CSV injection); page titles and
input lines are attacker-controlled. Following OWASP's advice, such cells get
a leading ``'``, which spreadsheets show as text. Only text cells are changed
(numbers stay numbers), and only in CSV: JSON and JSON lines keep the exact
text.

Two more promises of a report: appending (``-o report.csv``) to a file that
already has rows writes no second header line in the middle of it, and a
report with no row (an empty list) still has its header line.

``FEED_EXPORTERS = {"csv": "scraper_project.exporters.SafeCsvItemExporter"}``
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Final

from scrapy.exporters import CsvItemExporter

if TYPE_CHECKING:
    from io import BytesIO

__all__ = ["FORMULA_PREFIXES", "SafeCsvItemExporter", "neutralise"]

FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would run it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _has_content(file: IO[bytes]) -> bool:
    """Whether ``file`` (opened to append, so positioned at its end) already
    holds bytes. A stream that cannot tell (a pipe, post-processing) is new."""
    try:
        return file.tell() > 0
    except (AttributeError, OSError, ValueError):
        return False


class SafeCsvItemExporter(CsvItemExporter):
    """Scrapy's CSV exporter with formula-looking text cells neutralised, no
    header line when appending to a file with content, and a header line
    even without rows."""

    def __init__(self, file: BytesIO, include_headers_line: bool = True, **kwargs: Any) -> None:
        if include_headers_line and _has_content(file):
            include_headers_line = False  # the file has its header already
        super().__init__(file, include_headers_line=include_headers_line, **kwargs)
        self._rows = 0

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        value = super().serialize_field(field, name, value)
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
            return "'" + value
        return value

    def export_item(self, item: Any) -> None:
        self._rows += 1
        super().export_item(item)

    def finish_exporting(self) -> None:
        if not self._rows and self.include_headers_line and self.fields_to_export:
            fields = self.fields_to_export
            names = fields.values() if isinstance(fields, dict) else fields
            self.csv_writer.writerow([str(name) for name in names])
        super().finish_exporting()
