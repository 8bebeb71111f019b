"""Page title extraction, as a browser's ``document.title`` reads it.

The HTML5 parser (lexbor, through selectolax) decides what is a title: one
inside a comment, a ``<script>`` or a ``<style>`` is text, and one inside
``<svg>`` or ``<math>`` is a foreign element, not the document's title.

Only a prefix of the page is parsed. HTML parsing is left to right, so the
tree built from the text up to a ``</title`` end tag is the same as the tree
of the whole document up to that point: the prefix up to the first
``</title`` that closes an HTML ``<title>`` gives exactly the title of the
whole page. Decoy end tags (in comments, scripts, SVG) only extend the
prefix to the next one.

The page is decoded as a browser decodes it (:func:`sniff_encoding`, the
HTML Standard's "determining the character encoding"): a byte-order mark,
then the ``Content-Type`` charset, then a ``<meta>`` declaration in the first
1024 bytes, then UTF-8 if the bytes are valid UTF-8, else windows-1252.
Scrapy 2.19 (``TextResponse.encoding``) guesses undeclared pages with
charset-normalizer instead, which reads windows-1252 "Café crème" as
windows-1250 "Café crčme".
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

__all__ = [
    "MAX_TITLE_LENGTH",
    "clean_text",
    "decode_page",
    "extract_title",
    "extract_title_bytes",
    "page_title",
    "sniff_encoding",
]

MAX_TITLE_LENGTH: Final = 512
# An end tag is "</title" followed by whitespace, "/" or ">" (HTML tokenizer);
# "</titlex" is text.
_END_TAG: Final = re.compile(r"</title(?=[\t\n\f\r />])", re.IGNORECASE)
_START_TAG: Final = re.compile(r"<title", re.IGNORECASE)
_MAX_PREFIX_TRIES: Final = 4
_END_TAG_BYTES: Final = re.compile(rb"</title(?=[\t\n\f\r />])", re.IGNORECASE)
_START_TAG_BYTES: Final = re.compile(rb"<title", re.IGNORECASE)
_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# Encodings in which "<title", "</title" and ">" are those ASCII bytes and
# never part of another character: a match in the bytes is one in the text.
_ASCII_SAFE: Final = re.compile(
    r"^(?:utf-?8|ascii|us-ascii|latin-?1|iso-?8859-\d+|cp125\d|windows-125\d)$"
)
_FOREIGN: Final = frozenset({"svg", "math"})
# The byte-order marks the HTML Standard honours (not UTF-32's).
_BOM_ENCODINGS: Final = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_BOM_FIRST_BYTES: Final = frozenset(bom[:1] for bom, _ in _BOM_ENCODINGS)
_PRESCAN_BYTES: Final = 1024  # where the HTML Standard stops looking for <meta>
# windows-1252 as the Encoding Standard defines it: the five bytes Python's
# cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) are U+0081...
_WINDOWS_1252_ERRORS: Final = "pages-windows-1252"


def _c1_for_undefined(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_WINDOWS_1252_ERRORS, _c1_for_undefined)
# C0/C1 controls and the Unicode bidi overrides/isolates that can reorder text
# in a terminal or a spreadsheet.
_UNSAFE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SPACE: Final = re.compile(r"\s+")


def clean_text(text: str, max_length: int = MAX_TITLE_LENGTH) -> str:
    """One line of printable text: controls removed, whitespace collapsed.

    ``max_length`` (0 for no limit) truncates at a character boundary and marks
    the cut with an ellipsis.
    """
    if (
        text.isprintable()  # no controls, bidi marks, surrogates, odd spaces
        and (not max_length or len(text) <= max_length)
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):
        return text
    if _UNSAFE.search(text):
        text = _UNSAFE.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    if max_length and len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "\u2026"
    return text


def sniff_encoding(body: bytes, content_type: bytes | str | None = None) -> str:
    """The encoding a browser decodes the HTML page ``body`` with (a Python
    codec name; see the module docstring).

    ``content_type`` is the response's ``Content-Type`` header. Declared
    labels map to encodings as the Encoding Standard says (``iso-8859-1`` and
    ``ascii`` are windows-1252, ...: w3lib's table); a ``<meta>`` that names
    UTF-16 means UTF-8 (the bytes are ASCII-compatible, so it cannot be).
    """
    if body[:1] in _BOM_FIRST_BYTES:
        for bom, encoding in _BOM_ENCODINGS:
            if body.startswith(bom):
                return encoding
    if content_type:
        if isinstance(content_type, bytes):
            content_type = content_type.decode("latin-1")
        declared = http_content_type_encoding(content_type)
        if declared is not None:
            return declared
    declared = html_body_declared_encoding(body[:_PRESCAN_BYTES])
    if declared is not None:
        return "utf-8" if declared.startswith("utf-16") else declared
    if body.isascii():
        return "utf-8"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode_page(body: bytes, encoding: str) -> str:
    """``body`` decoded with ``encoding`` (from :func:`sniff_encoding`), its
    byte-order mark dropped; bytes invalid in it become U+FFFD."""
    for bom, name in _BOM_ENCODINGS:
        if name == encoding and body.startswith(bom):
            body = body[len(bom) :]
            break
    errors = _WINDOWS_1252_ERRORS if encoding == "cp1252" else "replace"
    return body.decode(encoding, errors)


def page_title(
    body: bytes, content_type: bytes | str | None, max_length: int = MAX_TITLE_LENGTH
) -> str:
    """The title of the HTML page ``body`` served with ``content_type``, as
    a browser shows it (the right encoding, one clean line, bounded)."""
    encoding = sniff_encoding(body, content_type)
    found = extract_title_bytes(body, encoding, max_length)
    if found is not None:
        return found
    return extract_title(decode_page(body, encoding), max_length)


def _is_html_title(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in _FOREIGN:
            return False
        parent = parent.parent
    return True


def _first_title(html: str) -> str | None:
    # tags(): lexbor's elements-by-name walk, half the cost of css("title").
    for node in LexborHTMLParser(html).tags("title"):
        if _is_html_title(node):
            return node.text(deep=True)
    return None


def extract_title(html: str, max_length: int = MAX_TITLE_LENGTH) -> str:
    """Return the cleaned document title of ``html``, or ``""`` if it has none."""
    if _START_TAG.search(html) is None:
        return ""
    pos = 0
    tries = 0
    while True:
        match = _END_TAG.search(html, pos)
        tries += 1
        if match is None or tries > _MAX_PREFIX_TRIES:
            # No (more) end tags, or too many decoys to keep re-parsing
            # prefixes (that would be quadratic): parse the whole document.
            # A <title> left open runs to the end of the document.
            title = _first_title(html) if pos < len(html) and "<" in html else None
            break
        end = html.find(">", match.end())
        end = len(html) if end < 0 else end + 1
        title = _first_title(html[:end])
        if title is not None:
            break
        pos = end
    if not title:
        return ""
    return clean_text(unicodedata.normalize("NFC", title), max_length)


def extract_title_bytes(
    body: bytes, encoding: str, max_length: int = MAX_TITLE_LENGTH
) -> str | None:
    """:func:`extract_title` of the page ``body`` decoded with ``encoding``,
    decoding and parsing only the bytes up to the first ``</title>``.

    Returns ``None`` when it cannot tell (a BOM, an encoding that is not
    ASCII-compatible, a decoy end tag first): the caller then decodes the
    whole page and calls :func:`extract_title`, which gives the same answer
    as this function whenever this one gives one.
    """
    if not _ASCII_SAFE.match(encoding.lower()) or body.startswith(_BOMS):
        return None
    if _START_TAG_BYTES.search(body) is None:
        return ""
    match = _END_TAG_BYTES.search(body)
    if match is None:
        return None
    end = body.find(b">", match.end())
    end = len(body) if end < 0 else end + 1
    prefix = body[:end].decode(
        encoding, _WINDOWS_1252_ERRORS if encoding == "cp1252" else "replace"
    )
    if "<" not in prefix:
        return None
    title = _first_title(prefix)
    if title is None:
        return None
    if not title:
        return ""
    return clean_text(unicodedata.normalize("NFC", title), max_length)
