"""Twilio Media Streams, the server side of a bidirectional ``<Connect><Stream>`` (sans-I/O).

:func:`parse` turns one text frame from Twilio into a typed message (``connected``, ``start``,
``media``, ``dtmf``, ``mark``, ``stop``) or raises :class:`TwilioProtocolError` naming what was
wrong. :class:`TwilioStream` builds the only three messages Twilio accepts from us (``media``,
``mark``, ``clear``), exactly as documented: no extra fields, the stream's own ``streamSid``,
and nothing before ``start`` has told us that sid. Twilio answers anything else with warning
31951 and plays nothing, so the builders refuse rather than send it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "Start",
    "Stop",
    "TwilioMessage",
    "TwilioProtocolError",
    "TwilioStream",
    "parse",
]

#: The only inbound format Twilio sends on ``<Connect><Stream>``.
MULAW = "audio/x-mulaw"
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class TwilioProtocolError(ValueError):
    """A message from Twilio (or our own use of the stream) that breaks the protocol."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(hash=False)
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes
    """μ-law audio."""
    timestamp_ms: int
    """Milliseconds since the stream began (jumps over carrier silence)."""
    chunk: int
    track: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str


TwilioMessage = Connected | Start | Media | Dtmf | Mark | Stop


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"{where} must be a JSON object")
    return value


def _string(document: dict[str, Any], key: str, where: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise TwilioProtocolError(f"{where}.{key} must be a string, got {value!r}")
    return value


def _number(document: dict[str, Any], key: str, where: str) -> int:
    raw = _string(document, key, where)
    if not raw.isdigit():
        raise TwilioProtocolError(f"{where}.{key} must be a decimal string, got {raw!r}")
    return int(raw)


def parse(text: str) -> TwilioMessage:
    """One Twilio text frame as a typed message. Unknown fields are tolerated (Twilio adds
    fields over time); missing or mistyped ones are a :class:`TwilioProtocolError`."""
    try:
        document = _object(json.loads(text), "message")
    except ValueError as exc:
        if isinstance(exc, TwilioProtocolError):
            raise
        raise TwilioProtocolError(f"not JSON: {exc}") from None
    event = document.get("event")
    if event == "connected":
        return Connected(protocol=str(document.get("protocol", "")))
    if event == "media":
        media = _object(document.get("media"), "media")
        try:
            payload = base64.b64decode(_string(media, "payload", "media"), validate=True)
        except binascii.Error as exc:
            raise TwilioProtocolError(f"media.payload is not base64: {exc}") from None
        return Media(
            payload=payload,
            timestamp_ms=_number(media, "timestamp", "media"),
            chunk=_number(media, "chunk", "media"),
            track=str(media.get("track", "inbound")),
        )
    if event == "start":
        start = _object(document.get("start"), "start")
        fmt = _object(start.get("mediaFormat"), "start.mediaFormat")
        params = _object(start.get("customParameters", {}), "start.customParameters")
        tracks = start.get("tracks", [])
        if not isinstance(tracks, list):
            raise TwilioProtocolError("start.tracks must be a list")
        rate, channels = fmt.get("sampleRate"), fmt.get("channels")
        if not isinstance(rate, int) or not isinstance(channels, int):
            raise TwilioProtocolError("start.mediaFormat needs integer sampleRate and channels")
        return Start(
            stream_sid=_string(document, "streamSid", "start"),
            account_sid=_string(start, "accountSid", "start"),
            call_sid=_string(start, "callSid", "start"),
            tracks=tuple(str(t) for t in tracks),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            encoding=_string(fmt, "encoding", "start.mediaFormat"),
            sample_rate=rate,
            channels=channels,
        )
    if event == "dtmf":
        digit = _string(_object(document.get("dtmf"), "dtmf"), "digit", "dtmf")
        if digit not in DTMF_DIGITS:
            raise TwilioProtocolError(f"dtmf.digit {digit!r} is not a key")
        return Dtmf(digit)
    if event == "mark":
        return Mark(_string(_object(document.get("mark"), "mark"), "name", "mark"))
    if event == "stop":
        stop = document.get("stop")
        call_sid = stop.get("callSid", "") if isinstance(stop, dict) else ""
        return Stop(call_sid=str(call_sid))
    raise TwilioProtocolError(f"unknown event {event!r}")


class TwilioStream:
    """One stream's outbound messages, and the checks on the ``start`` that opens it."""

    __slots__ = ("stream_sid",)

    def __init__(self) -> None:
        self.stream_sid: str | None = None

    def started(self, start: Start) -> None:
        """Accept the stream's ``start``; raises if its media format is not 8 kHz mono μ-law."""
        if self.stream_sid is not None:
            raise TwilioProtocolError("a second start on one stream")
        if (start.encoding, start.sample_rate, start.channels) != (MULAW, 8000, 1):
            raise TwilioProtocolError(
                f"unsupported media format {start.encoding}/{start.sample_rate}/"
                f"{start.channels}; expected {MULAW}/8000/1"
            )
        self.stream_sid = start.stream_sid

    def _sid(self) -> str:
        if self.stream_sid is None:
            raise TwilioProtocolError("nothing may be sent before Twilio's start")
        return self.stream_sid

    def media(self, ulaw: bytes) -> str:
        payload = base64.b64encode(ulaw).decode()
        return json.dumps(
            {"event": "media", "streamSid": self._sid(), "media": {"payload": payload}},
            separators=(",", ":"),
        )

    def mark(self, name: str) -> str:
        return json.dumps(
            {"event": "mark", "streamSid": self._sid(), "mark": {"name": name}},
            separators=(",", ":"),
        )

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self._sid()}, separators=(",", ":"))
