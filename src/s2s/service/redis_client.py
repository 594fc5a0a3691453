"""The asyncio Redis client class, imported without redis-py's optional OpenTelemetry metrics.

redis-py (>= 7.1) imports ``opentelemetry.sdk.metrics`` whenever it is installed, for metrics
that stay off unless the application turns them on; we never do. Ray installs that SDK, so
every session-actor process would carry it: about 2 MB of its memory and 80 ms of its start.
:func:`redis_class` imports redis-py with the SDK hidden, then unhides it, so anything else in
the process can still import it. In a process that already loaded the SDK or redis-py, it is a
plain import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .config import RedisSettings

__all__ = ["connect", "is_connection_error", "is_redis_error", "redis_class"]

_OPTIONAL_SDK = "opentelemetry.sdk.metrics"


def redis_class() -> type[Redis]:
    """``redis.asyncio.Redis``, imported without the OpenTelemetry SDK if nothing loaded it."""
    if "redis" in sys.modules or _OPTIONAL_SDK in sys.modules:
        from redis.asyncio import Redis

        return Redis
    sys.modules[_OPTIONAL_SDK] = None  # type: ignore[assignment]  # makes its import fail
    try:
        from redis.asyncio import Redis
    finally:
        del sys.modules[_OPTIONAL_SDK]
    return Redis


def connect(
    settings: RedisSettings, url: str | None = None, environ: Mapping[str, str] | None = None
) -> Redis:
    """A client for ``url`` (default ``settings.url``) as this process's Redis ACL user.

    The user and password come from the variables ``settings.username_env`` and
    ``settings.password_env`` (unset: Redis's default user, no password), never from the URL.
    Its pool holds at most ``settings.max_connections``; past that a command waits up to
    ``settings.pool_timeout_s`` for a free connection (then ``redis.ConnectionError``) instead
    of failing at once.
    """
    env = os.environ if environ is None else environ
    client_class = redis_class()
    from redis.asyncio import BlockingConnectionPool

    pool = BlockingConnectionPool.from_url(
        url or settings.url,
        username=env.get(settings.username_env) or None,
        password=env.get(settings.password_env) or None,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_s,
    )
    return client_class.from_pool(pool)


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection, or a timeout (redis-py's errors, or the OS's): trying again
    on a fresh connection may help."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.startswith("redis.")}
    return bool(names & {"ConnectionError", "TimeoutError"})


def is_redis_error(exc: BaseException) -> bool:
    """Any failure talking to Redis: a connection error, or one of redis-py's own (a server
    reply such as LOADING or READONLY while Redis restarts or fails over)."""
    return is_connection_error(exc) or any(
        cls.__module__.startswith("redis.") for cls in type(exc).__mro__
    )
