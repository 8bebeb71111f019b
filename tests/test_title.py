import pytest

from scraper_project.title import clean_text, extract_title

TITLES = [
    ("<html><head><title>Hello</title></head></html>", "Hello"),
    ("<TITLE>Upper</TITLE >", "Upper"),
    ("<title>  spaced \n\n\t out  </title>", "spaced out"),
    ("<title>&lt;b&gt; &amp; &eacute; &#x263A; &#233;</title>", "<b> & é ☺ é"),
    ("<title>a&nbsp;b</title>", "a b"),
    ("<title>ctrl\x01\x07\x1b[31m</title>", "ctrl[31m"),
    ("<title>bidi\u202eevil\u2066x</title>", "bidievilx"),
    ("<html><body>no title</body></html>", ""),
    ("<title></title>", ""),
    ("<title>   </title>", ""),
    ("", ""),
    ("plain text, no markup", ""),
    ("<title>one</title><title>two</title>", "one"),
    ("<title>Open title never closed", "Open title never closed"),
    # Decoys: not the document's title.
    ("<!-- <title>comment</title> --><title>real</title>", "real"),
    ('<script>var s="<title>script</title>";</script><title>real</title>', "real"),
    ("<style>/*<title>style</title>*/</style><title>real</title>", "real"),
    ("<body><svg><title>svg</title></svg><title>real</title></body>", "real"),
    ("<body><math><title>math</title></math></body>", ""),
    ("<body><svg><title>only svg</title></svg></body>", ""),
    ("<body><textarea><title>text</title></textarea></body>", ""),
    ("<body><title>in body</title></body>", "in body"),
    ("<title>a</b>c</title>", "a</b>c"),
    ("<title>a</titlex>b</title>", "a</titlex>b"),
    ("<title>a</title\n>b", "a"),
    (
        '<head><!-- <title>C</title> --><script>var t="<title>S</title>";</script>'
        "<title> Real &amp; true\n   title </title></head><body><svg><title>SVG</title></svg>",
        "Real & true title",
    ),
]


@pytest.mark.parametrize(("html", "expected"), TITLES)
def test_extract_title(html: str, expected: str) -> None:
    assert extract_title(html) == expected


def test_title_length_is_bounded() -> None:
    title = extract_title("<title>" + "x" * 5000 + "</title>", max_length=100)
    assert len(title) == 100
    assert title.endswith("\u2026")


def test_title_nfc() -> None:
    assert extract_title("<title>Cafe\u0301</title>") == "Caf\u00e9"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a\x00b", 0, "ab"),
        ("  a \r\n b ", 0, "a b"),
        ("abcdef", 4, "abc\u2026"),
        ("abc", 3, "abc"),
    ],
)
def test_clean_text(text: str, limit: int, expected: str) -> None:
    assert clean_text(text, limit) == expected


def test_many_decoy_end_tags_stay_linear() -> None:
    import time

    page = "<html><body>" + "<p>&lt;/title&gt; </title> text</p>" * 3000 + "</body></html>"
    started = time.monotonic()
    assert extract_title(page) == ""
    assert time.monotonic() - started < 2.0  # was quadratic: minutes at this size


def test_real_title_after_many_decoys() -> None:
    decoys = "<!-- <title>c</title> -->" * 10
    assert extract_title(f"<head>{decoys}<title>real</title></head>") == "real"
