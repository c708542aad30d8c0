"""Redis URLs: ``redis+cluster://`` (or ``rediss+cluster://``) names a Redis Cluster.

redis-py does not know the ``+cluster`` suffix: :func:`parse_redis_url` strips it, and
:func:`redis_client` opens the client every Redis-backed part of Arbiter uses (the store,
governance, the volume counter, the decision-log stream) on the plain URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["parse_redis_url", "redis_client"]

_CLUSTER: str = "+cluster"


def parse_redis_url(url: str) -> tuple[str, bool]:
    """``url`` without the ``+cluster`` suffix of its scheme, and whether it had one."""
    parts = urlsplit(url)
    scheme = parts.scheme.removesuffix(_CLUSTER)
    return urlunsplit((scheme, *parts[1:])), scheme != parts.scheme


def redis_client(url: str, *, cluster: bool | None = None, **options: Any) -> Any:
    """A redis-py asyncio client on ``url``: a ``RedisCluster`` when the URL names a cluster
    (or ``cluster`` says so), else a ``Redis`` without health-check pings. ``options`` go to
    ``from_url`` as they are."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    plain, named = parse_redis_url(url)
    if named if cluster is None else cluster:
        return RedisCluster.from_url(plain, **options)
    return Redis.from_url(plain, health_check_interval=0, **options)
