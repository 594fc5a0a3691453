"""Twilio Media Streams wire messages, as Twilio writes and checks them (sans-I/O).

Twilio → server (we build them): ``connected``, ``start``, ``media``, ``dtmf``, ``mark`` (an
echo) and ``stop``, as JSON text. Every value is a string except ``mediaFormat.sampleRate``,
``mediaFormat.channels`` and arrays; ``sequenceNumber`` starts at ``"1"`` on ``start``.

Server → Twilio (we check them strictly, like Twilio): text frames only, valid JSON, an
``event`` in {media, mark, clear}, exactly the documented keys, the call's ``streamSid``, a
base64 ``media.payload`` and a string ``mark.name``. :func:`parse_server_message` raises
:class:`MessageRejected` with the Twilio code the platform would log: 31950 for a binary or
malformed (non-JSON) frame, 31951 for a wrong schema, event or ``streamSid``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DTMF_DIGITS",
    "FRAME_BYTES",
    "FRAME_MS",
    "MALFORMED",
    "INVALID",
    "MessageRejected",
    "ServerClear",
    "ServerMark",
    "ServerMedia",
    "ServerMessage",
    "connected",
    "dtmf",
    "excerpt",
    "mark_echo",
    "media",
    "new_sid",
    "parse_server_message",
    "start",
    "stop",
]

#: Twilio error codes for what the server sends.
MALFORMED = 31950
INVALID = 31951

#: Caller audio frame: 20 ms of 8 kHz μ-law.
FRAME_MS = 20
FRAME_BYTES = 160

#: Digits a ``dtmf`` message can carry.
DTMF_DIGITS = frozenset("0123456789*#")

_TOP_KEYS: dict[str, frozenset[str]] = {
    "media": frozenset({"event", "streamSid", "media"}),
    "mark": frozenset({"event", "streamSid", "mark"}),
    "clear": frozenset({"event", "streamSid"}),
}
_INNER_KEYS: dict[str, frozenset[str]] = {
    "media": frozenset({"payload"}),
    "mark": frozenset({"name"}),
}


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits (``MZ…``, ``CA…``, ``AC…``)."""
    return prefix + secrets.token_hex(16)


# -- Twilio → server ---------------------------------------------------------------------------


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def connected() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start(
    seq: int,
    stream_sid: str,
    account_sid: str,
    call_sid: str,
    custom_parameters: dict[str, str],
) -> str:
    return _dump(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "start": {
                "streamSid": stream_sid,
                "accountSid": account_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": dict(custom_parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def media(seq: int, stream_sid: str, chunk: int, timestamp_ms: int, payload: bytes) -> str:
    return _dump(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(payload).decode("ascii"),
            },
        }
    )


def dtmf(seq: int, stream_sid: str, digit: str) -> str:
    if digit not in DTMF_DIGITS:
        raise ValueError(f"DTMF digit must be one of 0-9, * or #, got {digit!r}")
    return _dump(
        {
            "event": "dtmf",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def mark_echo(seq: int, stream_sid: str, name: str) -> str:
    return _dump(
        {
            "event": "mark",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "mark": {"name": name},
        }
    )


def stop(seq: int, stream_sid: str, account_sid: str, call_sid: str) -> str:
    return _dump(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )


# -- server → Twilio ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerMedia:
    """Bot audio (μ-law 8 kHz bytes) to queue for playback."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class ServerMark:
    """A mark to queue after the audio sent before it."""

    name: str


@dataclass(frozen=True, slots=True)
class ServerClear:
    """Drop the queued audio and echo every pending mark."""


ServerMessage = ServerMedia | ServerMark | ServerClear


def excerpt(frame: str | bytes, limit: int = 200) -> str:
    """``frame`` as text for a log or a violation, cut to ``limit`` characters."""
    text = repr(frame) if isinstance(frame, bytes) else frame
    return text if len(text) <= limit else text[:limit] + "…"


class MessageRejected(Exception):
    """A server message Twilio would refuse; ``code`` is 31950 or 31951."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Twilio {code}: {reason}")
        self.code = code
        self.reason = reason


def _check_keys(where: str, obj: dict[str, Any], expected: frozenset[str]) -> None:
    missing = sorted(expected - obj.keys())
    extra = sorted(obj.keys() - expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise MessageRejected(INVALID, f"{where}: {', '.join(parts)}")


def _object(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MessageRejected(INVALID, f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def parse_server_message(frame: str | bytes, stream_sid: str | None) -> ServerMessage:
    """Check one frame from the server like Twilio does.

    ``stream_sid`` is the call's ``streamSid``, or None before ``start`` was sent (then every
    message is refused: the server cannot know the streamSid yet).
    """
    if isinstance(frame, bytes | bytearray | memoryview):
        raise MessageRejected(
            MALFORMED, f"binary frame ({len(frame)} bytes); Twilio takes JSON text"
        )
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise MessageRejected(
            MALFORMED, f"frame is not valid JSON ({exc}): {frame[:80]!r}"
        ) from None
    message = _object("message", message)
    event = message.get("event")
    if not isinstance(event, str) or event not in _TOP_KEYS:
        raise MessageRejected(INVALID, f"unknown event {event!r}; expected media, mark or clear")
    if stream_sid is None:
        raise MessageRejected(INVALID, f"{event!r} before start: no streamSid was issued yet")
    _check_keys(f"{event} message", message, _TOP_KEYS[event])
    if message["streamSid"] != stream_sid:
        raise MessageRejected(
            INVALID,
            f"{event} streamSid {message['streamSid']!r} is not this stream's {stream_sid!r}",
        )
    if event == "clear":
        return ServerClear()
    inner = _object(f"{event}.{event}", message[event])
    _check_keys(f"{event}.{event}", inner, _INNER_KEYS[event])
    if event == "mark":
        name = inner["name"]
        if not isinstance(name, str):
            raise MessageRejected(INVALID, f"mark.name must be a string, got {type(name).__name__}")
        return ServerMark(name)
    payload = inner["payload"]
    if not isinstance(payload, str):
        raise MessageRejected(
            INVALID, f"media.payload must be a base64 string, got {type(payload).__name__}"
        )
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MessageRejected(INVALID, f"media.payload is not valid base64 ({exc})") from None
    return ServerMedia(audio)
