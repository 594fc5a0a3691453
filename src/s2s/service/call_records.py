"""The records of a call the session actor publishes: the call summary, completed turns and
their tool calls (plain frozen data, ``to_dict()`` for msgpack and JSON), the call states, and
the pacing of summaries. Filled in by :class:`~s2s.service.call_watch.CallWatch`; the contracts
the console and other readers rely on are in docs/observability.md.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CallState",
    "CallSummary",
    "Change",
    "OpenTurn",
    "SummaryPacer",
    "ToolStat",
    "TurnRecord",
    "ms",
]


class CallState(enum.StrEnum):
    STARTING = "starting"
    LISTENING = "listening"
    CALLER_SPEAKING = "caller_speaking"
    MODEL_SPEAKING = "model_speaking"
    TOOL_RUNNING = "tool_running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class ToolStat:
    """One tool call of a turn. ``outcome``: ``pending``, ``ok``, ``error`` or ``cancelled``."""

    call_id: str
    name: str
    latency_ms: float | None = None
    worker: str = ""
    is_error: bool = False
    outcome: str = "pending"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A completed turn: the data of the ``turn`` envelope."""

    turn: int
    opened_at: float
    first_audio_at: float | None
    response_latency_ms: float | None
    interrupted: bool
    tools: tuple[ToolStat, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tools"] = [tool.to_dict() for tool in self.tools]
        return out


@dataclass(frozen=True, slots=True)
class CallSummary:
    """What the call list shows of one call (meta field ``call`` and the calls channels)."""

    session_id: str
    tenant: str
    provider: str
    model: str
    state: str
    started_at: float
    turns: int
    barge_ins: int
    last_response_latency_ms: float | None
    errors: int
    last_error: dict[str, str] | None
    resumptions: int
    failovers: int
    first_audio_ms: float | None
    updated_at: float
    ended: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ms(seconds: float) -> float:
    """Seconds as milliseconds, to 0.1 ms."""
    return round(seconds * 1000, 1)


@dataclass(frozen=True, slots=True)
class Change:
    """What one input changed. ``summary``: the state or a count changed (publish it)."""

    summary: bool = False
    opened: int | None = None
    response_latency_ms: float | None = None
    first_audio_ms: float | None = None
    barge_in: bool = False
    completed: tuple[TurnRecord, ...] = ()
    tool_started: ToolStat | None = None
    tool_finished: ToolStat | None = None
    resumed: str | None = None
    switched: tuple[str, str] | None = None


@dataclass(slots=True)
class OpenTurn:
    """A turn in progress (mutable: only :class:`~.call_watch.CallWatch` holds one)."""

    number: int
    opened_at: float
    first_audio_at: float | None = None
    interrupted: bool = False
    caller_resumed: bool = False  # the caller spoke again before any answer audio
    ending: str = ""  # its answer ended (this reason) and is still playing out
    tools: dict[str, ToolStat] = field(default_factory=dict)

    def record(self, reason: str) -> TurnRecord:
        latency = None if self.first_audio_at is None else self.first_audio_at - self.opened_at
        return TurnRecord(
            self.number,
            self.opened_at,
            self.first_audio_at,
            None if latency is None else ms(latency),
            self.interrupted,
            tuple(self.tools.values()),
            reason,
        )


class SummaryPacer:
    """At most one summary per ``interval_s`` for a call; the last change always goes out.

    :meth:`changed` says how long to wait before publishing (``0``: now), or None when a publish
    is already due (it will carry this change: the summary is built when it is sent); the
    publisher calls :meth:`published` when it sends one.
    """

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self._last = -math.inf
        self._due = False

    def changed(self, at: float) -> float | None:
        if self._due:
            return None
        self._due = True
        return max(0.0, self._last + self.interval_s - at)

    def published(self, at: float) -> None:
        self._last = at
        self._due = False
