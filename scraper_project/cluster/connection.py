"""The cluster's Redis connection and key prefix, from settings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import UsageError

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["check_redis", "cluster_key", "is_clustered", "redis_client"]

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def is_clustered(settings: BaseSettings) -> bool:
    """Whether ``PAGES_REDIS_URL`` turns the cluster mode on."""
    return bool(settings.get("PAGES_REDIS_URL"))


def cluster_key(settings: BaseSettings) -> str:
    """``PAGES_CLUSTER_KEY``, validated: the prefix of every Redis key."""
    key = str(settings.get("PAGES_CLUSTER_KEY") or "")
    if not _KEY.match(key):
        raise UsageError(
            f"PAGES_CLUSTER_KEY must be 1-100 letters, digits or _.:-, got {key!r}",
            print_help=False,
        )
    return key


def redis_client(settings: BaseSettings) -> Any:
    """A ``redis.Redis`` client for ``PAGES_REDIS_URL`` (not connected yet)."""
    import redis

    url = str(settings.get("PAGES_REDIS_URL"))
    try:
        return redis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30
        )
    except ValueError as exc:
        raise UsageError(f"PAGES_REDIS_URL is not a Redis URL ({exc}): {url!r}") from None


def check_redis(settings: BaseSettings) -> None:
    """Raise ``UsageError`` unless the cluster's Redis answers (cluster mode only)."""
    if not is_clustered(settings):
        return
    import redis

    cluster_key(settings)
    client = redis_client(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        url = _redact(str(settings.get("PAGES_REDIS_URL")))
        raise UsageError(
            f"cannot reach Redis at PAGES_REDIS_URL={url!r}: {exc}", print_help=False
        ) from None
    finally:
        client.close()


def _redact(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
