"""Titles decoded as browsers decode pages (issue 15, item 12): properties.

:func:`scraper_project.title.sniff_encoding` follows the HTML Standard: a
byte-order mark, the ``Content-Type`` charset, a ``<meta>`` in the first 1024
bytes, then UTF-8 if the bytes are valid UTF-8, else windows-1252. Checked
three ways: a page built in a known encoding and declared (or not) in every
way gives back its title; pages with a BOM or a ``<meta>`` give the title
lexbor's own implementation of the Standard's sniffing gives (selectolax,
``encoding=True``); and any bytes at all give one clean line.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from scraper_project.title import clean_text, decode_page, page_title, sniff_encoding

# Encodings pages declare, with a sample of what they can encode.
ENCODINGS = {
    "utf-8": "aé€Ωж中😀",
    "windows-1252": "aéèçÀ€œŠ™",
    "windows-1251": "aжЖяЯ№",
    "iso-8859-2": "ačřžŁ",
    "shift_jis": "aあア漢",
    "koi8-r": "aжЖя",
}
# The codec Python decodes each label with (iso-8859-1 means windows-1252).
CODEC = {"windows-1252": "cp1252", "windows-1251": "cp1251", "shift_jis": "cp932"}

WORD = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8)


def title_text(encoding: str) -> st.SearchStrategy[str]:
    """Titles of words and characters the encoding has (no markup, no spaces
    at the ends: what a title looks like once cleaned)."""
    specials = st.sampled_from(ENCODINGS[encoding])
    part = st.one_of(WORD, specials)
    return st.lists(part, min_size=1, max_size=6).map(" ".join)


def page(title: str, declaration: str = "", filler: int = 0) -> str:
    return (
        f"<!DOCTYPE html><html><head>{declaration}"
        f"<!-- {'x' * filler} --><title>{title}</title></head>"
        f"<body><p>{title}</p></body></html>"
    )


def expected(title: str) -> str:
    return clean_text(unicodedata.normalize("NFC", title))


@st.composite
def declared_pages(draw: st.DrawFn) -> tuple[bytes, str | None, str]:
    """(body, content type, title) of a page declared by header, <meta> or BOM."""
    encoding = draw(st.sampled_from(sorted(ENCODINGS)))
    title = draw(title_text(encoding))
    how = draw(st.sampled_from(["header", "meta", "http-equiv", "bom"]))
    codec = CODEC.get(encoding, encoding)
    if how == "bom":
        if encoding != "utf-8":
            how = "header"
        else:
            return b"\xef\xbb\xbf" + page(title).encode("utf-8"), "text/html", title
    if how == "header":
        return page(title).encode(codec), f"text/html; charset={encoding}", title
    filler = draw(st.integers(0, 800))  # the declaration stays in the first 1024 bytes
    meta = (
        f'<meta charset="{encoding}">'
        if how == "meta"
        else f'<meta http-equiv="Content-Type" content="text/html; charset={encoding}">'
    )
    return page(title, meta, filler).encode(codec), "text/html", title


@given(declared_pages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_declared_pages_give_back_their_title(case: tuple[bytes, str | None, str]) -> None:
    body, content_type, title = case
    assert page_title(body, content_type) == expected(title)


@given(
    st.sampled_from(["utf-8", "windows-1252"]).flatmap(
        lambda e: st.tuples(st.just(e), title_text(e))
    )
)
@settings(max_examples=200, deadline=None)
@example(("windows-1252", "Café crème"))  # issue 15: not "Café crčme"
def test_undeclared_pages_are_utf8_if_valid_else_windows_1252(case: tuple[str, str]) -> None:
    encoding, title = case
    body = page(title).encode(CODEC.get(encoding, encoding))
    assert page_title(body, "text/html") == expected(title)
    assert sniff_encoding(body) == ("utf-8" if body.isascii() else CODEC.get(encoding, encoding))


@given(
    st.sampled_from(["utf-8", "windows-1251", "windows-1252", "iso-8859-2", "koi8-r"]).flatmap(
        lambda e: st.tuples(st.just(e), title_text(e), st.booleans(), st.integers(0, 900))
    )
)
@settings(max_examples=200, deadline=None)
def test_bom_and_meta_agree_with_lexbor(case: tuple[str, str, bool, int]) -> None:
    """Another implementation of the Standard's sniffing (lexbor, in C): the
    same title for pages that declare their encoding in the body."""
    encoding, title, bom, filler = case
    if bom and encoding == "utf-8":
        body = b"\xef\xbb\xbf" + page(title, "", filler).encode("utf-8")
    else:
        body = page(title, f'<meta charset="{encoding}">', filler).encode(
            CODEC.get(encoding, encoding)
        )
    node = LexborHTMLParser(body, encoding=True).css_first("title")
    assert node is not None
    assert page_title(body, None) == expected(node.text())


@given(st.binary(max_size=2000), st.one_of(st.none(), st.text(max_size=40)))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_one_clean_line(body: bytes, content_type: str | None) -> None:
    title = page_title(b"<title>" + body, content_type)
    assert title == clean_text(title)
    decode_page(body, sniff_encoding(body, content_type))  # total: never raises


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (b"\xef\xbb\xbf<meta charset=windows-1251>", "text/html; charset=koi8-r", "utf-8"),
        (b"\xff\xfe<\x00", None, "utf-16-le"),
        (b"\xfe\xff\x00<", None, "utf-16-be"),
        (b"<meta charset=windows-1251>", "text/html; charset=koi8-r", "koi8-r"),  # header first
        (b"<meta charset=utf-16le>caf\xc3\xa9", None, "utf-8"),  # <meta> UTF-16 means UTF-8
        (b"<meta charset=iso-8859-1>", None, "cp1252"),
        (b"<p>" + b"x" * 1100 + b"<meta charset=windows-1251>caf\xe9", None, "cp1252"),
        (b"caf\xc3\xa9", "text/html", "utf-8"),
        (b"caf\xe9", "text/html", "cp1252"),
        (b"plain ascii", None, "utf-8"),
        (b"<meta charset=no-such-thing>caf\xe9", "text/html; charset=bogus", "cp1252"),
    ],
)
def test_sniffing_order(body: bytes, content_type: str | None, encoding: str) -> None:
    assert sniff_encoding(body, content_type) == encoding


def test_windows_1252_bytes_python_leaves_undefined() -> None:
    """The Encoding Standard maps 0x81, 0x8D, 0x8F, 0x90 and 0x9D to the C1
    controls of the same number (Python's cp1252 rejects them)."""
    assert decode_page(b"a\x81\x8d\x8f\x90\x9d\x80", "cp1252") == "a\x81\x8d\x8f\x90\x9d€"
