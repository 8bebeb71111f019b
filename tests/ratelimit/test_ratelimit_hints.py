"""read_hints: what the RateLimit fields of each draft and X-RateLimit-* say."""

from __future__ import annotations

import pytest

from scraper_project.ratelimit import Hints, read_hints

NOW = 1_800_000_000.0  # a Unix time


def hints(**fields: str) -> Hints | None:
    values = {name.replace("_", "-").lower(): value.encode() for name, value in fields.items()}
    return read_hints(lambda name: values.get(name.lower()), NOW)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # the current draft (structured fields)
        ({"RateLimit_Policy": '"default";q=100;w=10'}, Hints(10.0, None)),
        (
            {"RateLimit_Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400'},
            Hints(1000 / 86400, None),
        ),
        ({"RateLimit_Policy": '"bytes";q=65535;qu="content-bytes";w=10'}, None),
        ({"RateLimit_Policy": '"p";q=5;w=1', "RateLimit": '"p";r=0;t=30'}, Hints(5.0, 30.0)),
        ({"RateLimit": '"p";r=3;t=30'}, None),
        # draft -07
        (
            {"RateLimit_Policy": "10;w=1", "RateLimit": "limit=10, remaining=0, reset=4"},
            Hints(10.0, 4.0),
        ),
        # drafts -00 to -06, with a policy in the limit field
        (
            {"RateLimit_Limit": "10, 10;w=1, 50;w=60", "RateLimit_Remaining": "5"},
            Hints(50 / 60, None),
        ),
        # X-RateLimit-*: the first request of a window tells its length
        (
            {"X_RateLimit_Limit": "5", "X_RateLimit_Remaining": "4", "X_RateLimit_Reset": "1"},
            Hints(5.0, None),
        ),
        (
            {"X_RateLimit_Limit": "5", "X_RateLimit_Remaining": "2", "X_RateLimit_Reset": "1"},
            None,
        ),
        # nothing left: a pause, the reset given in seconds or as a Unix time
        (
            {"X_RateLimit_Limit": "5000", "X_RateLimit_Remaining": "0", "X_RateLimit_Reset": "20"},
            Hints(None, 20.0),
        ),
        (
            {
                "X_RateLimit_Limit": "5000",
                "X_RateLimit_Remaining": "0",
                "X_RateLimit_Reset": str(int(NOW) + 90),
            },
            Hints(None, 90.0),
        ),
    ],
)
def test_what_the_fields_say(fields: dict[str, str], expected: Hints | None) -> None:
    assert hints(**fields) == expected


def test_no_fields_no_hints() -> None:
    assert hints() is None
    assert hints(Content_Type="text/html") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"RateLimit_Policy": "not a list ("},
        {"RateLimit_Policy": '"p";q=-1;w=10'},
        {"RateLimit_Policy": '"p";q=10;w=0'},
        {"RateLimit_Policy": '"p";q=10.5;w=1'},
        {"RateLimit": '"p";r=zero;t=1'},
        {"X_RateLimit_Limit": "lots", "X_RateLimit_Remaining": "0"},
    ],
)
def test_malformed_fields_are_ignored(fields: dict[str, str]) -> None:
    assert hints(**fields) is None
