"""What happened on a simulated Twilio call, in order, for tests to assert on.

Every entry is a frozen dataclass stamped with ``at`` (``time.monotonic()`` seconds). The
:class:`Timeline` keeps them in one ordered list (:attr:`Timeline.entries`) and, for cheap
predicates, in one list per kind. Caller media frames are only counted (50 a second).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "AudioReceived",
    "CallOutcome",
    "ClearReceived",
    "DtmfSent",
    "Entry",
    "MarkEcho",
    "MarkReceived",
    "StopSent",
    "StreamClosed",
    "Timeline",
    "Violation",
]


@dataclass(frozen=True, slots=True)
class AudioReceived:
    """A server ``media`` message: ``audio`` (μ-law 8 kHz) was queued for playback."""

    at: float
    audio: bytes


@dataclass(frozen=True, slots=True)
class MarkReceived:
    """A server ``mark`` message, queued after the audio before it."""

    at: float
    name: str


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """A ``mark`` echo we sent: ``played`` is False when a ``clear`` discarded it."""

    at: float
    name: str
    played: bool


@dataclass(frozen=True, slots=True)
class ClearReceived:
    """A server ``clear``: ``discarded_ms`` of queued audio dropped, these marks echoed."""

    at: float
    discarded_ms: float
    pending_marks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DtmfSent:
    at: float
    digit: str


@dataclass(frozen=True, slots=True)
class StopSent:
    at: float


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The WebSocket closed; ``by`` says which side ended the stream."""

    at: float
    by: Literal["caller", "server"]
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Violation:
    """Something the server sent that Twilio would log as ``code`` (31950, 31951, 31903)."""

    at: float
    code: int
    reason: str
    frame: str


Entry = (
    AudioReceived
    | MarkReceived
    | MarkEcho
    | ClearReceived
    | DtmfSent
    | StopSent
    | StreamClosed
    | Violation
)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How the call ended.

    Attributes:
        ended_by: who ended the stream: the caller (``stop`` + close) or the server (close).
        transferred_to: the ``<Dial>`` target the TwiML after ``</Connect>`` reached, if any.
        hung_up: the call ended without a transfer (caller hang-up, ``<Hangup/>``, or no
            more TwiML to run).
        said: ``<Say>`` texts, in order (before and after the stream).
        close_code: the WebSocket close code (None if the connection dropped).
        redirects: URLs fetched for ``<Redirect>``, in order.
        skipped: verbs the simulator does not run (``<Gather>``, a second ``<Connect>``, ...).
    """

    ended_by: Literal["caller", "server"]
    transferred_to: str | None
    hung_up: bool
    said: tuple[str, ...]
    close_code: int | None
    redirects: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass(slots=True)
class Timeline:
    """The record of one call (mutable: the call appends to it)."""

    #: When ``start`` was sent (monotonic seconds); media timestamps count from here.
    started_at: float | None = None
    entries: list[Entry] = field(default_factory=list)
    audio: list[AudioReceived] = field(default_factory=list)
    marks: list[MarkReceived] = field(default_factory=list)
    echoes: list[MarkEcho] = field(default_factory=list)
    clears: list[ClearReceived] = field(default_factory=list)
    dtmf: list[DtmfSent] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    stop: StopSent | None = None
    closed: StreamClosed | None = None
    outcome: CallOutcome | None = None
    #: Caller ``media`` messages sent, and the caller audio (not silence) bytes they carried.
    frames_sent: int = 0
    caller_bytes_sent: int = 0

    def record(self, entry: Entry) -> None:
        """Append ``entry`` to :attr:`entries` and to its own list."""
        self.entries.append(entry)
        match entry:
            case AudioReceived():
                self.audio.append(entry)
            case MarkReceived():
                self.marks.append(entry)
            case MarkEcho():
                self.echoes.append(entry)
            case ClearReceived():
                self.clears.append(entry)
            case DtmfSent():
                self.dtmf.append(entry)
            case Violation():
                self.violations.append(entry)
            case StopSent():
                self.stop = entry
            case StreamClosed():
                self.closed = entry

    def echo(self, name: str) -> MarkEcho | None:
        """The echo sent for mark ``name``, if any."""
        return next((echo for echo in self.echoes if echo.name == name), None)

    @property
    def received_audio(self) -> bytes:
        """All audio the server sent, in order (played or not)."""
        return b"".join(entry.audio for entry in self.audio)

    @property
    def received_ms(self) -> float:
        """Milliseconds of audio the server sent (8 bytes per ms)."""
        return sum(len(entry.audio) for entry in self.audio) / 8.0

    @property
    def ended(self) -> bool:
        """The call is over and its outcome known."""
        return self.outcome is not None
