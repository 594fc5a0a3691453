"""From a ``POST /v1/sessions`` body and the caller's tenant to a validated :class:`SessionSpec`.

Everything a create can get wrong is found here, before any actor exists: the provider and
tools the tenant may use, the provider settings a client may set (a per-provider allowlist:
turn detection, transcription, ... never credentials, endpoints or limits), and the whole
resulting configuration, checked by constructing the provider exactly as the session actor
will (with the same credentials), so a wrong key or value is a 400 naming it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import s2s
from actors import SessionSpec
from actors.spec import provider_config
from s2s.errors import MissingCredentialsError
from s2s.service.config import ServiceConfig, TenantSettings
from s2s.tools.registry import ToolRegistry

from .api import CreateSession
from .errors import ApiError

__all__ = ["CLIENT_EXTRA", "build_spec", "client_extra_keys"]

#: ``extra`` keys a client may set, per provider, unless ``providers.<name>.client_extra`` says
#: otherwise. Left out on purpose: credentials, URLs, API versions, regions, CA files, and the
#: limits that protect the service (``rotate_after_s``, ``max_session_s``, resumption margins).
CLIENT_EXTRA: Mapping[str, frozenset[str]] = {
    "openai_realtime": frozenset(
        {
            "turn_detection",
            "vad_threshold",
            "silence_duration_ms",
            "prefix_padding_ms",
            "eagerness",
            "interrupt_response",
            "transcription_model",
            "transcription_language",
            "noise_reduction",
            "output_modalities",
            "speed",
            "max_output_tokens",
            "tool_choice",
        }
    ),
    "gemini_live": frozenset(
        {
            "turn_detection",
            "start_sensitivity",
            "end_sensitivity",
            "prefix_padding_ms",
            "silence_duration_ms",
            "activity_handling",
            "turn_coverage",
            "input_transcription",
            "output_transcription",
            "language_code",
            "proactive_audio",
            "temperature",
            "max_output_tokens",
            "non_blocking_tools",
        }
    ),
    "nova": frozenset({"endpointing_sensitivity", "max_tokens", "temperature", "top_p"}),
    # Not the backend model or its prompt (operator's choice and cost), nor store (data policy).
    "openai_live": frozenset({"turn_gap_ms", "acknowledgement_delay_ms"}),
}


def client_extra_keys(config: ServiceConfig, provider: str) -> frozenset[str]:
    settings = config.providers.get(provider)
    if settings is not None and settings.client_extra is not None:
        return frozenset(settings.client_extra)
    return CLIENT_EXTRA.get(provider, frozenset())


def build_spec(
    body: CreateSession,
    *,
    tenant_name: str,
    tenant: TenantSettings,
    config: ServiceConfig,
    tools: ToolRegistry,
    tool_owner: Mapping[str, str],
) -> SessionSpec:
    """The session the body asks for, or an ApiError (400/403/503) naming what is wrong."""
    provider = body.provider or config.default_provider
    available = [p for p in s2s.list_providers() if p in config.providers]
    if provider not in available:
        raise ApiError(
            400,
            "unknown_provider",
            f"provider {provider!r} is not offered here; available: {', '.join(available)}",
        )
    if tenant.providers is not None and provider not in tenant.providers:
        raise ApiError(
            403, "provider_not_allowed", f"this tenant may not use provider {provider!r}"
        )
    failover = _failover(body, provider, available, tenant, config)
    allowed_extra = client_extra_keys(config, provider)
    refused = sorted(set(body.extra) - allowed_extra)
    if refused:
        raise ApiError(
            400,
            "invalid_request",
            f"extra may not set {', '.join(refused)} for {provider}; a client may set: "
            f"{', '.join(sorted(allowed_extra)) or 'nothing'}",
        )
    offered = tools.names if tenant.tools is None else [n for n in tools.names if n in tenant.tools]
    names = offered if body.tools is None else body.tools
    unknown = sorted(set(names) - set(offered))
    if unknown:
        raise ApiError(
            400,
            "unknown_tool",
            f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(offered) or 'none'}",
        )
    clashing = sorted({t.name for t in body.client_tools} & set(names))
    if clashing or len({t.name for t in body.client_tools}) != len(body.client_tools):
        raise ApiError(
            400,
            "invalid_request",
            "client_tools names must be unique and differ from server tools"
            + (f" ({', '.join(clashing)})" if clashing else ""),
        )
    max_call = tenant.quotas.max_call_s
    try:
        session_config = s2s.Config(
            model=body.model,
            voice=body.voice,
            instructions=body.instructions,
            tools=[
                *tools.definitions(names),
                *(
                    s2s.ToolDefinition(t.name, t.description, t.parameters)
                    for t in body.client_tools
                ),
            ],
            sample_rate=body.sample_rate,
            audio_format=body.audio_format,
            extra=body.extra,
        )
        spec = SessionSpec(
            session_id=body.session_id or uuid.uuid4().hex,
            provider=provider,
            config=session_config.to_dict(),
            tenant=tenant_name,
            tool_pools={name: tool_owner[name] for name in names},
            metadata=body.metadata,
            max_duration_s=min(max_call, config.sessions.max_duration_s) if max_call else None,
            credentials=dict(tenant.provider_credentials.get(provider, {})),
            failover=failover,
            failover_credentials={
                name: dict(tenant.provider_credentials[name])
                for name in failover
                if name in tenant.provider_credentials
            },
        )
        s2s.new(provider, provider_config(config, spec))  # the actor's own check, done now
    except MissingCredentialsError as exc:
        missing = exc.provider or provider
        raise ApiError(
            503, "provider_unavailable", f"provider {missing!r} has no credentials here"
        ) from exc
    except s2s.S2SError as exc:
        raise ApiError(400, "invalid_session", exc.message) from exc
    return spec


def _failover(
    body: CreateSession,
    provider: str,
    available: list[str],
    tenant: TenantSettings,
    config: ServiceConfig,
) -> list[str]:
    """The providers the call may move to: the request's, else the tenant's, else the
    service's; each offered here, allowed for the tenant, and named once."""
    if body.failover is not None:
        names = body.failover
    else:
        names = tenant.failover if tenant.failover is not None else config.failover
    if body.failover is None:  # a configured default quietly skips what this call cannot use
        return [
            n
            for n in dict.fromkeys(names)
            if n != provider
            and n in available
            and (tenant.providers is None or n in tenant.providers)
        ]
    for name in names:
        if name not in available:
            raise ApiError(
                400,
                "unknown_provider",
                f"failover provider {name!r} is not offered here; available: "
                f"{', '.join(available)}",
            )
        if tenant.providers is not None and name not in tenant.providers:
            raise ApiError(
                403, "provider_not_allowed", f"this tenant may not use provider {name!r}"
            )
    if provider in names or len(set(names)) != len(names):
        raise ApiError(
            400,
            "invalid_request",
            "failover must name each provider once and not the session's own provider "
            f"({provider})",
        )
    return list(names)
