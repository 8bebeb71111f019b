import pytest

from scraper_project.urls import InvalidURL, normalize_url

NORMALISED = [
    # (input, expected)
    ("http://example.com", "http://example.com/"),
    ("HTTP://Example.COM/Path", "http://example.com/Path"),
    ("http://example.com:80/", "http://example.com/"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:80/a", "https://example.com:80/a"),
    ("http://example.com:8080", "http://example.com:8080/"),
    ("http://example.com/#frag", "http://example.com/"),
    ("http://example.com/a?q=1#frag", "http://example.com/a?q=1"),
    ("http://example.com/%7Euser/%41%2f", "http://example.com/~user/A%2F"),
    ("http://example.com/%e2%82%ac", "http://example.com/%E2%82%AC"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/€", "http://example.com/%E2%82%AC"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/../../x", "http://example.com/x"),
    ("http://example.com/a/..", "http://example.com/"),
    ("http://example.com/?b=2&a=1", "http://example.com/?b=2&a=1"),
    ("http://bücher.de/", "http://xn--bcher-kva.de/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
    ("http://host:/x", "http://host/x"),
    ("http://example.com/100%", "http://example.com/100%25"),
    ("http://example.com/caf\udce9", "http://example.com/caf%E9"),
    ("http://user:pw@example.com/", "http://***@example.com/"),
    ("https://token@example.com:8443/a", "https://***@example.com:8443/a"),
    ("http://example.com./", "http://example.com./"),
    ("http://example.com/?q='x'", "http://example.com/?q=%27x%27"),
    ("HTTP://EXAMPLE.com/?q='x'", "http://example.com/?q=%27x%27"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalise(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalise_is_idempotent(raw: str, expected: str) -> None:
    assert normalize_url(expected) == expected


EQUIVALENT = [
    ("http://EXAMPLE.com/a", "http://example.com:80/a#top"),
    ("http://example.com/~a", "http://example.com/%7Ea"),
    ("http://example.com/%3a", "http://example.com/%3A"),
    ("https://example.com", "https://example.com:443/"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent_urls_share_a_key(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)


def test_query_order_is_significant() -> None:
    assert normalize_url("http://e.com/?a=1&b=2") != normalize_url("http://e.com/?b=2&a=1")


INVALID = [
    ("ftp://example.com/x", "unsupported scheme 'ftp'"),
    ("file:///etc/passwd", "unsupported scheme 'file'"),
    ("data:text/html,hi", "unsupported scheme 'data'"),
    ("javascript:alert(1)", "unsupported scheme 'javascript'"),
    ("mailto:a@example.com", "unsupported scheme 'mailto'"),
    ("/relative/path", "relative URL"),
    ("./x", "relative URL"),
    ("//example.com/x", "scheme-relative"),
    ("example.com/page", "missing scheme (did you mean http://example.com/?)"),
    ("not a url", "not a URL"),
    ("garbage", "not a URL"),
    ("http://", "missing host"),
    ("http:example.com", "missing host"),
    ("http://:80/", "missing host"),
    ("http://host:99999/", "invalid port '99999'"),
    ("http://host:abc/", "invalid port 'abc'"),
    ("http://host:0/", "invalid port 0"),
    ("http://a b/", "invalid host"),
    ("http://a..b/", "invalid host"),
    ("http://256.1.1.1/", "invalid IPv4 address"),
    ("http://[zz]/", "invalid IPv6 address"),
    ("http://[v1.example.com]/", "invalid IPv6 address"),
    ("http://" + "a" * 64 + ".com/", "invalid host"),
    ("http://ex\x00ample.com/", "control characters"),
    ("http://example.com\\path", "backslash"),
    ("http://exa\udcffmple.com/", "invalid host"),
]


@pytest.mark.parametrize(("raw", "reason"), INVALID)
def test_invalid(raw: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as info:
        normalize_url(raw)
    assert reason in str(info.value)


def test_length_limit() -> None:
    url = "http://example.com/" + "a" * 3000
    with pytest.raises(InvalidURL, match="longer than 2083"):
        normalize_url(url)
    assert normalize_url(url, max_length=0) == url


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("http://***@example.com/a/@b", "http://example.com/a/@b"),
        ("http://example.com/***@x", "http://example.com/***@x"),
        ("http://example.com", "http://example.com"),
    ],
)
def test_request_url_drops_redacted_userinfo(url: str, fetched: str) -> None:
    from scraper_project.urls import request_url

    assert request_url(url) == fetched
