"""Request and message shapes of the public HTTP/WebSocket API (no Ray, no I/O).

Binary frames the server sends on ``/stream`` carry model audio::

    8 bytes   sequence number, big-endian unsigned
    1 byte    length L of the item id
    L bytes   item id (UTF-8; use it for playback reports)
    rest      PCM16 mono audio at the session's sample rate

Text frames carry every other event as JSON with ``seq`` and ``type``. Frames the client sends:
binary = caller audio (PCM16 at the session's rate); text = one JSON control message.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "BLOCKED_EXTRA_KEYS",
    "ClientToolIn",
    "ControlMessage",
    "CreateSession",
    "audio_frame",
    "parse_audio_frame",
]

#: Provider settings a client may not set: they are the operator's (secrets, where to connect).
BLOCKED_EXTRA_KEYS = frozenset(
    {
        "api_key",
        "base_url",
        "ca_file",
        "endpoint",
        "profile",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)

_AUDIO_HEADER = struct.Struct(">QB")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientToolIn(_Strict):
    """A tool the client runs itself (its calls arrive as events; answer with tool_result)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class CreateSession(_Strict):
    """``POST /v1/sessions``."""

    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None
    """Optional id chosen by the caller (idempotent: the same id gets the same session)."""
    provider: str | None = None
    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    tools: list[str] | None = None
    """Server tools (from the configured pools) to enable; default all, ``[]`` none."""
    client_tools: list[ClientToolIn] = Field(default_factory=list)
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = 24000
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Caller metadata kept with the session (caller id, queue, ...)."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Provider settings (turn detection, transcription, ...); never keys or URLs."""


class TextMessage(_Strict):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1)]


class InterruptMessage(_Strict):
    type: Literal["interrupt"]


class EndTurnMessage(_Strict):
    type: Literal["end_turn"]


class PlaybackMessage(_Strict):
    type: Literal["playback"]
    item_id: Annotated[str, Field(min_length=1)]
    played_ms: Annotated[float, Field(ge=0)]


class ToolResultMessage(_Strict):
    type: Literal["tool_result"]
    call_id: Annotated[str, Field(min_length=1)]
    content: str
    is_error: bool = False


class CloseMessage(_Strict):
    type: Literal["close"]


class PingMessage(_Strict):
    type: Literal["ping"]


ControlMessage = Annotated[
    TextMessage
    | InterruptMessage
    | EndTurnMessage
    | PlaybackMessage
    | ToolResultMessage
    | CloseMessage
    | PingMessage,
    Field(discriminator="type"),
]
CONTROL = TypeAdapter(ControlMessage)


def audio_frame(seq: int, item_id: str | None, audio: bytes) -> bytes:
    item = (item_id or "").encode()[:255]
    return _AUDIO_HEADER.pack(seq, len(item)) + item + audio


def parse_audio_frame(frame: bytes) -> tuple[int, str, bytes]:
    """``(seq, item_id, pcm16)`` from a server audio frame (for clients and tests)."""
    seq, length = _AUDIO_HEADER.unpack_from(frame)
    start = _AUDIO_HEADER.size
    return seq, frame[start : start + length].decode(), frame[start + length :]
