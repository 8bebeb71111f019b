"""A DNS resolver with a static host table, like curl's ``--resolve``.

``TWISTED_DNS_RESOLVER = "scraper_project.resolver.StaticResolver"`` answers
names listed in ``RESOLVE_HOSTS`` (``{"name": "ip"}``) from that table. Other
names go to the system resolver, or, with ``RESOLVE_HOSTS_ONLY``, fail at once
as DNS errors without any query being sent: the tests use it to simulate DNS
failures without ever reaching a nameserver, and users to pin a site to an
address (staging servers, CDNs) without editing /etc/hosts.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import UsageError
from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase


@implementer(IResolverSimple)
class StaticResolver(CachingThreadedResolver):
    """Resolve from ``RESOLVE_HOSTS`` first; see the module docstring."""

    def __init__(
        self,
        reactor: ReactorBase,
        cache_size: int,
        timeout: float,
        hosts: dict[str, str],
        only: bool,
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.hosts = {name.lower().rstrip("."): ip for name, ip in hosts.items()}
        self.only = only

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> StaticResolver:
        settings = crawler.settings
        hosts: dict[str, Any] = settings.getdict("RESOLVE_HOSTS")
        for name, ip in hosts.items():
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise UsageError(
                    f"RESOLVE_HOSTS: {name!r} maps to {ip!r}, which is not an IP address"
                ) from None
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(
            reactor,
            cache_size,
            settings.getfloat("DNS_TIMEOUT"),
            hosts,
            settings.getbool("RESOLVE_HOSTS_ONLY"),
        )

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:
        key = name.lower().rstrip(".")
        ip = self.hosts.get(key)
        if ip is not None:
            return defer.succeed(ip)
        try:
            return defer.succeed(str(ipaddress.ip_address(key)))
        except ValueError:
            pass
        if self.only:
            return defer.fail(DNSLookupError(f"{name}: not in RESOLVE_HOSTS (RESOLVE_HOSTS_ONLY)"))
        result: defer.Deferred[str] = super().getHostByName(name, timeout)
        return result
