"""Read an HTML report's data blocks back as a browser's tokenizer would."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any


@dataclass
class Page:
    meta: dict[str, Any]
    rows: list[list[Any]]
    summary: dict[str, Any] | None
    scripts: list[dict[str, str]] = field(default_factory=list)  # attributes of every <script>
    tags: list[str] = field(default_factory=list)  # every start tag, in order

    def dicts(self) -> list[dict[str, Any]]:
        fields = self.meta["fields"]
        return [dict(zip(fields, row, strict=True)) for row in self.rows]


class _Blocks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[dict[str, str], str]] = []
        self.tags: list[str] = []
        self._attrs: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self._attrs = {k: v or "" for k, v in attrs}
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._attrs is not None:
            self.blocks.append((self._attrs, "".join(self._text)))
            self._attrs = None


def read_page(path: Path) -> Page:
    """The meta, rows and summary blocks of a complete page (each must be
    valid JSON on its own: nothing in the data ended a block early)."""
    parser = _Blocks()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    meta: dict[str, Any] = {}
    rows: list[list[Any]] = []
    summary = None
    for attrs, text in parser.blocks:
        if attrs.get("id") == "report-meta":
            meta = json.loads(text)
        elif attrs.get("class") == "rows":
            rows.extend(json.loads(text))
        elif attrs.get("id") == "report-summary":
            summary = json.loads(text)
    return Page(meta, rows, summary, [a for a, _ in parser.blocks], parser.tags)
