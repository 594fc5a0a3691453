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
    tenant's own credentials (read from ``environ``) over the service's.

    Raises:
        MissingCredentialsError: a tenant credential's variable is not set (names the variable).
    """
    env = os.environ if environ is None else environ
    settings = service.providers.get(spec.provider)
    config = s2s.Config.from_dict(spec.config)
    extra = dict(config.extra)
    model, voice = config.model, config.voice
    if settings is not None:
        extra = {**settings.extra, **extra}
        if settings.base_url:
            extra.setdefault("base_url", settings.base_url)
        model, voice = model or settings.model, voice or settings.voice
    for key, variable in spec.credentials.items():
        value = env.get(variable)
        if not value:
            raise MissingCredentialsError(
                f"{spec.provider}: the tenant's credential {key!r} is not set (${variable})",
                provider=spec.provider,
            )
        extra[key] = value
    return config.replace(model=model, voice=voice, extra=extra)


def media_host(service: ServiceConfig) -> str:
    """Where the media channel listens: the configured address, or this node's IP for ``auto``."""
    host = service.sessions.media_host
    if host == "auto":
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    return host
