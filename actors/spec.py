"""What a session actor is told at creation, and how it turns that into an ``s2s.Config``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import s2s
from s2s.errors import MissingCredentialsError
from s2s.service.config import ServiceConfig

__all__ = ["SessionSpec", "media_host", "provider_config"]


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """A session as requested (plain data: it crosses Ray and is stored in Redis).

    ``config`` is :meth:`s2s.Config.to_dict` of the request: no secrets (keys come from the
    actor's environment and the service's provider settings; ``credentials`` names variables,
    never values).
    """

    session_id: str
    provider: str
    config: dict[str, Any]
    tenant: str = ""
    tool_pools: dict[str, str] = field(default_factory=dict)
    """Tool name -> the pool that runs it (tools not listed are answered by the client)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    max_duration_s: float | None = None
    """The tenant's longest call (None: ``sessions.max_duration_s``)."""
    credentials: dict[str, str] = field(default_factory=dict)
    """The tenant's own provider credentials: ``Config.extra`` key -> environment variable."""
    failover: list[str] = field(default_factory=list)
    """Providers the call moves to, in order, when ``provider`` fails for good."""
    failover_credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    """The tenant's own credentials for the failover providers: provider -> ``credentials``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionSpec:
        """From :meth:`to_dict` output; fields this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def provider_config(
    service: ServiceConfig, spec: SessionSpec, environ: Mapping[str, str] | None = None
) -> s2s.Config:
    """The session's Config: request values over the service's provider defaults, with the
    tenant's own credentials (read from ``environ``) over the service's; each failover provider
    resolved the same way (the service's settings for it, the tenant's credentials for it).

    Raises:
        MissingCredentialsError: a tenant credential's variable is not set (names the variable).
    """
    env = os.environ if environ is None else environ
    config = s2s.Config.from_dict(spec.config)
    primary = _resolve(
        service, spec.provider, config.model, config.voice, config.extra, spec.credentials, env
    )
    fallbacks = [
        _resolve(service, name, None, None, {}, spec.failover_credentials.get(name, {}), env)
        for name in spec.failover
    ]
    return config.replace(
        model=primary.model, voice=primary.voice, extra=dict(primary.extra), failover=fallbacks
    )


def _resolve(
    service: ServiceConfig,
    provider: str,
    model: str | None,
    voice: str | None,
    extra: Mapping[str, Any],
    credentials: Mapping[str, str],
    environ: Mapping[str, str],
) -> s2s.Fallback:
    """``provider`` with the service's settings for it under the given values."""
    settings = service.providers.get(provider)
    resolved = dict(extra)
    if settings is not None:
        resolved = {**settings.extra, **resolved}
        if settings.base_url:
            resolved.setdefault("base_url", settings.base_url)
        model, voice = model or settings.model, voice or settings.voice
    resolved.update(_credentials(provider, credentials, environ))
    return s2s.Fallback(provider, model=model, voice=voice, extra=resolved)


def _credentials(
    provider: str, credentials: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str]:
    """The tenant's own credentials for ``provider``, read from ``environ``.

    Raises:
        MissingCredentialsError: a variable is not set (names it).
    """
    values = {}
    for key, variable in credentials.items():
        value = environ.get(variable)
        if not value:
            raise MissingCredentialsError(
                f"{provider}: the tenant's credential {key!r} is not set (${variable})",
                provider=provider,
            )
        values[key] = value
    return values


def media_host(service: ServiceConfig) -> str:
    """Where the media channel listens: the configured address, or this node's IP for ``auto``."""
    host = service.sessions.media_host
    if host == "auto":
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    return host
