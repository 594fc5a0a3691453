"""Typed events a session yields.

One frozen, slotted :class:`SessionEvent` type carries every kind of event; ``type`` says which
fields are set. Events are plain data: they pickle, and :meth:`SessionEvent.to_dict` /
:meth:`SessionEvent.from_dict` turn them into msgpack/JSON-friendly dicts and back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors as _errors
from .audio.formats import bytes_per_sample
from .config import ToolCall

__all__ = ["EventType", "Role", "SessionEvent", "Usage"]


class EventType(enum.StrEnum):
    """What a :class:`SessionEvent` reports.

    Output:
        AUDIO_OUTPUT: model speech in the session's format (``event.encoding``: "pcm16" or
            "pcmu") and rate (``event.sample_rate``), mono.
        TEXT_OUTPUT: model text (text-only responses). ``final`` marks the complete text.
        TRANSCRIPT: words spoken by ``role`` ("user" or "assistant"); partial unless ``final``.
    Turn-taking:
        RESPONSE_STARTED: the model began a response (``response_id``).
        SPEECH_STARTED: the caller started speaking (barge-in signal: stop playback now).
        SPEECH_STOPPED: the caller stopped speaking.
        INTERRUPTED: the model's response was cut (caller barge-in or ``interrupt()``);
            discard any queued playback.
        TURN_END: the model finished a response; ``reason`` is "completed", "tool_calls",
            "cancelled", "incomplete" or "failed".
    Tools:
        TOOL_CALL: run ``tool_call`` and answer with ``Session.send_tool_result``.
        TOOL_CALL_CANCELLED: the provider dropped the calls in ``call_ids``; do not answer them.
    Lifecycle and accounting:
        USAGE: token usage of a response (``usage``).
        RATE_LIMITS: the provider's current rate limits (``data["rate_limits"]``).
        SESSION_RESUMED: the call moved to a new provider connection (``reason``,
            ``data["gap_ms"]``); nothing the caller said was lost.
        PROVIDER_SWITCHED: the call moved to the next provider of ``Config.failover`` because
            the previous one failed for good (``reason`` is its error code; ``data`` has
            ``from``, ``to``, ``gap_ms``, ``history_items``, ``buffered_audio_ms``,
            ``pending_tool_calls`` and ``error``).
        ERROR: a non-fatal error (the session continues); fatal errors end ``recv()`` by raising.
    """

    AUDIO_OUTPUT = "audio_output"
    TEXT_OUTPUT = "text_output"
    TRANSCRIPT = "transcript"
    RESPONSE_STARTED = "response_started"
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    INTERRUPTED = "interrupted"
    TURN_END = "turn_end"
    TOOL_CALL = "tool_call"
    TOOL_CALL_CANCELLED = "tool_call_cancelled"
    USAGE = "usage"
    RATE_LIMITS = "rate_limits"
    SESSION_RESUMED = "session_resumed"
    PROVIDER_SWITCHED = "provider_switched"
    ERROR = "error"


class Role(enum.StrEnum):
    """Who spoke or wrote a piece of text."""

    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage, normalised across providers (missing counts are 0)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_audio_tokens: int = 0
    input_text_tokens: int = 0
    output_audio_tokens: int = 0
    output_text_tokens: int = 0
    cached_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__slots__})


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One thing that happened in a session. ``type`` says which of the other fields are set.

    Attributes:
        type: the kind of event.
        audio: mono audio in the session's format (AUDIO_OUTPUT): see ``encoding``.
        sample_rate: the rate of ``audio`` in Hz.
        encoding: the format of ``audio``: ``"pcm16"`` (16-bit little-endian PCM) or
            ``"pcmu"`` (G.711 mu-law, one byte a sample).
        text: text or transcript (TEXT_OUTPUT, TRANSCRIPT).
        role: who spoke (TRANSCRIPT).
        final: True when ``text`` is the complete text of an item rather than a delta.
        tool_call: the call to run (TOOL_CALL).
        call_ids: the calls the provider cancelled (TOOL_CALL_CANCELLED).
        error: the error (ERROR).
        response_id: the provider's response id, where it has one.
        item_id: the provider's conversation item id (use it for playback reports).
        usage: token usage (USAGE).
        reason: why a turn ended, an interruption happened or a session resumed.
        data: other provider details (rate limits, resumption gap, ...).
        at: ``time.monotonic()`` when s2s received the event from the provider.
    """

    type: EventType
    audio: bytes | None = None
    sample_rate: int | None = None
    encoding: str = "pcm16"
    text: str | None = None
    role: Role | None = None
    final: bool = False
    tool_call: ToolCall | None = None
    call_ids: tuple[str, ...] = ()
    error: _errors.S2SError | None = None
    response_id: str | None = None
    item_id: str | None = None
    usage: Usage | None = None
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0

    @property
    def duration_ms(self) -> float:
        """Length of ``audio`` in milliseconds (0 when there is none)."""
        if not self.audio or not self.sample_rate:
            return 0.0
        return len(self.audio) / bytes_per_sample(self.encoding) / self.sample_rate * 1000.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (bytes stay bytes): only the fields that are set, plus ``type``.

        ``encoding`` goes with ``audio`` unless it is ``"pcm16"`` (absent means PCM16).
        """
        out: dict[str, Any] = {"type": self.type.value}
        if self.audio is not None:
            out["audio"] = self.audio
            out["sample_rate"] = self.sample_rate
            if self.encoding != "pcm16":
                out["encoding"] = self.encoding
        if self.text is not None:
            out["text"] = self.text
        if self.role is not None:
            out["role"] = self.role.value
        if self.final:
            out["final"] = True
        if self.tool_call is not None:
            out["tool_call"] = self.tool_call.to_dict()
        if self.call_ids:
            out["call_ids"] = list(self.call_ids)
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.response_id is not None:
            out["response_id"] = self.response_id
        if self.item_id is not None:
            out["item_id"] = self.item_id
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.reason is not None:
            out["reason"] = self.reason
        if self.data:
            out["data"] = dict(self.data)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionEvent:
        """Rebuild an event from :meth:`to_dict` output."""
        error = None
        if (err := data.get("error")) is not None:
            error_cls = getattr(_errors, str(err.get("type")), None)
            if not (isinstance(error_cls, type) and issubclass(error_cls, _errors.S2SError)):
                error_cls = _errors.S2SError
            error = error_cls(
                err.get("message", ""),
                code=err.get("code"),
                provider=err.get("provider"),
                retryable=bool(err.get("retryable", False)),
            )
        return cls(
            type=EventType(data["type"]),
            audio=data.get("audio"),
            sample_rate=data.get("sample_rate"),
            encoding=str(data.get("encoding") or "pcm16"),
            text=data.get("text"),
            role=Role(data["role"]) if data.get("role") else None,
            final=bool(data.get("final", False)),
            tool_call=ToolCall.from_dict(data["tool_call"]) if data.get("tool_call") else None,
            call_ids=tuple(data.get("call_ids", ())),
            error=error,
            response_id=data.get("response_id"),
            item_id=data.get("item_id"),
            usage=Usage.from_dict(data["usage"]) if data.get("usage") else None,
            reason=data.get("reason"),
            data=dict(data.get("data") or {}),
        )
