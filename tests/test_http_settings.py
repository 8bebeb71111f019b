"""FastHTTPDownloadHandler's settings (issue #19): TLS settings checked when
the handler is built, meta["bindaddress"] and DOWNLOADER_CLIENTCONTEXTFACTORY
said to be unsupported, CA certificates loaded once and their failure kept."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from scrapy import Request
from scrapy.exceptions import DownloadFailedError, UsageError
from scrapy.settings import Settings

from scraper_project.errors import classify
from scraper_project.fasthttp import FastHTTPDownloadHandler, TLSSettingsError
from tests.support.aio import in_task
from tests.test_fasthttp import _handler, _ok, _server_tls
from tests.test_fasthttp import capture as capture_fixture

capture = capture_fixture  # the fixture, under its name


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"DOWNLOAD_TLS_MIN_VERSION": "invalid"},
            "Unknown DOWNLOAD_TLS_MIN_VERSION value: invalid (expected TLSv1.0, TLSv1.1, "
            "TLSv1.2 or TLSv1.3)",
        ),
        (
            {"DOWNLOAD_TLS_MAX_VERSION": "TLS1.3"},
            "Unknown DOWNLOAD_TLS_MAX_VERSION value: TLS1.3 (expected",
        ),
        (
            {"DOWNLOADER_CLIENT_TLS_CIPHERS": "NO-SUCH-CIPHER"},
            "Invalid DOWNLOADER_CLIENT_TLS_CIPHERS value: NO-SUCH-CIPHER (",
        ),
        (
            {"DOWNLOAD_TLS_MIN_VERSION": "TLSv1.3", "DOWNLOAD_TLS_MAX_VERSION": "TLSv1.2"},
            "DOWNLOAD_TLS_MIN_VERSION (TLSv1.3) is above DOWNLOAD_TLS_MAX_VERSION (TLSv1.2)",
        ),
    ],
)
def test_bad_tls_settings_fail_when_the_handler_is_built(
    settings: dict[str, Any], message: str
) -> None:
    """Not on the first https request (where it failed every one of them
    with a bare ValueError): at start-up, one line naming the setting."""
    with pytest.raises(TLSSettingsError) as info:
        _handler(settings)
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text
    # What Scrapy's tests expect (ValueError) and what the command line
    # turns into a one-line error with exit code 2 (UsageError).
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, UsageError)
    assert not info.value.print_help
    with pytest.raises(TLSSettingsError, match=r"DOWNLOAD_TLS|DOWNLOADER_CLIENT_TLS"):
        FastHTTPDownloadHandler.check_settings(Settings(settings))


def test_good_tls_settings() -> None:
    for settings in (
        {},
        {"DOWNLOAD_TLS_MIN_VERSION": "TLSv1.2", "DOWNLOAD_TLS_MAX_VERSION": "TLSv1.3"},
        {"DOWNLOAD_TLS_MIN_VERSION": "TLSv1.2", "DOWNLOAD_TLS_MAX_VERSION": "TLSv1.2"},
        {"DOWNLOADER_CLIENT_TLS_CIPHERS": "ECDHE+AESGCM"},
        {"DOWNLOADER_CLIENT_TLS_CIPHERS": None},
    ):
        FastHTTPDownloadHandler.check_settings(Settings(settings))
    context = _handler({"DOWNLOAD_TLS_MIN_VERSION": "TLSv1.3"})._ssl_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE  # as Scrapy: not verified by default


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_ca_certificates_loaded_once_and_a_failure_kept(
    capture: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DOWNLOAD_VERIFY_CERTIFICATES: the CA certificates load on the first
    https request; if that fails, every https request fails as a Scrapy
    exception (tls_error), without trying again each time."""
    context, _ = _server_tls(tmp_path)
    server = await capture(lambda data: _ok(), context)
    handler = _handler({"DOWNLOAD_VERIFY_CERTIFICATES": True})
    calls: list[int] = []

    def broken(*args: Any) -> None:
        calls.append(1)
        raise ssl.SSLError("no CA store")

    monkeypatch.setattr(handler._ssl, "load_default_certs", broken, raising=False)
    try:
        for path in ("/a", "/b"):
            with pytest.raises(
                DownloadFailedError, match="Cannot load the CA certificates"
            ) as info:
                await handler.download_request(Request(f"{server.url}{path}"))
            assert classify(info.value)[0] == "tls_error"
        assert calls == [1]
        assert server.connections == 0
    finally:
        await handler.close()


@pytest.mark.timeout(30)
@pytest_twisted.ensureDeferred
@in_task
async def test_bindaddress_meta_is_said_to_be_ignored(
    capture: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await capture(lambda data: _ok())
    handler = _handler()
    try:
        with caplog.at_level(logging.ERROR, "scraper_project.fasthttp"):
            for _ in range(3):
                request = Request(f"{server.url}/", meta={"bindaddress": ("127.0.0.2", 0)})
                assert (await handler.download_request(request)).status == 200
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        # Scrapy's own wording (its tests look for it), once per handler.
        assert len(messages) == 1
        assert messages[0].startswith(
            "The 'bindaddress' request meta key is not supported by FastHTTPDownloadHandler"
        )
    finally:
        await handler.close()


@pytest.mark.parametrize("set_by_user", [True, False])
def test_client_context_factory_is_said_to_be_ignored(
    set_by_user: bool, caplog: pytest.LogCaptureFixture
) -> None:
    factory = "scrapy.core.downloader.contextfactory.BrowserLikeContextFactory"
    settings = {"DOWNLOADER_CLIENTCONTEXTFACTORY": factory} if set_by_user else {}
    with caplog.at_level(logging.WARNING, "scraper_project.fasthttp"):
        _handler(settings)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if not set_by_user:
        assert warnings == []
        return
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"DOWNLOADER_CLIENTCONTEXTFACTORY ({factory}) is ignored by FastHTTPDownloadHandler"
    )
    assert "DOWNLOAD_VERIFY_CERTIFICATES (False)" in warnings[0]
