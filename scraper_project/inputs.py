"""Lazy reading of URL lists: a local file, standard input or an http(s) URL.

Lines are read in batches in a worker thread, so a slow pipe or a slow list
server never blocks the reactor, and only one batch is held in memory at a
time. Each line is decoded as UTF-8; bytes that are not UTF-8 are kept
(``surrogateescape``) so that :func:`scraper_project.urls.normalize_url` can
percent-encode them exactly instead of corrupting them. A byte-order mark on
the first line, CRLF endings, surrounding whitespace and one pair of
surrounding double quotes (spreadsheet exports) are removed; blank lines and
lines starting with ``#`` are skipped but still counted, so line numbers match
what an editor shows.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import sys
import urllib.request
from collections.abc import AsyncGenerator, Iterator
from contextlib import suppress
from typing import IO, Final

__all__ = ["InputError", "LineReader", "check_source", "iter_lines"]

BATCH_SIZE: Final = 1000
_BOM: Final = b"\xef\xbb\xbf"


class InputError(Exception):
    """The URL list cannot be opened or read."""


def is_remote(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def check_source(spec: str, *, absolute_only: bool = False) -> None:
    """Fail early, with a clear message, for a list that cannot be read.

    Remote lists are checked when they are opened (in the crawl).
    ``absolute_only`` (Scrapyd jobs) refuses relative paths and stdin: they
    would resolve in Scrapyd's working directory, not the user's.
    """
    if not spec:
        raise InputError("no URL list given: use -a urls=PATH (or - for stdin, or an http(s) URL)")
    if is_remote(spec):
        return
    if absolute_only and (spec == "-" or not os.path.isabs(spec)):
        raise InputError(
            f"URL list {spec!r} is not an absolute path or an http(s) URL: on Scrapyd, "
            f"relative paths resolve in Scrapyd's working directory ({os.getcwd()!r}) "
            f"and there is no stdin"
        )
    if spec == "-":
        return
    if not os.path.exists(spec):
        where = "" if os.path.isabs(spec) else f" (relative paths resolve in {os.getcwd()!r})"
        raise InputError(f"URL list not found: {spec!r}{where}")
    if os.path.isdir(spec):
        raise InputError(f"URL list is a directory, not a file: {spec!r}")
    if not os.access(spec, os.R_OK):
        raise InputError(f"URL list is not readable: {spec!r}")


def clean_line(raw: bytes, first: bool) -> str:
    """Decode and strip one raw line; return ``""`` for lines to skip."""
    if first and raw.startswith(_BOM):
        raw = raw[3:]
    text = raw.decode("utf-8", "surrogateescape").strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    if not text or text[0] == "#":
        return ""
    return text


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line worth looking at."""
    first = True
    for lineno, raw in enumerate(stream, 1):
        text = clean_line(raw, first)
        first = False
        if text:
            yield lineno, text


class LineReader:
    """Asynchronous, batched iteration over the lines of a URL list.

    ``spec`` is a path, ``-`` (standard input) or an http(s) URL.

    ``timeout`` bounds each network read of a remote list, in seconds.
    """

    def __init__(
        self,
        spec: str,
        *,
        batch_size: int = BATCH_SIZE,
        timeout: float = 30.0,
        stdin: IO[bytes] | None = None,
    ) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self.timeout = timeout
        self._stdin = stdin
        self._stream: IO[bytes] | None = None
        self.exhausted = False
        self._missing = 0

    def _open(self) -> IO[bytes]:
        if self.spec == "-":
            return self._stdin if self._stdin is not None else sys.stdin.buffer
        if is_remote(self.spec):
            request = urllib.request.Request(
                self.spec, headers={"User-Agent": "scraper_project (URL list fetch)"}
            )
            try:
                response: IO[bytes] = urllib.request.urlopen(request, timeout=self.timeout)
            except Exception as exc:
                raise InputError(f"cannot fetch URL list {self.spec}: {exc}") from exc
            return response
        try:
            return open(self.spec, "rb")
        except OSError as exc:
            raise InputError(f"cannot open URL list {self.spec!r}: {exc}") from exc

    def _next_batch(self, lines: Iterator[tuple[int, str]]) -> list[tuple[int, str]]:
        batch: list[tuple[int, str]] = []
        try:
            for item in lines:
                batch.append(item)
                if len(batch) >= self.batch_size:
                    break
            else:
                self.exhausted = True
                # An http.client response cut before its Content-Length: the
                # lines read are good, the rest is missing (raised after them).
                self._missing = getattr(self._stream, "length", None) or 0
        except (OSError, http.client.HTTPException) as exc:
            raise InputError(f"error while reading URL list {self.spec!r}: {exc}") from exc
        return batch

    async def batches(self) -> AsyncGenerator[list[tuple[int, str]]]:
        """Yield lists of ``(line_number, text)``; the last one may be short."""
        loop = asyncio.get_running_loop()
        self._stream = await loop.run_in_executor(None, self._open)
        lines = iter_lines(self._stream)
        try:
            while not self.exhausted:
                batch = await loop.run_in_executor(None, self._next_batch, lines)
                if batch:
                    yield batch
            if self._missing:
                raise InputError(
                    f"URL list {self.spec} ended {self._missing} bytes early (connection lost?)"
                )
        finally:
            self.close()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and stream is not sys.stdin.buffer and stream is not self._stdin:
            with suppress(Exception):
                stream.close()
