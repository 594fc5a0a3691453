"""What a session actor is told at creation, and how it turns that into an ``s2s.Config``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import s2s
from s2s.service.config import ServiceConfig

__all__ = ["SessionSpec", "media_host", "provider_config"]


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """A session as requested (plain data: it crosses Ray and is stored in Redis).

    ``config`` is :meth:`s2s.Config.to_dict` of the request: no secrets (keys come from the
    actor's environment and the service's provider settings).
    """

    session_id: str
    provider: str
    config: dict[str, Any]
    redis_url: str
    tool_pools: dict[str, str] = field(default_factory=dict)
    """Tool name -> the pool that runs it (tools not listed are answered by the client)."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionSpec:
        return cls(**data)


def provider_config(service: ServiceConfig, spec: SessionSpec) -> s2s.Config:
    """The session's Config: request values over the service's provider defaults."""
    settings = service.providers.get(spec.provider)
    config = s2s.Config.from_dict(spec.config)
    if settings is None:
        return config
    extra = {**settings.extra, **config.extra}
    if settings.base_url:
        extra.setdefault("base_url", settings.base_url)
    return config.replace(
        model=config.model or settings.model,
        voice=config.voice or settings.voice,
        extra=extra,
    )


def media_host(service: ServiceConfig) -> str:
    """Where the media channel listens: the configured address, or this node's IP for ``auto``."""
    host = service.sessions.media_host
    if host == "auto":
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    return host
