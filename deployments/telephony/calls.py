"""What a phone call is, before and after it runs: its session, its built-in tools, its outcome.

A call has no client to choose settings, so the session comes from the tenant's
``telephony`` section (:func:`call_request`). Two tools are built in and handled by the phone
bridge itself, not by a worker pool: ``end_call`` (the model says goodbye, the line closes once
the goodbye has played) and ``transfer_call`` (the same, then the platform connects the caller
to one of the tenant's configured targets). How the call ended is a :class:`CallOutcome`, kept
in Redis for the platform's follow-up request (Twilio's ``<Redirect>``). A stream token binds
the stream a platform opens to the session its webhook created (:class:`CallTokens`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from s2s.service import keys
from s2s.service.config import ServiceConfig
from s2s.service.telephony_config import TelephonySettings

from ..api import ClientToolIn, CreateSession

__all__ = [
    "END_CALL",
    "TRANSFER_CALL",
    "CallOutcome",
    "CallTokens",
    "builtin_tools",
    "call_request",
    "decide",
]

END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
#: How long an outcome stays readable after the call (the platform asks within seconds).
OUTCOME_TTL_S = 3600
MAX_SUMMARY_CHARS = 500


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call ended. ``action``: ``hangup`` (anyone hung up, or ``end_call``) or
    ``transfer`` (to ``target``, the configured destination of ``target_name``)."""

    action: Literal["hangup", "transfer"]
    reason: str
    target_name: str | None = None
    target: str | None = None
    summary: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> CallOutcome:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def output_variables(self, session_id: str) -> dict[str, str]:
        """The outcome as Genesys Architect outputs (strings only)."""
        return {
            "nextAction": "transfer" if self.action == "transfer" else "end",
            "transferTarget": self.target_name or "",
            "queue": self.target or "",
            "summary": self.summary,
            "reason": self.reason,
            "sessionId": session_id,
        }


def builtin_tools(settings: TelephonySettings) -> list[ClientToolIn]:
    """The call-control tools this tenant's model may use."""
    tools: list[ClientToolIn] = []
    summary = {
        "type": "string",
        "description": "One or two sentences summarising the call for the next agent or report.",
    }
    if settings.end_call:
        tools.append(
            ClientToolIn(
                name=END_CALL,
                description=(
                    "Hang up the phone call once the caller's needs are met or they want to "
                    "end it. After calling it, say a short goodbye: the line closes as soon as "
                    "your goodbye has played."
                ),
                parameters={
                    "type": "object",
                    "properties": {"summary": summary},
                    "required": [],
                },
            )
        )
    if settings.transfer_targets:
        names = sorted(settings.transfer_targets)
        tools.append(
            ClientToolIn(
                name=TRANSFER_CALL,
                description=(
                    "Transfer the caller to a human team. After calling it, tell the caller "
                    "they are being transferred: the transfer happens once that has played. "
                    f"Targets: {', '.join(names)}."
                ),
                parameters={
                    "type": "object",
                    "properties": {"target": {"type": "string", "enum": names}, "summary": summary},
                    "required": ["target"],
                },
            )
        )
    return tools


def call_request(
    config: ServiceConfig,
    settings: TelephonySettings,
    *,
    platform: str,
    call_id: str,
    caller: str,
    called: str,
    extra_metadata: dict[str, Any] | None = None,
) -> CreateSession:
    """The session a call gets: the tenant's telephony defaults, 8 kHz μ-law audio (straight
    through to providers that take it, such as OpenAI; transcoded by the session for the
    others), the built-in tools, and the call's identity as metadata."""
    provider = settings.provider or config.default_provider
    metadata: dict[str, Any] = {
        "telephony": {"platform": platform, "call_id": call_id, "from": caller, "to": called},
        **(extra_metadata or {}),
    }
    return CreateSession.model_validate(
        {
            "provider": provider,
            "model": settings.model,
            "voice": settings.voice,
            "instructions": settings.instructions,
            "tools": settings.tools,
            "client_tools": builtin_tools(settings),
            "sample_rate": 8000,
            "audio_format": "pcmu",
            "metadata": metadata,
        }
    )


def decide(
    settings: TelephonySettings, name: str, arguments: dict[str, Any]
) -> tuple[CallOutcome | None, str]:
    """A built-in tool call: ``(outcome, result for the model)``; no outcome when the call is
    refused (an unknown target: the result says which exist)."""
    summary = str(arguments.get("summary") or "")[:MAX_SUMMARY_CHARS]
    if name == TRANSFER_CALL:
        target_name = str(arguments.get("target") or "")
        target = settings.transfer_targets.get(target_name)
        if target is None:
            known = ", ".join(sorted(settings.transfer_targets)) or "none"
            return None, f"Unknown transfer target {target_name!r}. Valid targets: {known}."
        outcome = CallOutcome("transfer", "transferred", target_name, target, summary)
        # Short: results are read to the model, and some models read them out.
        return outcome, f"Transferring to {target_name} after you speak: say so briefly."
    return CallOutcome("hangup", "end_call", summary=summary), "Say a brief goodbye now."


class CallTokens:
    """One-use tokens that bind a platform's stream to the session its webhook created."""

    def __init__(self, redis: Redis, ttl_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)

    async def issue(self, session_id: str, tenant: str, call_id: str) -> str:
        token = secrets.token_urlsafe(24)
        value = json.dumps({"session_id": session_id, "tenant": tenant, "call_id": call_id})
        await self.redis.set(keys.telephony_token(token), value, px=self.ttl_ms)
        return token

    async def redeem(self, token: str) -> dict[str, str] | None:
        """The token's binding, once (None: unknown, used or expired)."""
        if not token or len(token) > 64:
            return None
        raw = await self.redis.getdel(keys.telephony_token(token))
        return None if raw is None else dict(json.loads(raw))

    async def save_outcome(self, session_id: str, outcome: CallOutcome) -> None:
        await self.redis.set(keys.call_outcome(session_id), outcome.to_json(), ex=OUTCOME_TTL_S)

    async def outcome(self, session_id: str) -> CallOutcome | None:
        raw = await self.redis.get(keys.call_outcome(session_id))
        return None if raw is None else CallOutcome.from_json(raw)
