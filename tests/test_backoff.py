import pytest

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
]


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER)
def test_parse_retry_after(value: bytes | str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
