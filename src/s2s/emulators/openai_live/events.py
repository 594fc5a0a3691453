"""Server events of GPT-Live, shaped as ``openai.types.live.ServerEvent`` (drift reference §1.5).

Every builder returns a dict the conformance tests validate against the SDK's union.
"""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

__all__ = ["Ids", "error", "response_snapshot", "session_resource"]

MODELS = frozenset({"gpt-live-1", "gpt-live-1.1"})
DEFAULT_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}
DEFAULT_VOICE = "marin"


class Ids:
    """Ids in the production formats (``live_…``, ``del_…``, ``resp_…``, ``call_…``)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(6)}{next(self._counter):04d}"

    def event(self) -> str:
        return self.new("event")


def session_resource(session_id: str, expires_at: int, config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config (defaults filled in) plus ``id``, ``expires_at`` and ``status``."""
    audio = dict(config.get("audio") or {})
    audio["format"] = audio.get("format") or dict(DEFAULT_FORMAT)
    output = dict(audio.get("output") or {})
    output["voice"] = output.get("voice") or DEFAULT_VOICE
    audio["output"] = output
    resource = {**config, "audio": audio}
    resource["delegation"] = config.get("delegation") or {"type": "client"}
    resource.update({"id": session_id, "expires_at": expires_at, "status": "active"})
    return resource


def error(
    ids: Ids,
    code: str,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    client_event_id: str | None = None,
) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type, "code": code, "message": message}
    if param is not None:
        err["param"] = param
    if client_event_id is not None:
        err["client_event_id"] = client_event_id
    event: dict[str, Any] = {"type": "error", "event_id": ids.event(), "error": err}
    if client_event_id is not None:
        event["client_event_id"] = client_event_id
    return event


def response_snapshot(
    response_id: str,
    model: str,
    status: str,
    *,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Responses ``response`` object as lifecycle events carry it (``output`` empty)."""
    snapshot: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output or [],
        "usage": usage,
    }
    return snapshot


def backend_usage(input_chars: int, output_chars: int) -> dict[str, Any]:
    inp, out = input_chars // 4 + 1, output_chars // 4 + 1
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }
