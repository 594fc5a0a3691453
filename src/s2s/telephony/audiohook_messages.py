"""AudioHook v2 client messages (Audio Connector flavour): parsing, validation, typed events.

:func:`parse_client_message` turns one text frame from Genesys into a :class:`ClientMessage`:
the envelope (``version`` "2", ``id``, ``type``, ``seq``, ``serverseq``, ``position``,
``parameters`` object) checked, and the parameters of its type checked into one of the
:data:`ClientEvent` dataclasses. Stateful rules (sequence numbers, what each state allows, the
organization id) are the engine's (:mod:`.audiohook`). Every violation raises
:class:`AudioHookProtocolError` with the HTTP-like code the protocol uses (400 malformed, 405
not allowed now, 409 out of sequence, 413 too large, 415 bad audio frame) and a message naming
what was wrong. Unknown parameter keys are ignored (forward compatibility).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NoReturn

from .durations import parse_duration

__all__ = [
    "CLIENT_TYPES",
    "MAX_MESSAGE_BYTES",
    "NIL_UUID",
    "AudioHookProtocolError",
    "ClientError",
    "ClientEvent",
    "ClientMessage",
    "CloseRequested",
    "Discarded",
    "Dtmf",
    "OpenRequested",
    "Participant",
    "Paused",
    "Ping",
    "PlaybackCompleted",
    "PlaybackStarted",
    "Resumed",
    "UpdateRequested",
    "parse_client_message",
]

#: Both reference sides reject text frames longer than this (UTF-8 bytes).
MAX_MESSAGE_BYTES = 64 * 1024
NIL_UUID = "00000000-0000-0000-0000-000000000000"
CLOSE_REASONS = frozenset({"end", "error", "disconnect", "reconnect"})
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class AudioHookProtocolError(Exception):
    """A client message (or frame) that breaks the protocol; the session must end.

    ``code`` is the HTTP-like status the protocol uses; :attr:`disconnect_reason` is what the
    server's ``disconnect`` should say (``unauthorized`` for 401, else ``error``).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def disconnect_reason(self) -> Literal["unauthorized", "error"]:
        return "unauthorized" if self.code in (401, 403) else "error"


@dataclass(frozen=True, slots=True)
class Participant:
    """The caller as ``open`` describes it (``ani``/``aniName``/``dnis`` are "" when absent)."""

    id: str
    ani: str
    ani_name: str
    dnis: str


@dataclass(frozen=True, slots=True)
class OpenRequested:
    """``open``: the client offers media; answer with ``open()`` (``opened``) or ``disconnect``."""

    organization_id: str
    conversation_id: str
    participant: Participant
    media: tuple[Mapping[str, object], ...]
    language: str | None
    input_variables: Mapping[str, str]
    custom_config: Mapping[str, object]
    probe: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """``ping``; the engine has already queued the ``pong``. ``rtt_s`` is the last round trip."""

    rtt_s: float | None


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """``close`` (reason end/error/disconnect/reconnect): stop the bot, then call ``closed()``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Paused:
    """``paused``: the client stopped streaming (our ``pause``, hold or secure pause)."""


@dataclass(frozen=True, slots=True)
class Resumed:
    """``resumed``: streaming again; the gap began at ``start_s`` and lasted ``discarded_s``."""

    start_s: float
    discarded_s: float


@dataclass(frozen=True, slots=True)
class Discarded:
    """``discarded``: the client dropped ``discarded_s`` of audio starting at ``start_s``."""

    start_s: float
    discarded_s: float


@dataclass(frozen=True, slots=True)
class UpdateRequested:
    """``update``: the conversation's language changed (``updated()`` may answer)."""

    language: str | None


@dataclass(frozen=True, slots=True)
class ClientError:
    """``error`` from the client; code 429 asks us to back off (``record_rate_limit``)."""

    code: int
    message: str
    retry_after_s: float | None


@dataclass(frozen=True, slots=True)
class Dtmf:
    """``dtmf``: the caller pressed ``digit`` (0-9, *, #; A-D tolerated)."""

    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    """``playback_started``: Genesys began playing our audio."""


@dataclass(frozen=True, slots=True)
class PlaybackCompleted:
    """``playback_completed``: everything we sent has been played."""


type ClientEvent = (
    OpenRequested
    | Ping
    | CloseRequested
    | Paused
    | Resumed
    | Discarded
    | UpdateRequested
    | ClientError
    | Dtmf
    | PlaybackStarted
    | PlaybackCompleted
)


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One validated client text message: its envelope and its typed event."""

    type: str
    seq: int
    server_seq: int
    position_s: float
    event: ClientEvent


def parse_client_message(text: str, session_id: str) -> ClientMessage:
    """Parse and validate one client text frame of session ``session_id`` (no state checks)."""
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        _fail(413, f"text message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        _fail(400, f"text message is not valid JSON: {exc}")
    if not isinstance(data, dict):
        _fail(400, "text message is not a JSON object")
    if data.get("version") != "2":
        _fail(400, f'version must be "2", not {data.get("version")!r}')
    if data.get("id") != session_id:
        _fail(400, f"id {data.get('id')!r} is not this session's id {session_id!r}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _PARSERS:
        _fail(400, f"unknown message type {kind!r}")
    seq = _non_negative_int(data, "seq", kind)
    server_seq = _non_negative_int(data, "serverseq", kind)
    position = data.get("position")
    if not isinstance(position, str):
        _fail(400, f"{kind}: position missing or not a duration string")
    position_s = _duration(position, f"{kind}: position")
    params = data.get("parameters")
    if not isinstance(params, dict):
        _fail(400, f"{kind}: parameters missing or not an object")
    return ClientMessage(kind, seq, server_seq, position_s, _PARSERS[kind](params))


def _open(p: dict[str, object]) -> OpenRequested:
    organization_id = _uuid(p, "organizationId")
    conversation_id = _uuid(p, "conversationId")
    who = p.get("participant")
    if not isinstance(who, dict):
        _fail(400, "open: participant missing or not an object")
    participant = Participant(
        id=_uuid(who, "id", "open: participant.id"),
        ani=_optional_str(who, "ani", "open: participant.ani") or "",
        ani_name=_optional_str(who, "aniName", "open: participant.aniName") or "",
        dnis=_optional_str(who, "dnis", "open: participant.dnis") or "",
    )
    media = p.get("media")
    if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
        _fail(400, "open: media missing or not a list of objects")
    variables = p.get("inputVariables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        _fail(400, "open: inputVariables must be an object of string values")
    config = p.get("customConfig", {})
    if not isinstance(config, dict):
        _fail(400, "open: customConfig must be an object")
    return OpenRequested(
        organization_id=organization_id,
        conversation_id=conversation_id,
        participant=participant,
        media=tuple(MappingProxyType(m) for m in media),
        language=_optional_str(p, "language", "open: language"),
        input_variables=MappingProxyType(variables),
        custom_config=MappingProxyType(config),
        probe=conversation_id == NIL_UUID and participant.id == NIL_UUID,
    )


def _ping(p: dict[str, object]) -> Ping:
    rtt = p.get("rtt")
    if rtt is None:
        return Ping(None)
    if not isinstance(rtt, str):
        _fail(400, f"ping: rtt must be a duration string, not {rtt!r}")
    return Ping(_duration(rtt, "ping: rtt"))


def _close(p: dict[str, object]) -> CloseRequested:
    reason = p.get("reason")
    if not isinstance(reason, str) or reason not in CLOSE_REASONS:
        _fail(400, f"close: reason must be one of {sorted(CLOSE_REASONS)}, not {reason!r}")
    return CloseRequested(reason)


def _span(p: dict[str, object], kind: str) -> tuple[float, float]:
    start, discarded = p.get("start"), p.get("discarded")
    if not isinstance(start, str) or not isinstance(discarded, str):
        _fail(400, f"{kind}: start and discarded must be duration strings")
    return _duration(start, f"{kind}: start"), _duration(discarded, f"{kind}: discarded")


def _update(p: dict[str, object]) -> UpdateRequested:
    return UpdateRequested(_optional_str(p, "language", "update: language"))


def _error(p: dict[str, object]) -> ClientError:
    code, message, retry_after = p.get("code"), p.get("message", ""), p.get("retryAfter")
    if isinstance(code, bool) or not isinstance(code, int):
        _fail(400, f"error: code must be an integer, not {code!r}")
    if not isinstance(message, str):
        _fail(400, "error: message must be a string")
    if retry_after is not None and not isinstance(retry_after, str):
        _fail(400, "error: retryAfter must be a duration string")
    retry_s = None if retry_after is None else _duration(retry_after, "error: retryAfter")
    return ClientError(code, message, retry_s)


def _dtmf(p: dict[str, object]) -> Dtmf:
    digit = p.get("digit")
    if not isinstance(digit, str) or digit not in DTMF_DIGITS or len(digit) != 1:
        _fail(400, f"dtmf: digit must be one of 0-9, *, #, A-D, not {digit!r}")
    return Dtmf(digit)


_PARSERS: dict[str, Callable[[dict[str, object]], ClientEvent]] = {
    "open": _open,
    "ping": _ping,
    "close": _close,
    "paused": lambda p: Paused(),
    "resumed": lambda p: Resumed(*_span(p, "resumed")),
    "discarded": lambda p: Discarded(*_span(p, "discarded")),
    "update": _update,
    "error": _error,
    "dtmf": _dtmf,
    "playback_started": lambda p: PlaybackStarted(),
    "playback_completed": lambda p: PlaybackCompleted(),
}
#: The message types a client may send.
CLIENT_TYPES = frozenset(_PARSERS)


def _fail(code: int, message: str) -> NoReturn:
    raise AudioHookProtocolError(code, message)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _non_negative_int(data: Mapping[str, object], key: str, kind: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(400, f"{kind}: {key} must be an integer ≥ 0, not {value!r}")
    return value


def _duration(value: str, what: str) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        _fail(400, f"{what} is not a duration (PT<seconds>S): {value!r}")


def _uuid(data: Mapping[str, object], key: str, what: str | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        _fail(400, f"{what or 'open: ' + key} must be a UUID, not {value!r}")
    return value


def _optional_str(data: Mapping[str, object], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        _fail(400, f"{what} must be a string, not {value!r}")
    return value
