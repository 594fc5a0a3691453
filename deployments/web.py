"""Request and socket helpers of the ingress routes (FastAPI/Starlette types, no Ray)."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from fastapi import Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from .api import SESSION_ID_PATTERN, PlaybackMessage, TextMessage, ToolResultMessage
from .errors import ApiError, describe

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_NOT_FOUND",
    "CLOSE_RESTARTING",
    "CLOSE_TOO_BIG",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_UNAVAILABLE",
    "SESSION_ID",
    "audio_format",
    "client_error",
    "close_code_for",
    "deny",
    "media_input",
    "parse",
    "public_meta",
    "read_body",
    "resume_position",
    "session_urls",
]

#: Close codes on the stream socket.
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
#: This replica is stopping (a redeploy, a scale-down): reconnect and resume at once.
CLOSE_RESTARTING = 1012
CLOSE_INTERNAL = 1011
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
#: The client did not keep up with its events (outbound budget): reconnect with ``last_seq``.
CLOSE_TOO_SLOW = 4408
CLOSE_UNAVAILABLE = 4503

SESSION_ID = re.compile(SESSION_ID_PATTERN)
MAX_SEQ = 2**63 - 1


def session_urls(request: Request, session_id: str) -> dict[str, str]:
    """Where a session's routes are, as this request reached the service."""
    base = str(request.base_url).rstrip("/")
    ws_base = "ws" + base[4:] if base.startswith("http") else base
    path = f"/v1/sessions/{session_id}"
    return {
        "url": base + path,
        "stream_url": ws_base + path + "/stream",
        "events_url": base + path + "/events",
        "audio_url": base + path + "/audio",
    }


def close_code_for(status: int) -> int:
    """The WebSocket close code for an HTTP status (when a denial response is impossible)."""
    return {400: CLOSE_BAD_REQUEST, 401: CLOSE_UNAUTHORIZED, 404: CLOSE_NOT_FOUND}.get(
        status, CLOSE_UNAVAILABLE
    )


def audio_format(meta: dict[str, Any]) -> str:
    """The session's audio format (``"pcm16"`` or ``"pcmu"``) from its stored meta."""
    config = (meta.get("spec") or {}).get("config") or {}
    return str(config.get("audio_format") or "pcm16")


def public_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k != "spec"}
    spec = meta.get("spec") or {}
    config = spec.get("config") or {}
    out["sample_rate"] = config.get("sample_rate")
    out["audio_format"] = audio_format(meta)
    out["tools"] = [t["name"] for t in config.get("tools", [])]
    return out


def resume_position(raw: str | None, name: str) -> int:
    """A resume position from the client: a non-negative integer in range, else a 400."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_SEQ:
        raise ApiError(400, "invalid_request", f"{name} must be a non-negative integer")
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "too_large", f"the body is over the {limit}-byte limit")
    return bytes(body)


def parse(adapter: TypeAdapter[Any] | type[BaseModel], text: str | bytes) -> Any:
    """Validate JSON against a model or adapter; any problem is a 400 naming it."""
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_json(text)
        return adapter.model_validate_json(text)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", describe(exc)) from exc
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_request", "the body must be a JSON object") from exc


async def client_error(websocket: WebSocket, code: str, message: str) -> None:
    """An error about the client's own message: the connection stays up."""
    await websocket.send_text(
        json.dumps({"type": "error", "error": {"code": code, "message": message}})
    )


async def deny(websocket: WebSocket, error: ApiError, close_code: int) -> None:
    """Refuse a WebSocket before accepting it: an HTTP error if the server can, else a close."""
    try:
        await websocket.send_denial_response(
            JSONResponse(error.body(), status_code=error.status, headers=error.headers())
        )
    except (RuntimeError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await websocket.accept()
            await websocket.close(close_code, error.message[:120])


def media_input(message: Any) -> tuple[str, Any]:
    """A validated control message as a media-channel ``(kind, payload)``."""
    match message:
        case TextMessage(text=text):
            return "text", text
        case PlaybackMessage(item_id=item_id, played_ms=played_ms):
            return "playback", {"item_id": item_id, "played_ms": played_ms}
        case ToolResultMessage(call_id=call_id, content=content, is_error=is_error):
            return "tool_result", {"call_id": call_id, "content": content, "is_error": is_error}
        case _:  # interrupt, end_turn, close
            return str(message.type), None
