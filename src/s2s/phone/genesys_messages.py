"""AudioHook v2 text messages as the Genesys client sees them: encoding ours, checking the server's.

Every text message carries ``version:"2"``, ``id`` (the session UUID), ``type``, ``seq`` and a
``parameters`` object. Ours add ``serverseq`` and ``position``; the server's add ``clientseq`` and
never ``position``. :func:`parse_server_message` checks one server message on its own (framing,
type, parameters per type) and :func:`check_sequence` checks its place in the session; both raise
:class:`ProtocolViolation` carrying the ``error`` code the client answers with. Durations are
ISO-8601 in seconds only (``PT0S``, ``PT12.48S``). Sans-I/O: no sockets, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, cast, get_args

__all__ = [
    "CLIENT_ONLY_TYPES",
    "DEFAULT_MEDIA_OFFER",
    "DISCONNECT_REASONS",
    "MAX_TEXT_BYTES",
    "NIL_UUID",
    "DisconnectParams",
    "EventEntity",
    "EventParams",
    "MediaFormat",
    "OpenedParams",
    "ProtocolViolation",
    "ServerMessage",
    "ServerType",
    "check_opened_media",
    "check_sequence",
    "encode_client_message",
    "format_duration",
    "parse_duration",
    "parse_server_message",
    "peek",
]

VERSION: Final = "2"
NIL_UUID: Final = "00000000-0000-0000-0000-000000000000"
#: Largest text frame either side accepts (the client answers a longer one with 413).
MAX_TEXT_BYTES: Final = 64 * 1024
#: The Audio Connector offer: caller channel only, PCMU 8 kHz.
DEFAULT_MEDIA_OFFER: Final[tuple[Mapping[str, object], ...]] = (
    {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
)

ServerType = Literal[
    "opened", "pong", "closed", "pause", "resume", "updated", "event", "disconnect"
]
SERVER_TYPES: Final = frozenset(get_args(ServerType))
#: Types that exist only client -> server: a server sending one has a bug.
CLIENT_ONLY_TYPES: Final = frozenset(
    {
        "open",
        "ping",
        "close",
        "paused",
        "resumed",
        "discarded",
        "update",
        "error",
        "dtmf",
        "playback_started",
        "playback_completed",
    }
)
DISCONNECT_REASONS: Final = frozenset({"completed", "unauthorized", "error"})
BOT_TURN_DISPOSITIONS: Final = frozenset({"match", "no_match", "no_input"})

_DURATION = re.compile(r"^PT(\d*\.)?\d+S$")


class ProtocolViolation(Exception):
    """A server message the Genesys client rejects; ``code`` is the ``error`` code it sends."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def format_duration(seconds: float) -> str:
    """``PT<seconds>S`` with at most millisecond precision: ``PT0S``, ``PT1.234S``, ``PT9S``."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and >= 0, got {seconds!r}")
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def parse_duration(text: object, what: str = "duration") -> float:
    """Seconds of an ISO-8601 ``PT…S`` duration; :class:`ProtocolViolation` when malformed."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ProtocolViolation(f"{what} must be an ISO-8601 duration like 'PT1.5S', got {text!r}")
    return float(text[2:-1])


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """One media entry: ``{type, format, channels, rate}``."""

    type: str
    format: str
    channels: tuple[str, ...]
    rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.format == "PCMU" else 2

    def frame_bytes(self, ms: float) -> int:
        """Bytes of ``ms`` milliseconds of audio on all channels (200 ms PCMU mono = 1600)."""
        return round(self.rate * ms / 1000) * self.bytes_per_sample * len(self.channels)

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "format": self.format,
            "channels": list(self.channels),
            "rate": self.rate,
        }

    @classmethod
    def from_json(cls, entry: object) -> MediaFormat:
        """Parse and check one entry: audio, PCMU or L16, 1-2 known channels, 8000 Hz."""
        if not isinstance(entry, Mapping):
            raise ProtocolViolation(f"a media entry must be an object, got {entry!r}")
        kind, fmt, channels, rate = (entry.get(k) for k in ("type", "format", "channels", "rate"))
        if kind != "audio":
            raise ProtocolViolation(f"media type must be 'audio', got {kind!r}")
        if fmt not in ("PCMU", "L16"):
            raise ProtocolViolation(f"media format must be 'PCMU' or 'L16', got {fmt!r}")
        if (
            not isinstance(channels, list)
            or not 1 <= len(channels) <= 2
            or len(set(channels)) != len(channels)
            or any(c not in ("external", "internal") for c in channels)
        ):
            raise ProtocolViolation(
                f"media channels must be 1-2 distinct of 'external'/'internal', got {channels!r}"
            )
        if rate != 8000 or isinstance(rate, bool):
            raise ProtocolViolation(f"media rate must be 8000, got {rate!r}")
        return cls(kind, fmt, tuple(cast(list[str], channels)), 8000)


@dataclass(frozen=True, slots=True)
class OpenedParams:
    """``opened``: the chosen media (raw JSON entries) and the optional flags."""

    media: tuple[Mapping[str, object], ...]
    start_paused: bool = False
    discard_to_s: float | None = None
    supported_languages: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EventEntity:
    """One ``event`` entity, e.g. ``barge_in`` or ``bot_turn_response``."""

    type: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class EventParams:
    entities: tuple[EventEntity, ...]


@dataclass(frozen=True, slots=True)
class DisconnectParams:
    """``disconnect``: why, optional ``info`` and the Audio Connector ``outputVariables``."""

    reason: str
    info: str | None = None
    output_variables: Mapping[str, str] = field(default_factory=dict)


type ServerParams = OpenedParams | EventParams | DisconnectParams | None


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """A server text message that passed :func:`parse_server_message`.

    ``params`` is typed for opened/event/disconnect and ``None`` for the others;
    ``parameters`` is the raw object.
    """

    type: ServerType
    seq: int
    clientseq: int
    params: ServerParams
    parameters: Mapping[str, object]


def encode_client_message(
    *,
    session_id: str,
    type: str,
    seq: int,
    serverseq: int,
    position_s: float,
    parameters: Mapping[str, object] | None = None,
) -> str:
    """A client (Genesys) message as compact JSON text."""
    return json.dumps(
        {
            "version": VERSION,
            "id": session_id,
            "type": type,
            "seq": seq,
            "serverseq": serverseq,
            "position": format_duration(position_s),
            "parameters": dict(parameters or {}),
        },
        separators=(",", ":"),
    )


def _int_field(message: Mapping[str, object], key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolViolation(f"'{key}' must be an integer >= 0, got {value!r}")
    return value


def _opened(parameters: Mapping[str, object]) -> OpenedParams:
    media = parameters.get("media")
    if not isinstance(media, list) or not all(isinstance(m, Mapping) for m in media):
        raise ProtocolViolation(f"opened.media must be a list of objects, got {media!r}")
    start_paused = parameters.get("startPaused", False)
    if not isinstance(start_paused, bool):
        raise ProtocolViolation(f"opened.startPaused must be a boolean, got {start_paused!r}")
    discard_to = parameters.get("discardTo")
    languages = parameters.get("supportedLanguages")
    if languages is not None and (
        not isinstance(languages, list) or not all(isinstance(x, str) for x in languages)
    ):
        raise ProtocolViolation(
            f"opened.supportedLanguages must be a list of strings, got {languages!r}"
        )
    return OpenedParams(
        media=tuple(cast(list[Mapping[str, object]], media)),
        start_paused=start_paused,
        discard_to_s=None if discard_to is None else parse_duration(discard_to, "discardTo"),
        supported_languages=None if languages is None else tuple(languages),
    )


def _entity(entity: object) -> EventEntity:
    if not isinstance(entity, Mapping) or "type" not in entity or "data" not in entity:
        raise ProtocolViolation(f"an event entity must be {{type, data}}, got {entity!r}")
    kind, data = entity["type"], entity["data"]
    if not isinstance(kind, str) or not isinstance(data, Mapping):
        raise ProtocolViolation(f"an event entity needs a string type and object data: {entity!r}")
    if kind == "bot_turn_response":
        if data.get("disposition") not in BOT_TURN_DISPOSITIONS:
            raise ProtocolViolation(
                f"bot_turn_response.disposition must be one of {sorted(BOT_TURN_DISPOSITIONS)}, "
                f"got {data.get('disposition')!r}"
            )
        if "text" in data and not isinstance(data["text"], str):
            raise ProtocolViolation(f"bot_turn_response.text must be a string: {data!r}")
        confidence = data.get("confidence", 0.0)
        if not isinstance(confidence, int | float) or isinstance(confidence, bool):
            raise ProtocolViolation(f"bot_turn_response.confidence must be a number: {data!r}")
    return EventEntity(kind, cast(Mapping[str, object], data))


def _event(parameters: Mapping[str, object]) -> EventParams:
    entities = parameters.get("entities")
    if not isinstance(entities, list) or not entities:
        raise ProtocolViolation(f"event.entities must be a non-empty list, got {entities!r}")
    return EventParams(tuple(_entity(e) for e in entities))


def _disconnect(parameters: Mapping[str, object]) -> DisconnectParams:
    reason = parameters.get("reason")
    if reason not in DISCONNECT_REASONS:
        raise ProtocolViolation(
            f"disconnect.reason must be one of {sorted(DISCONNECT_REASONS)}, got {reason!r}"
        )
    info = parameters.get("info")
    if info is not None and not isinstance(info, str):
        raise ProtocolViolation(f"disconnect.info must be a string, got {info!r}")
    variables = parameters.get("outputVariables", {})
    if not isinstance(variables, Mapping):
        raise ProtocolViolation(f"disconnect.outputVariables must be an object, got {variables!r}")
    bad = {k: v for k, v in variables.items() if not isinstance(v, str)}
    if bad:
        raise ProtocolViolation(
            f"disconnect.outputVariables values must be strings; not strings: {bad!r}"
        )
    return DisconnectParams(reason, info, dict(cast(Mapping[str, str], variables)))


def parse_server_message(text: str, *, session_id: str) -> ServerMessage:
    """Check one server text message on its own; :class:`ProtocolViolation` when it is bad."""
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ProtocolViolation(
            f"text message of {len(text.encode('utf-8'))} bytes exceeds {MAX_TEXT_BYTES}", 413
        )
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolViolation(f"text message is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolViolation(f"text message must be a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    where = f"server message {kind!r}"
    if message.get("version") != VERSION:
        raise ProtocolViolation(f"{where}: version must be '2', got {message.get('version')!r}")
    if message.get("id") != session_id:
        raise ProtocolViolation(f"{where}: id {message.get('id')!r} is not session {session_id}")
    if "parameters" not in message:
        raise ProtocolViolation(f"{where}: 'parameters' is missing (it must always be an object)")
    parameters = message["parameters"]
    if not isinstance(parameters, dict):
        raise ProtocolViolation(f"{where}: 'parameters' must be an object, got {parameters!r}")
    if "position" in message:
        raise ProtocolViolation(f"{where}: a server message must not carry 'position'")
    if kind == "reconnect":
        raise ProtocolViolation("server sent 'reconnect', which Genesys does not implement")
    if kind in CLIENT_ONLY_TYPES:
        raise ProtocolViolation(f"server sent {kind!r}, a client-only message type")
    if kind not in SERVER_TYPES:
        raise ProtocolViolation(f"server sent an unknown message type {kind!r}")
    try:
        seq, clientseq = _int_field(message, "seq"), _int_field(message, "clientseq")
        params: ServerParams = None
        if kind == "opened":
            params = _opened(parameters)
        elif kind == "event":
            params = _event(parameters)
        elif kind == "disconnect":
            params = _disconnect(parameters)
    except ProtocolViolation as exc:
        raise ProtocolViolation(f"{where}: {exc}", exc.code) from None
    return ServerMessage(cast(ServerType, kind), seq, clientseq, params, parameters)


def peek(text: str) -> tuple[str, int | None]:
    """``type`` and ``seq`` of a text message, whatever its validity (``"?"``/``None``)."""
    try:
        message = json.loads(text)
    except ValueError:
        return "?", None
    if not isinstance(message, dict):
        return "?", None
    kind, seq = message.get("type"), message.get("seq")
    return (kind if isinstance(kind, str) else "?"), (seq if type(seq) is int else None)


def check_sequence(message: ServerMessage, *, last_server_seq: int, last_client_seq: int) -> None:
    """``seq`` must be the last one + 1 and ``clientseq`` at most our last ``seq``."""
    if message.seq != last_server_seq + 1:
        issue = "duplicated" if message.seq <= last_server_seq else "skipped"
        raise ProtocolViolation(
            f"server {message.type!r}: seq {message.seq} {issue} (expected {last_server_seq + 1})"
        )
    if message.clientseq > last_client_seq:
        raise ProtocolViolation(
            f"server {message.type!r}: clientseq {message.clientseq} is ahead of the last "
            f"client seq {last_client_seq}"
        )


def check_opened_media(
    opened: OpenedParams, offer: Sequence[Mapping[str, object]], *, probe: bool
) -> MediaFormat | None:
    """The chosen format: exactly one offered entry, unchanged; ``None`` for ``[]`` in a probe."""
    if not opened.media:
        if probe:
            return None
        raise ProtocolViolation("opened.media is empty; it must hold exactly one offered entry")
    if len(opened.media) != 1:
        raise ProtocolViolation(
            f"opened.media must hold exactly one entry, got {len(opened.media)}: "
            f"{list(opened.media)!r}"
        )
    chosen = opened.media[0]
    # Compare as JSON values, so a tuple in the configured offer equals a list on the wire.
    offered = json.loads(json.dumps(list(offer)))
    if json.loads(json.dumps(chosen)) not in offered:
        raise ProtocolViolation(f"opened.media entry {dict(chosen)!r} was not offered: {offered!r}")
    try:
        return MediaFormat.from_json(chosen)
    except ProtocolViolation as exc:
        raise ProtocolViolation(f"opened.media: {exc}") from None
