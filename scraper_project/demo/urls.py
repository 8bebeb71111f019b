"""URL lists for the demo site (what ``python -m scraper_project.demo urls`` prints)."""

from __future__ import annotations

from collections.abc import Iterator

#: Paths of the ``--mixed`` list, in order; ``None`` marks a blank line and
#: entries starting with ``#`` or without a leading ``/`` are written verbatim.
MIXED: tuple[str | None, ...] = (
    "# scraper_project demo URL list: one URL per line, '#' starts a comment",
    "/",
    "/page/0",
    "/page/1",
    "/page/2",
    "/status/404",
    "/status/500",
    "/redirect?to=/page/3",
    "/redirect/chain/3",
    None,
    "/page/0",
    "ftp://example.invalid/x",
    "not a url",
    "/binary/png",
    "/title/decoys",
    "/charset/latin1",
    "/charset/cp1251-meta",
    "/json",
    "/gzip",
    "/private/x",
)


def normalize_base(base: str) -> str:
    return base.rstrip("/")


def page_urls(base: str, count: int) -> Iterator[str]:
    """``{base}/page/0`` .. ``{base}/page/{count-1}``."""
    prefix = normalize_base(base) + "/page/"
    for n in range(count):
        yield f"{prefix}{n}"


def mixed_lines(base: str) -> list[str]:
    """The demonstration list: good pages, errors, junk lines and a duplicate."""
    root = normalize_base(base)
    lines: list[str] = []
    for entry in MIXED:
        if entry is None:
            lines.append("")
        elif entry.startswith("/"):
            lines.append(root + entry)
        else:
            lines.append(entry)
    return lines
