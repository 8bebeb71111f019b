"""Scrapy's download-handler conformance suite, for the handlers this project ships.

Not collected by the project's own test run: ``tests/conformance/run.py``
copies this module into the ``tests/`` folder of Scrapy's sdist (for the
installed Scrapy version) and runs it there, next to Scrapy's mockserver and
base test classes, as ``test_downloader_handler_aiohttp.py`` is run in
Scrapy's own tree. Every class declares the documented differences with the
flags Scrapy's base classes define; README's "HTTP client" section lists
them with their reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from tests.utils.bases.download_handlers_http import (
    IDNA_REJECTED_HOSTNAMES,
    TestHttpBase,
    TestHttpProxyBase,
    TestHttpsBase,
    TestHttpsCustomCiphersBase,
    TestHttpsDefaultCiphersBase,
    TestHttpsInvalidDNSIdBase,
    TestHttpsInvalidDNSPatternBase,
    TestHttpsTLSVersionBase,
    TestHttpsWrongHostnameBase,
    TestHttpWithCrawlerBase,
    TestMitmProxyBase,
    TestSimpleHttpsBase,
)

from scraper_project.fasthttp import FastHTTPDownloadHandler
from scraper_project.handlers import CancellableHTTP11DownloadHandler

if TYPE_CHECKING:
    from scrapy.core.downloader.handlers import DownloadHandlerProtocol

FAST = "scraper_project.fasthttp.FastHTTPDownloadHandler"
TWISTED = "scraper_project.handlers.CancellableHTTP11DownloadHandler"


# -- FastHTTPDownloadHandler (the default for http and https) -----------------------


class FastMixin:
    @property
    def download_handler_cls(self) -> type[DownloadHandlerProtocol]:
        return FastHTTPDownloadHandler

    @property
    def settings_dict(self) -> dict[str, Any] | None:
        return {"DOWNLOAD_HANDLERS": {"http": FAST, "https": FAST}}


class _ProjectResolverMixin:
    default_handler_settings: ClassVar[dict[str, Any]]

    @pytest.fixture
    def resolve_to_loopback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Scrapy's fixture patches ``socket.getaddrinfo``, which the
        project's resolver (c-ares) does not use: the test's names go in
        ``RESOLVE_HOSTS`` instead, as a user pins a name to an address."""
        hosts = dict.fromkeys(IDNA_REJECTED_HOSTNAMES, "127.0.0.1")
        settings = {**self.default_handler_settings, "RESOLVE_HOSTS": hosts}
        monkeypatch.setattr(type(self), "default_handler_settings", settings)


class TestFastHttp(_ProjectResolverMixin, FastMixin, TestHttpBase):
    # Logs the error Scrapy's tests look for (once per handler); the
    # connection uses DOWNLOAD_BIND_ADDRESS.
    handler_supports_bindaddress_meta = False
    # llhttp rejects a header line without a colon (malformed_response); the
    # Twisted client skips it.
    handler_bad_header_handling = "fail"


class TestFastHttps(_ProjectResolverMixin, FastMixin, TestHttpsBase):
    handler_supports_bindaddress_meta = False
    handler_bad_header_handling = "fail"
    # ssl's debug line, as for Scrapy's aiohttp handler.
    tls_log_message = "SSL connection to 127.0.0.1 using protocol TLSv1.3, cipher"

    @pytest.mark.skip(reason="DOWNLOADER_CLIENTCONTEXTFACTORY is a Twisted object")
    def test_verify_certs_deprecated(self) -> None:  # type: ignore[override]
        """The handler warns that it ignores the setting (tests/test_http_settings.py);
        DOWNLOAD_VERIFY_CERTIFICATES is test_verify_certs."""


class TestFastSimpleHttps(FastMixin, TestSimpleHttpsBase):
    pass


class TestFastHttpsWrongHostname(FastMixin, TestHttpsWrongHostnameBase):
    pass


class TestFastHttpsInvalidDNSId(FastMixin, TestHttpsInvalidDNSIdBase):
    pass


class TestFastHttpsInvalidDNSPattern(FastMixin, TestHttpsInvalidDNSPatternBase):
    pass


class TestFastHttpsCustomCiphers(FastMixin, TestHttpsCustomCiphersBase):
    pass


class TestFastHttpsDefaultCiphers(FastMixin, TestHttpsDefaultCiphersBase):
    pass


class TestFastHttpsTLSVersion(FastMixin, TestHttpsTLSVersionBase):
    pass


class TestFastHttpWithCrawler(FastMixin, TestHttpWithCrawlerBase):
    pass


class TestFastHttpsWithCrawler(TestFastHttpWithCrawler):
    is_secure = True


class TestFastHttpProxy(FastMixin, TestHttpProxyBase):
    pass


class TestFastHttpsProxy(FastMixin, TestHttpProxyBase):
    is_secure = True
    handler_supports_tls_in_tls = False


@pytest.mark.requires_mitmproxy
class TestFastMitmProxy(FastMixin, TestMitmProxyBase):
    handler_supports_tls_in_tls = False


# -- CancellableHTTP11DownloadHandler (the Twisted fallback: proxies) ---------------


class TwistedMixin:
    @property
    def download_handler_cls(self) -> type[DownloadHandlerProtocol]:
        return CancellableHTTP11DownloadHandler

    @property
    def settings_dict(self) -> dict[str, Any] | None:
        return {"DOWNLOAD_HANDLERS": {"http": TWISTED, "https": TWISTED}}


pytestmark = pytest.mark.requires_reactor


class TestTwistedHttp(TwistedMixin, TestHttpBase):
    pass


class TestTwistedHttps(TwistedMixin, TestHttpsBase):
    pass


class TestTwistedSimpleHttps(TwistedMixin, TestSimpleHttpsBase):
    pass


class TestTwistedHttpsWrongHostname(TwistedMixin, TestHttpsWrongHostnameBase):
    pass


class TestTwistedHttpsInvalidDNSId(TwistedMixin, TestHttpsInvalidDNSIdBase):
    pass


class TestTwistedHttpsInvalidDNSPattern(TwistedMixin, TestHttpsInvalidDNSPatternBase):
    pass


class TestTwistedHttpsCustomCiphers(TwistedMixin, TestHttpsCustomCiphersBase):
    pass


class TestTwistedHttpsTLSVersion(TwistedMixin, TestHttpsTLSVersionBase):
    pass


class TestTwistedHttpWithCrawler(TwistedMixin, TestHttpWithCrawlerBase):
    pass


class TestTwistedHttpsWithCrawler(TestTwistedHttpWithCrawler):
    is_secure = True


class TestTwistedHttpProxy(TwistedMixin, TestHttpProxyBase):
    pass


class TestTwistedHttpsProxy(TwistedMixin, TestHttpProxyBase):
    is_secure = True
    handler_supports_tls_in_tls = False


@pytest.mark.requires_mitmproxy
class TestTwistedMitmProxy(TwistedMixin, TestMitmProxyBase):
    handler_supports_tls_in_tls = False
