"""Read a finished report back, streaming: CSV, JSON, JSON lines (``.gz`` too).

:func:`read_rows` yields each row as the file has it (CSV cells are strings)
or ``None`` for a damaged row (cut short by a killed process); ``scrapy
cluster merge`` writes those back as they are. :func:`read_report` yields
typed rows (:class:`~scraper_project.items.PageItem`: numbers as ``int``,
empty cells as ``None``, the ``'`` that the CSV exporter put before
formula-looking text taken off again), for the HTML report and the diff.

The format follows the suffix (``.csv``, ``.json``, ``.jsonl``/``.jl``/
``.ndjson``, each optionally ``.gz``); any other suffix is sniffed from the
first bytes. A file that is none of these, or has no ``url`` column, raises
:class:`ReportFormatError`, a one-line usage error naming the file. A JSON
array is parsed incrementally (ijson), so a report of any size is read in
bounded memory.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import secrets
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import ijson
from scrapy.exceptions import UsageError

from scraper_project.exporters import FORMULA_PREFIXES
from scraper_project.items import FIELDS, PageItem

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Sequence

__all__ = [
    "JSONL_SUFFIXES",
    "ReportFormatError",
    "atomic_output",
    "cell_int",
    "cell_text",
    "cells_coercer",
    "coerce_row",
    "csv_cells",
    "read_columns",
    "read_report",
    "read_rows",
    "report_format",
]

csv.field_size_limit(1 << 24)

JSONL_SUFFIXES: Final = frozenset({".jsonl", ".jl", ".ndjson"})
_BY_SUFFIX: Final = {".csv": "csv", ".json": "json", **dict.fromkeys(JSONL_SUFFIXES, "jsonlines")}
# Columns without which a file is not a report.
REQUIRED: Final = ("url", "status", "error")


class ReportFormatError(UsageError):
    """The file is missing, of an unknown format, or not a report."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_help=False)


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes (decompressed if it ends in ``.gz``)."""
    try:
        raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 (returned, closed by the caller)
    except FileNotFoundError:
        raise ReportFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportFormatError(f"{path}: is a directory, not a report") from None
    except OSError as exc:
        raise ReportFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    if path.suffix.lower() != ".gz":
        return raw
    with raw:
        magic = raw.read(2)
    if magic != b"\x1f\x8b":
        raise ReportFormatError(f"{path}: not a gzip file")
    # gzip.open, not GzipFile(fileobj=raw): closing it closes the file too.
    return gzip.open(path, "rb")  # type: ignore[return-value]


def _open_text(path: Path) -> IO[str]:
    """The file as text (UTF-8; undecodable bytes kept as surrogates)."""
    return io.TextIOWrapper(
        _open_binary(path),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )


def report_format(path: Path) -> str:
    """``csv``, ``json`` or ``jsonlines``: by suffix, else from the first bytes."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _BY_SUFFIX:
        return _BY_SUFFIX[suffixes[-1]]
    with _open_text(path) as f:
        try:
            start = f.read(4096).lstrip()
        except (OSError, EOFError, UnicodeError) as exc:
            raise ReportFormatError(f"{path}: unknown format ({exc})") from None
    if start.startswith("["):
        return "json"
    if start.startswith("{"):
        return "jsonlines"
    first = start.split("\n", 1)[0]
    if "," in first and "url" in next(csv.reader([first]), []):
        return "csv"
    raise ReportFormatError(
        f"{path}: unknown format (expected a .csv, .json or .jsonl report of this project)"
    )


def _not_a_report(path: Path, why: str) -> ReportFormatError:
    return ReportFormatError(f"{path}: not a report of this project ({why})")


def read_rows(path: Path) -> Generator[dict[str, Any] | None, None, None]:
    """The rows of a report, as the file has them; ``None`` for a damaged row.

    ``path``: a CSV, JSON or JSON-lines report (optionally gzipped).

    Raises :class:`ReportFormatError` at the first row read when the file is
    missing, of an unknown format or not a report.
    """
    fmt = report_format(path)
    try:
        if fmt == "csv":
            yield from _csv_rows(path)
        elif fmt == "jsonlines":
            yield from _jsonl_rows(path)
        else:
            yield from _json_rows(path)
    except (OSError, EOFError):  # a gzip file cut short
        yield None


def csv_cells(path: Path) -> Iterator[list[str] | None]:
    """The header of a CSV report (checked: ``ReportFormatError``), then each
    row's cells as the file has them, or ``None`` for a damaged row. The
    cheapest way through a big CSV report (no dict per row)."""
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeError) as exc:
            raise _not_a_report(path, f"unreadable CSV header: {exc}") from None
        if header is None:
            return  # an empty file: a report without rows
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise _not_a_report(path, f"its CSV header has no {', '.join(missing)} column")
        yield header
        width = len(header)
        while True:
            try:
                for cells in reader:
                    # A row cut short by a killed process has fewer cells, or
                    # a partial last one (the line number).
                    yield cells if len(cells) == width and cells[-1].isdigit() else None
                return
            except csv.Error:  # a bad line; the reader goes on after it
                yield None


def _csv_rows(path: Path) -> Iterator[dict[str, Any] | None]:
    lines = csv_cells(path)
    header = next(lines, None)
    if header is None:
        return
    for cells in lines:
        yield None if cells is None else dict(zip(header, cells, strict=True))


def read_columns(path: Path, columns: Sequence[str]) -> Iterator[tuple[Any, ...] | None]:
    """Only ``columns`` of each row (a missing one is ``None``), as the file
    has them; ``None`` for a damaged row. Cheaper than :func:`read_rows` for
    a CSV (no dict per row). Errors as :func:`read_rows`."""
    if report_format(path) != "csv":
        for row in read_rows(path):
            yield None if row is None else tuple(row.get(c) for c in columns)
        return
    lines = csv_cells(path)
    header = next(lines, None)
    if header is None:
        return
    if not all(c in header for c in columns):
        for cells in lines:
            if cells is None:
                yield None
            else:
                row = dict(zip(header, cells, strict=True))
                yield tuple(row.get(c) for c in columns)
        return
    pick = itemgetter(*(header.index(c) for c in columns))
    for cells in lines:
        yield None if cells is None else pick(cells)


_END: Final = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _checked(path: Path, rows: Iterator[Any], what: str) -> Iterator[dict[str, Any] | None]:
    """``rows`` (parsed JSON values), ``None`` for those that are not rows;
    a ReportFormatError if the first one is not."""
    checked = False
    for row in rows:
        good = isinstance(row, dict) and "url" in row
        if not checked:
            if not good:
                if row is None and next(rows, _END) is _END:
                    yield None  # one torn row: a crawl killed early
                    return
                raise _not_a_report(path, f"its first {what} is not a JSON object with a url")
            checked = True
        yield row if good else None


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any] | None]:
    with _open_text(path) as f:
        yield from _checked(path, (_loads(text) for text in f if text.strip()), "line")


def _json_rows(path: Path) -> Iterator[dict[str, Any] | None]:
    with _open_text(path) as text:
        start = text.read(4096).lstrip()
    if not start:
        return
    if not start.startswith("["):
        raise _not_a_report(path, "it is JSON but not an array of rows")
    with _open_binary(path) as f:
        try:
            yield from _checked(path, ijson.items(f, "item", use_float=True), "item")
        except ijson.JSONError:
            yield None  # cut short (a killed crawl leaves no closing bracket)


_FORMULA_START: Final = frozenset(FORMULA_PREFIXES)


def cell_text(value: Any, from_csv: bool) -> str:
    """A text cell as the row had it (``None`` -> ``""``); in a CSV, the
    ``'`` the exporter put before text a spreadsheet would run is taken off."""
    if type(value) is not str:
        return "" if value is None else str(value)
    if from_csv and value[:1] == "'" and value[1:2] in _FORMULA_START:
        return value[1:]
    return value


def cell_int(value: Any) -> int | None:
    """A number cell (``""``/``None`` -> ``None``); ValueError if it is not one."""
    kind = type(value)
    if kind is str:
        return int(value) if value else None
    if value is None or kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float and value.is_integer():
        return int(value)
    raise ValueError(value)


def coerce_row(raw: dict[str, Any], from_csv: bool) -> PageItem | None:
    """``raw`` as a typed row, or ``None`` if a number column is not a number."""
    get = raw.get
    try:
        status = cell_int(get("status"))
        length = cell_int(get("length"))
        attempts = cell_int(get("attempts"))
        elapsed = cell_int(get("elapsed_ms"))
        redirects = cell_int(get("redirects"))
        line = cell_int(get("line"))
    except (TypeError, ValueError):
        return None
    return {
        "url": cell_text(get("url"), from_csv),
        "final_url": cell_text(get("final_url"), from_csv) or None,
        "status": status,
        "length": length,
        "title": cell_text(get("title"), from_csv),
        "content_type": cell_text(get("content_type"), from_csv),
        "error": cell_text(get("error"), from_csv),
        "attempts": attempts or 0,
        "elapsed_ms": elapsed,
        "redirects": redirects or 0,
        "line": line or 0,
    }


def cells_coercer(header: list[str]) -> Callable[[list[str]], PageItem | None]:
    """A function from the cells of a CSV report's row (``header``: its
    columns) to the typed row, as :func:`coerce_row` makes it; by position
    where the columns are the report's own, without a dict per row."""
    if tuple(header) != FIELDS:
        return lambda cells: coerce_row(dict(zip(header, cells, strict=True)), True)
    formula = _FORMULA_START

    def text(value: str) -> str:
        return value[1:] if value[:1] == "'" and value[1:2] in formula else value

    def number(value: str) -> int | None:
        return int(value) if value else None

    def coerce(cells: list[str]) -> PageItem | None:
        url, final_url, status, length, title, ctype, error, attempts, ms, redirects, line = cells
        try:
            return {
                "url": text(url),
                "final_url": text(final_url) or None,
                "status": number(status),
                "length": number(length),
                "title": text(title),
                "content_type": text(ctype),
                "error": text(error),
                "attempts": number(attempts) or 0,
                "elapsed_ms": number(ms),
                "redirects": number(redirects) or 0,
                "line": number(line) or 0,
            }
        except ValueError:
            return None

    return coerce


def read_report(path: Path) -> Iterator[PageItem | None]:
    """The typed rows of a report; ``None`` for a damaged row (see
    :func:`read_rows` for ``path`` and the errors)."""
    from_csv = report_format(path) == "csv"
    for raw in read_rows(path):
        yield None if raw is None else coerce_row(raw, from_csv)


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` only when the block succeeds: a
    failed or interrupted run leaves an existing ``path`` as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created like any output file (the umask's permissions), next to it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "xb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
