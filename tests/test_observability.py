"""Unit tests of scraper_project.observability: no crawl, no sleeping."""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.exceptions import UsageError
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scraper_project.items import new_item
from scraper_project.observability.addon import DebugAddon
from scraper_project.observability.config import ObservabilityConfig, env_flag, parse_bool
from scraper_project.observability.extension import (
    SummaryExtension,
    format_bytes,
    redact_uri,
    stats_to_json,
)
from scraper_project.observability.jsonlog import JsonLogFormatter, install, json_enabled
from scraper_project.observability.latency import LatencyReservoir, percentile
from scraper_project.observability.pipeline import ObservabilityPipeline, log_level_enabled
from scraper_project.observability.progress import count_url_lines
from scraper_project.observability.prometheus import PrometheusExtension, StatsBridge, metric_name

# -- config ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_config_defaults_and_values() -> None:
    assert ObservabilityConfig.from_settings(Settings()) == ObservabilityConfig()
    config = ObservabilityConfig.from_settings(
        Settings(
            {
                "PAGES_LOG_JSON": "1",
                "PAGES_URL_LOG_LEVEL": "info",
                "PAGES_LATENCY_SAMPLES": "50",
                "PAGES_PROMETHEUS_ENABLED": "true",
                "PAGES_PROMETHEUS_PORT": "9100",
                "PAGES_PROGRESS": "False",
                "PAGES_PROGRESS_INTERVAL": "2.5",
                "PAGES_DEBUG": True,
            }
        )
    )
    assert config.log_json
    assert config.url_log_level == logging.INFO
    assert config.latency_samples == 50
    assert config.prometheus_enabled
    assert config.prometheus_port == 9100
    assert config.progress == "off"
    assert config.progress_interval == 2.5
    assert config.debug
    off = ObservabilityConfig.from_settings(Settings({"PAGES_URL_LOG_LEVEL": "OFF"}))
    assert off.url_log_level is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAGES_LOG_JSON", "maybe"),
        ("PAGES_URL_LOG_LEVEL", "LOUD"),
        ("PAGES_LATENCY_SAMPLES", "0"),
        ("PAGES_PROMETHEUS_PORT", "70000"),
        ("PAGES_PROGRESS", "sometimes"),
        ("PAGES_PROGRESS_INTERVAL", "-1"),
        ("PAGES_DEBUG", "2x"),
    ],
)
def test_config_rejects_bad_values(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        ObservabilityConfig.from_settings(Settings({name: value}))


@pytest.mark.timeout(10)
def test_env_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBS_TEST_FLAG", raising=False)
    assert env_flag("OBS_TEST_FLAG") is False
    for raw, expected in [("1", True), ("yes", True), ("ON", True), ("0", False), ("", False)]:
        monkeypatch.setenv("OBS_TEST_FLAG", raw)
        assert env_flag("OBS_TEST_FLAG") is expected
    monkeypatch.setenv("OBS_TEST_FLAG", "perhaps")
    assert env_flag("OBS_TEST_FLAG") == "perhaps"
    with pytest.raises(ValueError, match="perhaps"):
        parse_bool("perhaps")


# -- JSON logs ---------------------------------------------------------------


def _record(msg: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("scrapy.test", logging.ERROR, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


@pytest.mark.timeout(10)
def test_json_formatter_one_line_with_fields_and_traceback() -> None:
    formatter = JsonLogFormatter()
    spider = Spider(name="pages")
    line = formatter.format(
        _record(
            "Dumping stats:\n%(a)s", {"a": "{'x': 1,\n 'y': 2}"}, exc=True, url="u", spider=spider
        )
    )
    assert "\n" not in line
    data = json.loads(line)
    assert list(data)[:4] == ["timestamp", "level", "logger", "message"]
    assert data["level"] == "ERROR"
    assert data["logger"] == "scrapy.test"
    assert data["message"] == "Dumping stats:\n{'x': 1,\n 'y': 2}"
    assert data["url"] == "u"
    assert data["spider"] == "pages"
    assert "Traceback" in data["exc_info"]
    assert "ValueError: boom" in data["exc_info"]
    assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None


@pytest.mark.timeout(10)
def test_handler_hook_only_with_the_setting() -> None:
    import scrapy.utils.log as scrapy_log

    install()
    install()  # idempotent
    assert getattr(scrapy_log._get_handler, "__wrapped__", None) is not None
    assert not getattr(scrapy_log._get_handler.__wrapped__, "__wrapped__", None)  # type: ignore[attr-defined]
    plain = scrapy_log._get_handler(Settings({"LOG_ENABLED": False}))
    assert not isinstance(plain.formatter, JsonLogFormatter)
    handler = scrapy_log._get_handler(Settings({"LOG_ENABLED": False, "PAGES_LOG_JSON": "true"}))
    assert isinstance(handler.formatter, JsonLogFormatter)
    assert not json_enabled(Settings({"PAGES_LOG_JSON": "garbage"}))


# -- latency -----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_reservoir_exact_below_capacity() -> None:
    reservoir = LatencyReservoir(100)
    for value in range(1, 51):
        reservoir.add(value)
    assert reservoir.count == 50
    assert reservoir.maximum == 50
    assert reservoir.percentiles(50, 90, 99, 100) == [25, 45, 50, 50]
    assert LatencyReservoir(5).percentiles(50) == []


@pytest.mark.timeout(30)
def test_reservoir_bounded_and_uniform() -> None:
    reservoir = LatencyReservoir(2_000, rng=random.Random(7))
    for value in range(200_000):
        reservoir.add(value)
    assert len(reservoir.samples) == 2_000
    assert reservoir.samples.itemsize == 4
    assert reservoir.maximum == 199_999
    p50, p90, p99 = reservoir.percentiles(50, 90, 99)
    # A uniform sample of 0..199999: within a few percent of the truth.
    assert abs(p50 - 100_000) < 8_000
    assert abs(p90 - 180_000) < 6_000
    assert abs(p99 - 198_000) < 2_000


@pytest.mark.timeout(10)
def test_percentile_nearest_rank() -> None:
    assert percentile([1.0], 99) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    with pytest.raises(ValueError, match="capacity"):
        LatencyReservoir(0)


# -- the pipeline ---------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _row(status: int | None, elapsed: int | None, length: int | None, error: str = "") -> Any:
    row = new_item("http://a.test/", 1, error)
    row.update(status=status, elapsed_ms=elapsed, length=length, attempts=1)
    return row


@pytest.mark.timeout(10)
def test_pipeline_metrics(caplog: pytest.LogCaptureFixture) -> None:
    crawler = get_crawler(Spider, {"PAGES_URL_LOG_LEVEL": "OFF"})
    assert crawler.stats is not None
    clock = FakeClock()
    pipeline = ObservabilityPipeline(crawler.stats, LatencyReservoir(10), None, clock=clock)
    pipeline.open_spider()
    assert not pipeline.log_urls
    with caplog.at_level(logging.DEBUG):
        for ms in (10, 20, 30, 40):
            pipeline.process_item(_row(200, ms, 1000))
        pipeline.process_item(_row(None, 500, None, "timeout: x"))
        pipeline.count(_row(None, None, None, "not_attempted: x"))
    assert not caplog.records
    clock.now += 2.5
    pipeline.close_spider()
    stats = crawler.stats.get_stats()
    assert stats["report/bytes"] == 4000
    assert stats["report/latency_ms/p50"] == 30
    assert stats["report/latency_ms/p90"] == 500
    assert stats["report/latency_ms/max"] == 500
    assert stats["report/pages_per_second"] == 2.0  # 5 fetched rows in 2.5 s


@pytest.mark.timeout(10)
def test_pipeline_url_events(caplog: pytest.LogCaptureFixture) -> None:
    from scrapy import Request
    from scrapy.http import HtmlResponse

    crawler = get_crawler(Spider, {})
    assert crawler.stats is not None
    pipeline = ObservabilityPipeline(crawler.stats, LatencyReservoir(10), logging.INFO)
    pipeline.crawler = crawler
    with caplog.at_level(logging.INFO):
        pipeline.open_spider()
        assert pipeline.log_urls
        ok, failed = _row(200, 12, 300), _row(None, 7, None, "dns_error: no")
        pipeline.process_item(ok)  # logged when scraped, with its response
        pipeline.process_item(failed)
        response = HtmlResponse(
            "http://a.test/", request=Request("http://a.test/", meta={"pages_ratelimit_wait": 1.5})
        )
        pipeline.item_scraped(ok, response)
        pipeline.item_scraped(failed, None)
    events = [r for r in caplog.records if getattr(r, "event", None) == "url_finished"]
    assert len(events) == 2
    by_class = {r.error_class: r for r in events}  # type: ignore[attr-defined]
    assert by_class["dns_error"].status is None  # type: ignore[attr-defined]
    assert by_class["dns_error"].ratelimit_wait is None  # type: ignore[attr-defined]
    assert by_class[""].status == 200  # type: ignore[attr-defined]
    assert by_class[""].ratelimit_wait == 1.5  # type: ignore[attr-defined]
    assert by_class[""].elapsed_ms == 12  # type: ignore[attr-defined]
    assert by_class[""].length == 300  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_log_level_enabled_follows_handlers() -> None:
    root = logging.Logger("obs-root", logging.NOTSET)  # a detached hierarchy
    child = logging.Logger("obs-root.child")
    child.parent = root
    handler = logging.NullHandler()
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    assert child.isEnabledFor(logging.DEBUG)
    assert not log_level_enabled(child, logging.DEBUG)
    assert log_level_enabled(child, logging.INFO)
    quiet = logging.Logger("obs-root.quiet", logging.WARNING)
    quiet.parent = root
    assert not log_level_enabled(quiet, logging.INFO)


# -- summary, stats file -----------------------------------------------------------


@pytest.mark.timeout(10)
def test_summary_lines() -> None:
    crawler = get_crawler(Spider, {})
    assert crawler.stats is not None
    ext = SummaryExtension(crawler, crawler.stats, "")
    ext.report_uris = ["report.csv"]
    stats = {
        "start_time": datetime.now(tz=UTC),
        "report/rows": 10,
        "report/ok": 7,
        "report/bytes": 2048,
        "report/status/2xx": 6,
        "report/status/4xx": 1,
        "report/error/timeout": 1,
        "report/error/dns_error": 2,
        "report/latency_ms/p50": 5,
        "report/latency_ms/p90": 9,
        "report/latency_ms/p99": 12,
        "report/latency_ms/max": 40,
        "report/pages_per_second": 3.5,
    }
    text = "\n".join(message % args for message, args in ext.summary(stats, "finished"))
    assert "10 rows" in text
    assert "7 with an HTTP response, 3 with an error, 2.0 KiB" in text
    assert "by status: 2xx: 6, 4xx: 1" in text
    assert "by error: dns_error: 2, timeout: 1" in text
    assert "p50 5 ms, p90 9 ms, p99 12 ms, max 40 ms; 3.5 pages/s" in text
    assert "report written to report.csv" in text


@pytest.mark.timeout(10)
def test_stats_json_and_helpers() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    data = json.loads(stats_to_json({"start_time": when, "a/b": 1, "x": {1, 2}}))
    assert data == {"a/b": 1, "start_time": "2026-01-02T03:04:05+00:00", "x": [1, 2]}
    assert redact_uri("ftp://user:secret@host/x.csv") == "ftp://user:***@host/x.csv"
    assert redact_uri("report.csv") == "report.csv"
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024 * 1024) == "3.0 MiB"


@pytest.mark.timeout(10)
def test_stats_file_name_and_content(tmp_path: Path) -> None:
    crawler = get_crawler(Spider, {})
    assert crawler.stats is not None
    crawler.spider = Spider(name="pages", _job="job1")
    crawler.stats.set_value("start_time", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    crawler.stats.set_value("report/rows", 3)
    ext = SummaryExtension(
        crawler, crawler.stats, str(tmp_path / "%(name)s-%(_job)s-%(time)s.json")
    )
    ext.engine_stopped()
    written = tmp_path / "pages-job1-2026-01-02T03-04-05.json"
    data = json.loads(written.read_text())
    assert data["report/rows"] == 3
    assert data["start_time"] == "2026-01-02T03:04:05+00:00"
    assert [p.name for p in tmp_path.iterdir()] == [written.name]


# -- progress ------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_count_url_lines(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(b"http://a/\n\n  # comment\r\nhttp://b/\r\n \t\n#x\nhttp://c/")
    assert count_url_lines(path) == 3
    path.write_bytes(b"".join(b"http://h/%d\n\n#c\n" % i for i in range(200_000)))
    assert count_url_lines(path) == 200_000
    stop = threading.Event()
    stop.set()
    assert count_url_lines(path, stop) is None
    path.write_bytes(b"")
    assert count_url_lines(path) == 0


# -- Prometheus ------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_metric_names_and_types() -> None:
    crawler = get_crawler(Spider, {})
    assert crawler.stats is not None
    crawler.stats.set_value("report/status/2xx", 4)
    crawler.stats.set_value("memusage/max", 1000)
    crawler.stats.set_value("ratelimit/wait_seconds", 1.5)
    crawler.stats.set_value("start_time", datetime(2026, 1, 1, tzinfo=UTC))
    crawler.stats.set_value("finish_reason", "finished")
    metrics = {m.name: m for m in StatsBridge(crawler.stats).collect()}
    assert metrics["scrapy_report_status_2xx"].type == "counter"
    assert metrics["scrapy_report_status_2xx"].samples[0].value == 4
    assert metrics["scrapy_memusage_max"].type == "gauge"
    assert metrics["scrapy_ratelimit_wait_seconds"].type == "gauge"
    assert metrics["scrapy_start_time_timestamp_seconds"].samples[0].value == 1767225600.0
    assert not any("finish_reason" in name for name in metrics)
    assert metric_name("downloader/response_status_count/200") == (
        "scrapy_downloader_response_status_count_200"
    )


def _scrape(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.timeout(20)
def test_two_endpoints_in_one_process_do_not_collide() -> None:
    """Two crawls' endpoints at once: each registry holds its own crawl's stats."""
    endpoints = []
    try:
        for rows in (3, 5):
            crawler = get_crawler(Spider, {})
            assert crawler.stats is not None
            crawler.stats.set_value("report/rows", rows)
            ext = PrometheusExtension(crawler.stats, "127.0.0.1", 0)
            endpoints.append(ext)
            ext.start()
        first, second = (_scrape(ext.url or "") for ext in endpoints)
        assert "scrapy_report_rows_total 3.0" in first
        assert "scrapy_report_rows_total 5.0" in second
    finally:
        for ext in endpoints:
            ext.stop()
    assert all(ext.server is None for ext in endpoints)


# -- PAGES_DEBUG -----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_debug_addon() -> None:
    settings = Settings({"PAGES_DEBUG": "1", "TELNETCONSOLE_ENABLED": False})
    settings.set("TELNETCONSOLE_HOST", "0.0.0.0", priority="project")
    DebugAddon().update_settings(settings)
    assert settings.getbool("MEMDEBUG_ENABLED")
    assert settings.getbool("TELNETCONSOLE_ENABLED")
    assert settings["TELNETCONSOLE_HOST"] == "127.0.0.1"
    # A -s value wins.
    explicit = Settings({"PAGES_DEBUG": True})
    explicit.set("TELNETCONSOLE_ENABLED", False, priority="cmdline")
    DebugAddon().update_settings(explicit)
    assert not explicit.getbool("TELNETCONSOLE_ENABLED")
    assert explicit.getbool("MEMDEBUG_ENABLED")
    untouched = Settings({"PAGES_DEBUG": False})
    DebugAddon().update_settings(untouched)
    assert not untouched.getbool("MEMDEBUG_ENABLED")
