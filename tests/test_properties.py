"""Property-based tests (hypothesis) of the pure helpers.

- :func:`scraper_project.urls.normalize_url`: total (``str`` or ``InvalidURL``),
  canonical output, idempotent;
- :func:`scraper_project.inputs.iter_lines`: total over any bytes, sane line
  numbers and texts;
- :func:`scraper_project.title.extract_title`: total, one clean line, bounded;
- :class:`scraper_project.exporters.SafeCsvItemExporter`: every row survives a
  CSV round trip and no cell can start a spreadsheet formula.

The properties found five bugs, all fixed: ``'`` and over-long DNS labels
treated differently by the URL fast path and the general path, IPvFuture
literals losing their brackets, a quoted ``"#comment"`` line read as a URL,
and a title prefix cut at ``</titlex`` (not an end tag).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from scraper_project.exporters import SafeCsvItemExporter, neutralise
from scraper_project.inputs import iter_lines
from scraper_project.items import FIELDS, PageItem
from scraper_project.title import (
    MAX_TITLE_LENGTH,
    _first_title,
    clean_text,
    extract_title,
    extract_title_bytes,
)
from scraper_project.urls import InvalidURL, normalize_url

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- strategies -------------------------------------------------------------

# Lone surrogates as produced by ``bytes.decode("utf-8", "surrogateescape")``.
surrogates = st.sampled_from([chr(c) for c in range(0xDC80, 0xDD00)])
odd_chars = st.sampled_from(
    [
        " ",
        "\t",
        "\x00",
        "\x7f",
        "\u00a0",
        "\u200b",
        "\u202e",
        "\u3000",
        "\ufeff",
        "\\",
        "%",
        "%%",
        "%2",
        "%zz",
        "#",
        "?",
        "@",
        ":",
        "[",
        "]",
        "é",
        "日本",
        "ß",
        "\U0001f600",
        "\uff0e",  # fullwidth full stop (an IDNA dot)
        "\u3002",  # ideographic full stop (an IDNA dot)
        "\u2100",  # a/c: NFKC gives "a/c"
    ]
)
url_text = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@/?%", max_size=8),
    surrogates,
    odd_chars,
)


def _joined(parts: st.SearchStrategy[str], max_size: int = 4) -> st.SearchStrategy[str]:
    return st.lists(parts, max_size=max_size).map("".join)


schemes = st.sampled_from(
    ["http", "https", "HTTP", "HtTpS", "ftp", "file", "mailto", "h", "https+x", "", "1http"]
)
separators = st.sampled_from(["://", ":/", ":", ":///", "//", ":\\\\", "://\\", ""])
userinfo = st.one_of(
    st.just(""),
    st.builds(lambda u: u + "@", _joined(url_text, 3)),
    st.sampled_from(["user:pass@", "@", "a@b@", ":@", "us%40er@", "é@"]),
)
hosts = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.COM",
            "example.com.",
            "localhost",
            "a",
            "xn--bcher-kva.example",
            "xn--",
            "xn--zz",
            "bücher.example",
            "BÜCHER.example",
            "例え.テスト",
            "ex\u00adample.com",  # soft hyphen: mapped away by IDNA
            "faß.de",
            "ﬁ.example",
            "a..b",
            ".example",
            "-a.example",
            "a_b.example",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3",
            "256.1.1.1",
            "0x7f.0.0.1",
            "2130706433",
            "999999999999999999999",
            "127.0.0.1",
            "[::1]",
            "[2001:DB8::1]",
            "[::ffff:1.2.3.4]",
            "[fe80::1%25eth0]",
            "[::1",
            "::1]",
            "[]",
            "[zz]",
            "[v1.x]",
            "",
            "a" * 64 + ".com",
            "a" * 300,
            "%41.example",
            "ex%20ample.com",
        ]
    ),
    st.from_regex(r"[a-z0-9\-_.]{0,20}", fullmatch=True),
    st.builds(
        lambda parts: ".".join(str(p) for p in parts),
        st.lists(st.integers(-1, 300), min_size=1, max_size=5),
    ),
    _joined(url_text, 3),
)
ports = st.one_of(
    st.just(""),
    st.builds(lambda n: f":{n}", st.integers(-5, 70000)),
    st.sampled_from([":", ":0", ":80", ":443", ":080", ":00443", ":65535", ":65536", ":x", ":1a"]),
    st.builds(lambda t: ":" + t, url_text),
)
path_segments = st.one_of(
    st.sampled_from(
        [".", "..", "%2e", "%2E%2e", "", "a", "%7e", "%7E", "%2F", "%ff", "%C3%A9", "a b"]
    ),
    url_text,
)
paths = st.one_of(
    st.just(""),
    st.builds(lambda segs: "/" + "/".join(segs), st.lists(path_segments, max_size=5)),
    _joined(url_text, 3),
)
queries = st.one_of(
    st.just(""),
    st.builds(lambda q: "?" + q, _joined(url_text, 3)),
    st.sampled_from(["?", "??", "?a=1&b=2", "?q=%7e%41", "?a b", "?#"]),
)
fragments = st.one_of(
    st.just(""),
    st.builds(lambda f: "#" + f, _joined(url_text, 3)),
    st.sampled_from(["#", "##", "#a#b"]),
)
url_like = st.builds(
    lambda *pieces: "".join(pieces),
    schemes,
    separators,
    userinfo,
    hosts,
    ports,
    paths,
    queries,
    fragments,
)
# Valid-looking URLs mutated by inserting odd characters anywhere.
mutated_urls = st.builds(
    lambda url, pos, extra: url[:pos] + extra + url[pos:],
    url_like,
    st.integers(0, 80),
    st.one_of(surrogates, odd_chars, url_text),
)

_CANON_RE = re.compile(r"https?://[\x21-\x7e]+")


def _check_normalized(text: str) -> None:
    reason = ""
    try:
        result = normalize_url(text)
    except InvalidURL as exc:
        reason, result = str(exc), None
    if result is None:
        assert reason, "InvalidURL without a reason"
        return
    assert isinstance(result, str)
    assert result.isascii(), result
    assert _CANON_RE.fullmatch(result), result  # no whitespace or controls
    assert result.startswith(("http://", "https://")), result
    assert "#" not in result, result
    assert normalize_url(result) == result, (text, result)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.text())
@example("http://example.com/%7e")
@example("HTTP://EXAMPLE.COM:80/a/../b?x#y")
@example("http://ex\udcffample.com/")
def test_normalize_url_any_text(text: str) -> None:
    _check_normalized(text)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.one_of(url_like, mutated_urls))
def test_normalize_url_url_like(text: str) -> None:
    _check_normalized(text)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.one_of(url_like, mutated_urls), st.integers(1, 60))
def test_normalize_url_max_length(text: str, max_length: int) -> None:
    try:
        result = normalize_url(text, max_length)
    except InvalidURL:
        return
    assert len(result) <= max_length
    assert normalize_url(result, max_length) == result


def _outcome(text: str) -> str | None:
    """The normalised URL, or ``None`` for an invalid one."""
    try:
        return normalize_url(text)
    except InvalidURL:
        return None


# URLs the fast path (an already-canonical ASCII URL) accepts, and near misses.
fast_candidates = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}://{host}{port}{path}{query}",
    st.sampled_from(["http", "https"]),
    st.one_of(st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,80}[a-z0-9]", fullmatch=True), hosts),
    st.one_of(st.just(""), st.builds(lambda n: f":{n}", st.integers(0, 70000))),
    st.one_of(
        st.just(""), st.from_regex(r"/[A-Za-z0-9\-_~!$&'()*+,;=:@/.%]{0,20}", fullmatch=True)
    ),
    st.one_of(
        st.just(""), st.from_regex(r"\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]{0,10}", fullmatch=True)
    ),
)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.one_of(fast_candidates, url_like))
def test_normalize_url_fragment_is_irrelevant(text: str) -> None:
    """Appending a fragment changes nothing (it also forces the general path,
    so this compares the fast path against the general one)."""
    assume("#" not in text and text == text.strip())
    assert _outcome(text) == _outcome(text + "#frag")


@pytest.mark.timeout(120)
@SETTINGS
@given(fast_candidates)
def test_normalize_url_scheme_and_host_case_are_irrelevant(text: str) -> None:
    scheme, _, rest = text.partition("://")
    host = re.match(r"[^/?#]*", rest).group(0)  # type: ignore[union-attr]
    shouted = scheme.upper() + "://" + host.upper() + rest[len(host) :]
    assert _outcome(text) == _outcome(shouted), shouted


# -- inputs.iter_lines --------------------------------------------------------

line_bytes = st.one_of(
    st.binary(max_size=20),
    st.sampled_from(
        [
            b"\xef\xbb\xbf",
            b"#",
            b"# comment",
            b'"',
            b'""',
            b'" "',
            b'"#x"',
            b'" # "',
            b"\r",
            b"\n",
            b"\r\n",
            b"\x0b",
            b"\x0c",
            b"\x1c",
            b"\x85",
            b"\xc2\x85",  # NEL: str.strip() strips it
            b"\xe2\x80\xa8",  # LINE SEPARATOR
            b"\xa0",
            b"\xc2\xa0",
            b"\xff",
            b"http://example.com/",
            b"  ",
            b"\t",
        ]
    ),
)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.one_of(st.binary(), st.lists(line_bytes, max_size=30).map(b"".join)))
@example(b'"\xc2\x85"\n')
@example(b"\xef\xbb\xbf# BOM then comment\n")
def test_iter_lines_any_bytes(data: bytes) -> None:
    lines = list(iter_lines(io.BytesIO(data)))
    n_lines = len(io.BytesIO(data).readlines())
    previous = 0
    for lineno, text in lines:
        assert isinstance(lineno, int)
        assert previous < lineno <= n_lines
        previous = lineno
        assert isinstance(text, str)
        assert text, (data, lines)
        assert text == text.strip(), (data, lines)
        assert not text.startswith("#"), (data, lines)


# -- title.extract_title -----------------------------------------------------

html_pieces = st.one_of(
    st.sampled_from(
        [
            "<title>",
            "</title>",
            "<TITLE>",
            "</TiTlE >",
            "<title a='>'>",
            "</title",
            "<svg>",
            "</svg>",
            "<math>",
            "</math>",
            "<foreignObject>",
            "<!--",
            "-->",
            "<!-- </title> -->",
            "<script>",
            "</script>",
            "<style>",
            "</style>",
            "<textarea>",
            "<template>",
            "<noscript>",
            "<plaintext>",
            "<![CDATA[",
            "]]>",
            "<head>",
            "<body>",
            "<html>",
            "<!DOCTYPE html>",
            "<p>",
            "<b>",
            "&amp;",
            "&lt;",
            "&#0;",
            "&#x0;",
            "&#x202E;",
            "&#x85;",
            "&#128;",
            "&#xD800;",
            "&#x110000;",
            "&nbsp;",
            "&",
            "<",
            ">",
            "\x00",
            "\x01",
            "\x1b[31m",
            "\x7f",
            "\x85",
            "\x9b",
            "\u202e",
            "\u202a",
            "\u2066",
            "\u2069",
            "\u200e",
            "\u2028",
            "\u2029",
            "\ufeff",
            "\ud800",
            "\udcff",
            "\r",
            "\n",
            "\t",
            "\x0b",
            "\x0c",
            " ",
            "\u00a0",
            "\u3000",
            "e\u0301",
            "\U0001f600",
            "Title",
        ]
    ),
    st.text(max_size=10),
)
html_ish = st.lists(html_pieces, max_size=40).map("".join)
max_lengths = st.integers(1, 50)

_BAD_TITLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\n\r\t]")


def _check_title(html: str, max_length: int) -> None:
    result = extract_title(html, max_length)
    assert isinstance(result, str)
    assert not _BAD_TITLE_RE.search(result), (html, result)
    assert result == result.strip(" "), (html, result)
    assert result == result.strip(), (html, result)
    assert len(result) <= max_length, (html, max_length, result)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.text(), max_lengths)
def test_extract_title_any_text(html: str, max_length: int) -> None:
    _check_title(html, max_length)


@pytest.mark.timeout(120)
@SETTINGS
@given(html_ish, max_lengths)
@example("<title>a\u202eb</title>", 5)
@example("<title>&#x202E;x&#0;y</title>", 50)
@example("<svg><title>no</title></svg><title>yes</title>", 50)
@example("<title>" + "x" * 100 + "</title>", 1)
def test_extract_title_html_ish(html: str, max_length: int) -> None:
    _check_title(html, max_length)


@pytest.mark.timeout(120)
@SETTINGS
@given(html_ish)
def test_extract_title_default_length(html: str) -> None:
    result = extract_title(html)
    assert not _BAD_TITLE_RE.search(result)
    assert result == result.strip()
    assert len(result) <= MAX_TITLE_LENGTH


def _whole_document_title(html: str) -> str:
    """What the module docstring promises: the title of the whole document."""
    title = _first_title(html) if re.search("<title", html, re.IGNORECASE) else None
    return clean_text(unicodedata.normalize("NFC", title)) if title else ""


@pytest.mark.timeout(120)
@SETTINGS
@given(html_ish)
@example("<svg><title>no</title></svg><!-- <title>x</title> --><title>yes</title>")
def test_extract_title_prefix_parse_equals_whole_parse(html: str) -> None:
    assert extract_title(html) == _whole_document_title(html)


@pytest.mark.timeout(120)
@SETTINGS
@given(
    html_ish,
    st.sampled_from(["utf-8", "cp1252", "iso-8859-2", "ascii", "utf-16-le", "shift_jis"]),
    st.sampled_from([b"", b"\xef\xbb\xbf"]),
    max_lengths,
)
@example("<!-- </title> --><title>x</title>", "utf-8", b"", 50)
def test_extract_title_bytes_agrees_with_the_decoded_page(
    html: str, encoding: str, bom: bytes, max_length: int
) -> None:
    """The spider's bytes fast path gives what decoding the whole page (as
    Scrapy's ``response.text`` does) and extracting gives, or declines."""
    body = bom + html.encode(encoding, "replace")
    fast = extract_title_bytes(body, encoding, max_length)
    if fast is not None:
        whole = body.decode(encoding, "replace")  # no BOM when fast is not None
        assert fast == extract_title(whole, max_length)


# -- exporters.SafeCsvItemExporter ---------------------------------------------

_INT_FIELDS = frozenset({"status", "length", "attempts", "elapsed_ms", "redirects", "line"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
cell_text = st.one_of(
    # Any text but NUL (the csv module refuses it) and lone surrogates (not
    # UTF-8: the exporter raises UnicodeEncodeError; the spider never puts
    # them in a row, clean_text removes them).
    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",))),
    st.lists(
        st.sampled_from(
            ["=", "+", "-", "@", "\t", "\r", "\n", "\r\n", '"', ",", "'", " ", "a", "é"]
        ),
        max_size=6,
    ).map("".join),
)
rows = st.fixed_dictionaries(
    {
        name: (
            st.one_of(st.none(), st.integers())
            if name in _INT_FIELDS
            else st.one_of(st.none(), cell_text)
            if name == "final_url"
            else cell_text
        )
        for name in FIELDS
    }
)


class _KeptBytesIO(io.BytesIO):
    """A BytesIO whose bytes survive ``close()`` (as ``kept``)."""

    kept = b""

    def close(self) -> None:
        if not self.closed:
            self.kept = self.getvalue()
        super().close()

    def data(self) -> bytes:
        return self.kept if self.closed else self.getvalue()


def _export_csv(items: list[PageItem]) -> bytes:
    stream = _KeptBytesIO()
    exporter = SafeCsvItemExporter(stream, fields_to_export=list(FIELDS))
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return stream.data()


@pytest.mark.timeout(120)
@SETTINGS
@given(cell_text)
def test_neutralise(text: str) -> None:
    result = neutralise(text)
    if text.startswith(_FORMULA_STARTS):
        assert result == "'" + text
    else:
        assert result == text
    assert not result.startswith(_FORMULA_STARTS)


@pytest.mark.timeout(120)
@SETTINGS
@given(st.lists(rows, max_size=5))
@example([{name: 7 if name in _INT_FIELDS else "=1+1\r\n-2" for name in FIELDS}])
def test_safe_csv_round_trip(items: list[PageItem]) -> None:
    """Exact round trip: every text cell (any text but NUL, including CR, LF,
    CRLF, quotes and commas) reads back as ``neutralise(original)``; ``None``
    reads back as ``""``; an int as ``str(int)`` (a negative one does start
    with ``-``: numbers are not text and are not prefixed)."""
    data = _export_csv(items)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    read = list(reader)
    assert len(read) == len(items)
    if items:
        assert reader.fieldnames == list(FIELDS)
    for item, back in zip(items, read, strict=True):
        assert list(back) == list(FIELDS)
        for name in FIELDS:
            value, cell = item[name], back[name]  # type: ignore[literal-required]
            if value is None:
                assert cell == ""
            elif isinstance(value, int):
                assert cell == str(value)
            else:
                assert cell == neutralise(value), name
                assert cell.startswith("'") or not cell.startswith(_FORMULA_STARTS)
