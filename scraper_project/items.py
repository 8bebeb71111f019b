"""The report row.

Items are plain dicts (the cheapest item type for Scrapy and its exporters);
:class:`PageItem` documents and types them. :data:`FIELDS` is the column order
of every report (``FEED_EXPORT_FIELDS``), so a CSV always has every column.
"""

from __future__ import annotations

from typing import Final, TypedDict

__all__ = ["FIELDS", "PageItem", "new_item"]


class PageItem(TypedDict):
    url: str  # the input URL, normalised (the raw line for invalid_url rows)
    final_url: str | None  # the URL that answered, after redirects
    status: int | None  # HTTP status of the final response
    length: int | None  # body bytes of the final response (after decoding)
    title: str  # document title, one clean line, "" when none
    content_type: str  # Content-Type header of the final response
    error: str  # "" when an HTTP response was obtained, else "class: detail"
    attempts: int  # downloads of this URL (1 + retries); 0 if never fetched
    elapsed_ms: int | None  # first download start to final answer
    redirects: int  # redirect hops followed
    line: int  # line number in the input list (first occurrence)


FIELDS: Final[tuple[str, ...]] = tuple(PageItem.__annotations__)


def new_item(url: str, line: int, error: str = "") -> PageItem:
    """A row with every field present, for a URL that got no response."""
    return {
        "url": url,
        "final_url": None,
        "status": None,
        "length": None,
        "title": "",
        "content_type": "",
        "error": error,
        "attempts": 0,
        "elapsed_ms": None,
        "redirects": 0,
        "line": line,
    }
