"""Name resolution that never asks a nameserver (the conformance run).

``localhost`` and IP literals resolve; any other name fails at once as a
name that does not exist (EAI_NONAME). Imported by the ``sitecustomize`` the
runner puts first on PYTHONPATH, so in every Python process of the run --
pytest, Scrapy's mockservers, mitmdump -- before anything resolves: Scrapy's
``tests/__init__.py`` probes a made-up name at import, and Twisted binds
``getaddrinfo`` when its resolver module is imported. Standard library only.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_LOOPBACK = {"localhost": ("127.0.0.1", "::1"), "localhost.": ("127.0.0.1", "::1")}
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
_real_gethostbyname_ex = socket.gethostbyname_ex


def _local(host: Any, family: int = 0) -> Any:
    """``host`` if it needs no nameserver, its loopback address for
    ``localhost``; raise EAI_NONAME for any other name."""
    if host is None:
        return None
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return host
    addresses = _LOOPBACK.get(name.lower())
    if addresses is None:
        raise socket.gaierror(
            socket.EAI_NONAME, f"{name}: not resolved (the conformance run asks no nameserver)"
        )
    return addresses[1] if family == socket.AF_INET6 else addresses[0]


def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
    return _real_getaddrinfo(_local(host, family), port, family, *args, **kwargs)


def _gethostbyname(host: str) -> str:
    return _real_gethostbyname(_local(host))


def _gethostbyname_ex(host: str) -> Any:
    return _real_gethostbyname_ex(_local(host))


socket.getaddrinfo = getaddrinfo
socket.gethostbyname = _gethostbyname
socket.gethostbyname_ex = _gethostbyname_ex
