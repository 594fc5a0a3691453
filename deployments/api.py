"""Request and message shapes of the public HTTP/WebSocket API (no Ray, no I/O).

Binary frames the server sends on ``/stream`` carry model audio::

    8 bytes   sequence number, big-endian unsigned
    1 byte    length L of the item id
    L bytes   item id (UTF-8; use it for playback reports)
    rest      mono audio in the session's format and rate (``audio_format``: PCM16, or G.711
              mu-law for ``"pcmu"``)

Text frames carry every other event as JSON with ``seq`` and ``type``. Frames the client sends:
binary = caller audio in the session's format and rate (PCM16 frames must have an even number of
bytes; mu-law frames any); text = one JSON control message. A bad
control message gets ``{"type": "error", "error": {"code", "message"}}`` (no ``seq``) and the
call goes on.

Resuming without loss, in both directions (messages without ``seq``, not events):

* The socket's first message is ``{"type": "stream_opened", "input_position": N,
  "last_seq": L}``. Events follow from ``L + 1`` (``?last_seq=L`` on the URL; 0 for all).
* Every binary frame and every text message other than ``ping`` the client sends takes the next
  *input position* (1, 2, ...; counted over the whole call, across reconnects). ``N`` is the
  highest position the call has *saved* (with the audio the model had not yet made part of the
  conversation, so a replacement of the session's actor continues from it): after a reconnect
  the client resends whatever it sent after ``N``. Positions the model already received are
  dropped, so nothing is applied twice.
* ``{"type": "input_ack", "input_position": N}`` arrives at most once a second while ``N``
  advances: the client may forget what it sent up to ``N`` (it keeps the rest: typically a few
  seconds, at most about 20).

Refusals before the socket opens are HTTP errors (``{"error": {"code", "message"}}``): 400 for a
malformed session id or ``last_seq`` (a non-negative integer below 2**63), 401 for a missing,
unknown or non-ASCII key, 404 for a session that does not exist or belongs to another tenant.
A server that cannot send an HTTP denial closes right after accepting with 4400 / 4401 / 4404.
Close codes afterwards: 1000 the call ended (after ``session_closed``), 1009 a frame over
``serve.max_frame_bytes`` (audio) or ``serve.max_control_bytes`` (text; the proxy's frame
parser refuses larger ones before buffering them), 4503 the session became unreachable
(reconnect with ``last_seq``), 4408 the client fell behind its events by more than
``serve.max_outbound_bytes`` or did not read for ``serve.max_send_stall_s`` (reconnect with
``last_seq``; a client that reads nothing at all just sees the connection end, 1006), 1011 an
internal error (logged with the session id). A client that sees any code but 1000, 1009 or
4400-4404 reconnects (with backoff) and resumes as above: that also covers an ingress replica
going away (redeploy, scale-down, a lost node).
"""

from __future__ import annotations

import json
import struct
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "BLOCKED_EXTRA_KEYS",
    "LIMITS",
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

#: The API's size limits, in one place (the error for each names the field and the limit).
LIMITS = {
    "instructions_chars": 32_000,
    "metadata_bytes": 8_192,
    "metadata_depth": 4,
    "client_tools": 32,
    "client_tool_bytes": 16_384,
    "tools": 64,
    "extra_keys": 32,
    "extra_bytes": 16_384,
    "text_chars": 8_000,
    "tool_result_chars": 100_000,
    "id_chars": 256,
    "played_ms": 86_400_000,
}

#: Session ids, chosen by the service (uuid hex) or by the client.
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"

#: Model and voice names: what providers use, nothing that could change a URL or a path.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _bounded(name: str, max_bytes: int, max_depth: int | None = None) -> AfterValidator:
    def check(value: Any) -> Any:
        if max_depth is not None and _depth(value) > max_depth:
            raise ValueError(f"{name} is nested deeper than {max_depth} levels")
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > max_bytes:
            raise ValueError(f"{name} is {size} bytes as JSON; the limit is {max_bytes}")
        return value

    return AfterValidator(check)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ClientToolIn(_Strict):
    """A tool the client runs itself (its calls arrive as events; answer with tool_result)."""

    name: ToolName
    description: Annotated[str, Field(max_length=1024)] = ""
    parameters: Annotated[
        dict[str, Any], _bounded("parameters", LIMITS["client_tool_bytes"], max_depth=16)
    ] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class CreateSession(_Strict):
    """``POST /v1/sessions``."""

    session_id: Annotated[str, Field(pattern=SESSION_ID_PATTERN)] | None = None
    """Optional id chosen by the caller (idempotent: the same id gets the same session)."""
    provider: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")] | None = None
    model: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    voice: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    instructions: Annotated[str, Field(max_length=LIMITS["instructions_chars"])] | None = None
    tools: Annotated[list[ToolName], Field(max_length=LIMITS["tools"])] | None = None
    """Server tools (from the configured pools) to enable; default all the tenant may use,
    ``[]`` none."""
    client_tools: Annotated[list[ClientToolIn], Field(max_length=LIMITS["client_tools"])] = Field(
        default_factory=list
    )
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] = 24000
    audio_format: Literal["pcm16", "pcmu"] = "pcm16"
    """The session's audio, both ways: ``"pcm16"`` (default; 16-bit little-endian PCM at
    ``sample_rate``) or ``"pcmu"`` (G.711 mu-law, as phone networks carry it), which needs
    ``sample_rate`` 8000 (else a 400 naming both). mu-law passes straight to providers that take
    it (OpenAI Realtime) and is transcoded for the others."""
    metadata: Annotated[
        dict[str, Any],
        _bounded("metadata", LIMITS["metadata_bytes"], max_depth=LIMITS["metadata_depth"]),
    ] = Field(default_factory=dict)
    """Caller metadata kept with the session and given to tools (caller id, queue, accounts)."""
    extra: Annotated[
        dict[str, Any],
        Field(max_length=LIMITS["extra_keys"]),
        _bounded("extra", LIMITS["extra_bytes"], max_depth=8),
    ] = Field(default_factory=dict)
    """Provider settings from the provider's client allowlist (turn detection, transcription,
    ...); never keys, URLs or limits."""
    failover: (
        Annotated[list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]], Field(max_length=4)]
        | None
    ) = None
    """Providers to continue the call on, in order, if ``provider`` fails for good (quota,
    billing, a refused key, a retired model, reconnects exhausted); each with the service's
    settings for it. Default: the tenant's or the service's ``failover``; ``[]``: none."""


Id = Annotated[str, Field(min_length=1, max_length=LIMITS["id_chars"])]


class TextMessage(_Strict):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=LIMITS["text_chars"])]


class InterruptMessage(_Strict):
    type: Literal["interrupt"]


class EndTurnMessage(_Strict):
    type: Literal["end_turn"]


class PlaybackMessage(_Strict):
    type: Literal["playback"]
    item_id: Id
    played_ms: Annotated[float, Field(ge=0, le=LIMITS["played_ms"], allow_inf_nan=False)]


class ToolResultMessage(_Strict):
    type: Literal["tool_result"]
    call_id: Id
    content: Annotated[str, Field(max_length=LIMITS["tool_result_chars"])]
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
    """``(seq, item_id, audio)`` from a server audio frame (for clients and tests); the audio
    is in the session's format."""
    seq, length = _AUDIO_HEADER.unpack_from(frame)
    start = _AUDIO_HEADER.size
    return seq, frame[start : start + length].decode(), frame[start + length :]
