"""The User-Agent pool: the same as fake-useragent's own filtering, weights kept."""

from __future__ import annotations

import fake_useragent
import pytest
from scrapy.settings import Settings

from scraper_project.middlewares.useragent import WeightedUserAgentProvider, stream_pool


@pytest.mark.parametrize("browsers", [None, ["Chrome", "Firefox"], ["Safari"]])
def test_streamed_pool_equals_fake_useragent_filtering(browsers: list[str] | None) -> None:
    pool, weights = stream_pool(browsers)
    expected = fake_useragent.UserAgent()._filter_useragents(browsers)
    assert pool == [entry["useragent"] for entry in expected]
    assert weights == [max(float(entry["percent"]), 1e-6) for entry in expected]


def test_provider_draws_from_the_pool_and_falls_back() -> None:
    provider = WeightedUserAgentProvider(Settings({"FAKE_USERAGENT_BROWSERS": ["Firefox"]}))
    pool = set(stream_pool(["Firefox"])[0])
    drawn = {provider.get_random_ua() for _ in range(200)}
    assert drawn <= pool
    assert len(drawn) > 5
    nothing = WeightedUserAgentProvider(
        Settings({"FAKE_USERAGENT_BROWSERS": ["NoSuchBrowser"], "FAKEUSERAGENT_FALLBACK": "fb/1"})
    )
    assert nothing.get_random_ua() == "fb/1"
