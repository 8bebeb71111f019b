import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scraper_project.backoff import backoff_delay, parse_retry_after

# (retry, base, cap, rand) -> expected delay
BACKOFF = [
    (1, 1.0, 30.0, 0.0, 0.0),
    (1, 1.0, 30.0, 0.5, 0.5),
    (2, 1.0, 30.0, 0.5, 1.0),
    (3, 1.0, 30.0, 0.5, 2.0),
    (4, 0.5, 30.0, 0.999, 3.996),
    (6, 1.0, 30.0, 0.5, 15.0),
    (7, 1.0, 30.0, 0.5, 15.0),  # capped at 30 * rand
    (100, 1.0, 30.0, 1.0, 30.0),  # no overflow for huge retry numbers
    (3, 0.0, 30.0, 0.7, 0.0),
]


@pytest.mark.parametrize(("retry", "base", "cap", "rand", "expected"), BACKOFF)
def test_backoff_delay(retry: int, base: float, cap: float, rand: float, expected: float) -> None:
    assert backoff_delay(retry, base, cap, lambda: rand) == pytest.approx(expected)


def test_backoff_ceiling_grows_exponentially_until_cap() -> None:
    ceilings = [backoff_delay(n, 0.25, 10.0, lambda: 1.0) for n in range(1, 9)]
    assert ceilings == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_rejects_retry_zero() -> None:
    with pytest.raises(ValueError, match="retry must be >= 1"):
        backoff_delay(0, 1.0, 1.0, lambda: 0.5)


NOW = 1_445_412_470.0  # Wed, 21 Oct 2015 07:27:50 GMT

RETRY_AFTER = [
    (b"3", 3.0),
    ("120", 120.0),
    (b" 7 ", 7.0),
    (b"0", 0.0),
    (b"Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
    (b"-5", None),
    (b"1.5", None),
    (b"soon", None),
    (b"", None),
    (None, None),
    (b"Wed, 21 Oct 2015 07:28:00", None),  # no zone
    # The other two HTTP-date formats (RFC 9110 5.6.7), GMT by definition.
    (b"Wed Oct 21 07:28:00 2015", 10.0),  # asctime
    (b"Wed Oct  1 07:28:00 2015", 0.0),  # asctime, one-digit day (in the past)
    ("Thu Oct 22 07:27:50 2015", 86400.0),
    (b"Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # RFC 850
    (b"Wednesday, 21-Oct-65 07:28:00 GMT", 1_577_923_210.0),  # 2065: 50 years ahead at most
    (b"Monday, 21-Oct-66 07:28:00 GMT", 0.0),  # more than 50 years ahead: 1966
    # Not delay-seconds: digits that are not ASCII (str.isdigit() says yes).
    ("\u00b2", None),
    ("\u0663", None),  # ARABIC-INDIC DIGIT THREE
    ("\uff13", None),  # FULLWIDTH DIGIT THREE
    (b"\xb2", None),  # latin-1 superscript two
    (b"Wed Oct 32 07:28:00 2015", None),  # no such day
    (b"Wed Foo 21 07:28:00 2015", None),
    (b"Wed, 21 Oct 99999 07:28:00 GMT", None),  # year out of range
    (b"99999999999999999999", 1e20),
]


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER)
def test_parse_retry_after(value: bytes | str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.from_regex(r"\A[0-9\s\u00b2\u0660-\u0669]{0,6}\Z"),
        st.datetimes().map(lambda d: d.strftime("%a %b %d %H:%M:%S %Y")),
        st.datetimes().map(lambda d: d.strftime("%A, %d-%b-%y %H:%M:%S GMT")),
        st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    )
)
def test_parse_retry_after_never_raises(value: str | bytes) -> None:
    """Any header value: a number of seconds >= 0, or None; never an
    exception (it escaped process_response before)."""
    delay = parse_retry_after(value, NOW)
    assert delay is None or (delay >= 0 and math.isfinite(delay))
