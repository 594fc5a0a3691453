"""What a simulated Genesys call saw and did: the timeline, the outcome and the errors it raises.

Times are ``time.monotonic()`` seconds, the clock the simulator runs on, so a test can compare
them with its own readings. The simulator only appends to a :class:`GenesysTimeline`; tests read
it (typically inside ``GenesysCall.wait_for``). :class:`GenesysOutcome` is the end result that
Architect would act on: who ended the call, the ``disconnect`` reason, ``outputVariables`` and
every protocol violation seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .genesys_messages import MediaFormat

__all__ = [
    "BargeIn",
    "BotFrame",
    "EndedBy",
    "GenesysConnectError",
    "GenesysError",
    "GenesysOutcome",
    "GenesysSessionError",
    "GenesysTimeline",
    "OpenedInfo",
    "RateLimitSent",
    "TextRecord",
]

Direction = Literal["in", "out"]
#: ``caller``: we sent ``close{end}`` (hang-up, probe); ``server``: it sent ``disconnect``;
#: ``error``: the session was aborted (violation, deadline missed, socket lost).
EndedBy = Literal["caller", "server", "error"]


@dataclass(frozen=True, slots=True)
class TextRecord:
    """One text message, sent (``out``) or received (``in``)."""

    at: float
    direction: Direction
    type: str
    seq: int | None
    text: str

    @property
    def parameters(self) -> Mapping[str, object]:
        """The message's ``parameters`` object (empty when it had none or was not JSON)."""
        try:
            message = json.loads(self.text)
        except json.JSONDecodeError:
            return {}
        params = message.get("parameters") if isinstance(message, dict) else None
        return params if isinstance(params, dict) else {}


@dataclass(frozen=True, slots=True)
class BotFrame:
    """A binary frame of bot audio from the server."""

    at: float
    size: int


@dataclass(frozen=True, slots=True)
class BargeIn:
    """A ``barge_in`` event: how much queued bot audio it discarded."""

    at: float
    discarded_ms: float
    was_playing: bool


@dataclass(frozen=True, slots=True)
class RateLimitSent:
    """An ``error`` 429 we sent because bot frames arrived too fast."""

    at: float
    frames_in_window: int
    retry_after_s: float


@dataclass(slots=True)
class GenesysTimeline:
    """Everything observable about one call, in arrival order."""

    messages: list[TextRecord] = field(default_factory=list)
    bot_frames: list[BotFrame] = field(default_factory=list)
    caller_frames_sent: int = 0
    caller_bytes_sent: int = 0
    playback_started: list[float] = field(default_factory=list)
    playback_completed: list[float] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    rate_limits: list[RateLimitSent] = field(default_factory=list)
    #: Bot frames that arrived inside a ``retryAfter`` window we asked for.
    retry_after_ignored: list[BotFrame] = field(default_factory=list)
    #: Ping round-trip times, seconds.
    rtts: list[float] = field(default_factory=list)

    def sent(self, type: str | None = None) -> list[TextRecord]:
        """Our messages, optionally only those of one ``type``."""
        return [m for m in self.messages if m.direction == "out" and type in (None, m.type)]

    def received(self, type: str | None = None) -> list[TextRecord]:
        """The server's messages, optionally only those of one ``type``."""
        return [m for m in self.messages if m.direction == "in" and type in (None, m.type)]

    @property
    def bot_bytes(self) -> int:
        return sum(frame.size for frame in self.bot_frames)


@dataclass(frozen=True, slots=True)
class OpenedInfo:
    """The server's ``opened``: the chosen format (``None``: ``media:[]`` in a probe)."""

    at: float
    media: MediaFormat | None
    start_paused: bool
    parameters: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class GenesysOutcome:
    """How the call ended."""

    ended_by: EndedBy
    disconnect_reason: str | None
    output_variables: Mapping[str, str]
    info: str | None
    #: ``closed`` answered our ``close`` within the deadline.
    closed_in_time: bool
    violations: tuple[str, ...]

    @property
    def success(self) -> bool:
        """Architect's success path: ``disconnect{completed}`` and a clean protocol run."""
        return (
            self.ended_by == "server"
            and self.disconnect_reason == "completed"
            and self.closed_in_time
            and not self.violations
        )


class GenesysError(Exception):
    """Base of the simulator's errors."""


class GenesysConnectError(GenesysError):
    """The WebSocket upgrade failed; ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GenesysSessionError(GenesysError):
    """The session failed (before ``opened``, or a background task broke)."""

    def __init__(
        self,
        message: str,
        violations: tuple[str, ...] = (),
        outcome: GenesysOutcome | None = None,
    ) -> None:
        super().__init__(message)
        self.violations = violations
        self.outcome = outcome
