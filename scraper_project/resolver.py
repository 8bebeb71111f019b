"""A DNS resolver with a static host table, like curl's ``--resolve``.

``TWISTED_DNS_RESOLVER = "scraper_project.resolver.StaticResolver"`` answers
names listed in ``RESOLVE_HOSTS`` (``{"name": "ip"}``) from that table. Other
names go to the system resolver, or, with ``RESOLVE_HOSTS_ONLY``, fail at once
as DNS errors without any query being sent: the tests use it to simulate DNS
failures without ever reaching a nameserver, and users to pin a site to an
address (staging servers, CDNs) without editing /etc/hosts.

With ``PAGES_BLOCK_PRIVATE_ADDRESSES`` the resolver is also the SSRF guard: an
answer (from the table, the system resolver or an IP literal) that is not a
global address (loopback, RFC 1918, link-local such as the 169.254.169.254
cloud metadata service, CGNAT, multicast, reserved, unspecified) fails with
:class:`BlockedAddressError` before any connection is made. Every redirect
hop connects through here too, so a redirect to an internal address is
refused the same way.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from contextlib import suppress
from typing import TYPE_CHECKING

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from scraper_project.config import get_bool, get_dict, get_list, usage_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from twisted.internet.base import ReactorBase


class BlockedAddressError(DNSLookupError):
    """The name resolved to an address the SSRF guard refuses."""


# Twisted turns any resolver failure into its own generic DNSLookupError, so
# the guard also records why it refused a name; errors.classify() looks here.
_BLOCKED: OrderedDict[str, str] = OrderedDict()
_BLOCKED_MAX = 10_000


def blocked_reason(host: str) -> str | None:
    """Why the guard refused ``host`` (a name or an IP literal), if it did."""
    return _BLOCKED.get(host.lower().rstrip(".").strip("[]"))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_blocked(ip: str, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether ``ip`` is not a global unicast address (and not allowed)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return False
    return not address.is_global or address.is_multicast


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
        *,
        block_private: bool = False,
        allowed: tuple[Network, ...] = (),
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.hosts = {name.lower().rstrip("."): ip for name, ip in hosts.items()}
        self.only = only
        self.block_private = block_private
        self.allowed = allowed

    @classmethod
    def check_settings(cls, settings: BaseSettings) -> tuple[dict[str, str], tuple[Network, ...]]:
        """Validate the resolver's settings (``UsageError`` naming a bad one);
        return ``RESOLVE_HOSTS`` and ``PAGES_ALLOWED_ADDRESSES``, parsed."""
        hosts = get_dict(settings, "RESOLVE_HOSTS", example='{"shop.example": "10.0.0.5"}')
        for name, ip in hosts.items():
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise usage_error(
                    f"RESOLVE_HOSTS: {name!r} maps to {ip!r}, which is not an IP address"
                ) from None
        allowed = []
        for entry in get_list(settings, "PAGES_ALLOWED_ADDRESSES"):
            try:
                allowed.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise usage_error(
                    f"PAGES_ALLOWED_ADDRESSES: {entry!r} is not an IP address or network"
                ) from None
        for name in ("RESOLVE_HOSTS_ONLY", "PAGES_BLOCK_PRIVATE_ADDRESSES"):
            get_bool(settings, name)
        return hosts, tuple(allowed)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> StaticResolver:
        settings = crawler.settings
        hosts, allowed = cls.check_settings(settings)
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(
            reactor,
            cache_size,
            settings.getfloat("DNS_TIMEOUT"),
            hosts,
            settings.getbool("RESOLVE_HOSTS_ONLY"),
            block_private=settings.getbool("PAGES_BLOCK_PRIVATE_ADDRESSES"),
            allowed=allowed,
        )

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:
        key = name.lower().rstrip(".")
        ip = self.hosts.get(key)
        if ip is None:
            with suppress(ValueError):
                ip = str(ipaddress.ip_address(key.strip("[]")))
        if ip is not None:
            return self._guard(name, ip)
        if self.only:
            return defer.fail(DNSLookupError(f"{name}: not in RESOLVE_HOSTS (RESOLVE_HOSTS_ONLY)"))
        result: defer.Deferred[str] = super().getHostByName(name, timeout)
        if self.block_private:
            result.addCallback(lambda resolved: self._checked(name, resolved))
        return result

    def _checked(self, name: str, ip: str) -> str:
        if self.block_private and is_blocked(ip, self.allowed):
            reason = (
                f"{name} resolves to {ip}, a non-public address "
                f"(PAGES_BLOCK_PRIVATE_ADDRESSES is on)"
            )
            _BLOCKED[name.lower().rstrip(".").strip("[]")] = reason
            if len(_BLOCKED) > _BLOCKED_MAX:
                _BLOCKED.popitem(last=False)
            raise BlockedAddressError(reason)
        return ip

    def _guard(self, name: str, ip: str) -> defer.Deferred[str]:
        try:
            return defer.succeed(self._checked(name, ip))
        except BlockedAddressError as exc:
            return defer.fail(exc)
