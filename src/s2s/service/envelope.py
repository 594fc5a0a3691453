"""The versioned msgpack envelope every session event travels in.

``{"v": 1, "sid": session id, "seq": n, "ts": unix seconds, "type": kind, "data": {...}}``

``seq`` starts at 1 and increases by one per event of a session, so a subscriber that saw ``n``
can ask for everything after ``n`` and notice any gap. ``type`` is a
:class:`~s2s.events.EventType` value for session events, or one of the service kinds
(``session_started``, ``session_closed``, ``tool_result``, ``events_lost``, ``dtmf``, ``turn``).
``data`` is :meth:`SessionEvent.to_dict` without its ``type`` (audio stays raw bytes).

``turn`` (a contract with the console; docs/observability.md) is published when a turn
completes (its answer ended and played out, it was interrupted, or the call ended mid-turn)::

    {"turn": n, "opened_at": unix_s, "first_audio_at": unix_s | null,
     "response_latency_ms": float | null, "interrupted": bool, "reason": str,
     "tools": [{"call_id", "name", "latency_ms", "worker", "is_error", "outcome"}]}

``opened_at`` is when the caller stopped speaking (or sent text), ``first_audio_at`` when the
answer's first audio went to the caller; ``reason`` is the answer's ``turn_end`` reason
(``completed``, ``cancelled``, ...), ``interrupted``, ``superseded`` or ``call_ended``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..errors import ProviderProtocolError
from ..events import EventType, SessionEvent

__all__ = ["SERVICE_TYPES", "VERSION", "Envelope"]

VERSION = 1

#: Envelope types that are not session events.
SERVICE_TYPES = frozenset(
    {"session_started", "session_closed", "tool_result", "events_lost", "dtmf", "turn"}
)

_EVENT_TYPES = frozenset(t.value for t in EventType)


@dataclass(frozen=True, slots=True)
class Envelope:
    session_id: str
    seq: int
    ts: float
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, session_id: str, seq: int, ts: float, event: SessionEvent) -> Envelope:
        data = event.to_dict()
        kind = data.pop("type")
        return cls(session_id, seq, ts, kind, data)

    def event(self) -> SessionEvent | None:
        """The session event inside (``None`` for service envelopes)."""
        if self.type not in _EVENT_TYPES:
            return None
        return SessionEvent.from_dict({"type": self.type, **self.data})

    @property
    def audio(self) -> bytes | None:
        audio = self.data.get("audio") if self.type == EventType.AUDIO_OUTPUT.value else None
        return audio if isinstance(audio, bytes) else None

    def pack(self) -> bytes:
        return bytes(
            msgpack.packb(
                {
                    "v": VERSION,
                    "sid": self.session_id,
                    "seq": self.seq,
                    "ts": self.ts,
                    "type": self.type,
                    "data": self.data,
                },
                use_bin_type=True,
            )
        )

    @classmethod
    def unpack(cls, raw: bytes) -> Envelope:
        """Decode an envelope; a newer major version or a malformed one is an error."""
        try:
            doc = msgpack.unpackb(raw, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise ProviderProtocolError(f"not a msgpack envelope: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            version = doc.get("v") if isinstance(doc, dict) else None
            raise ProviderProtocolError(f"unsupported envelope version {version!r}")
        return cls(
            doc["sid"], int(doc["seq"]), float(doc["ts"]), doc["type"], doc.get("data") or {}
        )

    def to_json(self, *, include_audio: bool = True) -> dict[str, Any]:
        """JSON-friendly form (audio as base64) for WebSocket text frames and SSE."""
        data = dict(self.data)
        if "audio" in data:
            if include_audio and isinstance(data["audio"], bytes):
                data["audio"] = base64.b64encode(data["audio"]).decode("ascii")
            else:
                data.pop("audio")
        return {"seq": self.seq, "ts": self.ts, "type": self.type, **data}
