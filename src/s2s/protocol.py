"""The sans-I/O contract every provider protocol implements.

A protocol object is one provider connection's state machine. It never touches a socket, never
awaits and never reads the clock: the caller passes data in, passes the current
``time.monotonic()`` as ``now``, and takes data and events out::

    proto.connection_made(now)              # transport is up
    proto.receive_data(frame, now)          # for every frame the provider sends
    proto.send_audio(pcm, now)              # the application's input, at proto.input_rate
    for frame in proto.data_to_send(): ...  # you must send these, in order
    for event in proto.events_received(): ...
    if proto.deadline is not None: call proto.timer_expired(now) at that time

After any call, check :attr:`failure` (a fatal error: end the session) and :attr:`rotation` (the
call should continue on a new connection: build a new protocol from :meth:`continuation`).
The same object runs in unit tests (scripted frames), in a Ray actor and in the CLI.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import Config, ToolResult
from .conversation import Conversation
from .errors import S2SError
from .events import SessionEvent

__all__ = ["Continuation", "ProviderProtocol"]


@dataclass(slots=True)
class Continuation:
    """What a new connection needs to carry on a call.

    A protocol must continue from *any* continuation, including another provider's (after a
    failover: ``reason`` is ``"failover"`` and ``state`` is empty): replay ``conversation`` as
    history in its own format, accept the result of each pending tool call in it exactly once
    (and tell the model, as the provider allows), and send ``pending_audio`` as caller input
    before anything newer.

    Attributes:
        conversation: the history so far.
        pending_audio: caller audio (provider input rate) the provider had not yet committed to
            the conversation; replayed so nothing said during a switch is lost.
        state: provider-specific state (e.g. a session resumption handle).
        reason: why the call is moving ("session_limit", "connection_lost", "go_away", ...).
        provider: the provider the call was on (set by ``Session.snapshot``); a session that
            resumes a snapshot taken after a failover continues on that provider when its
            ``Config.failover`` names it. Empty: the engine's own provider.
    """

    conversation: Conversation = field(default_factory=Conversation)
    pending_audio: bytes = b""
    state: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    provider: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation.to_list(),
            "pending_audio": self.pending_audio,
            "state": dict(self.state),
            "reason": self.reason,
            "provider": self.provider,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Continuation:
        return cls(
            conversation=Conversation.from_list(data.get("conversation", [])),
            pending_audio=bytes(data.get("pending_audio", b"")),
            state=dict(data.get("state", {})),
            reason=str(data.get("reason", "")),
            provider=str(data.get("provider", "")),
        )


class ProviderProtocol(ABC):
    """Base class: output buffers and lifecycle flags shared by every provider protocol."""

    provider: str = ""
    #: PCM16 rate the provider takes as input, and the rate of AUDIO_OUTPUT events it emits.
    input_rate: int = 24000
    output_rate: int = 24000

    def __init__(self, config: Config) -> None:
        self.config = config
        self._outgoing: list[str | bytes] = []
        self._events: list[SessionEvent] = []
        #: A fatal error: the session cannot continue (set by the protocol).
        self.failure: S2SError | None = None
        #: Set to a reason when the call should move to a new connection.
        self.rotation: str | None = None

    # -- outputs ---------------------------------------------------------------------------

    def data_to_send(self) -> list[str | bytes]:
        """Frames to send to the provider, in order. Each call returns only new frames."""
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[SessionEvent]:
        """Events for the application, in order. Each call returns only new events."""
        out, self._events = self._events, []
        return out

    def _send(self, frame: str | bytes) -> None:
        self._outgoing.append(frame)

    def _emit(self, event: SessionEvent) -> None:
        self._events.append(event)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    @abstractmethod
    def ready(self) -> bool:
        """True once setup is complete and the application's input flows to the provider."""

    @property
    def idle(self) -> bool:
        """True when no response is being generated and no tool call awaits a result."""
        return True

    @property
    def deadline(self) -> float | None:
        """When :meth:`timer_expired` should next run (monotonic seconds), if ever."""
        return None

    def timer_expired(self, now: float) -> None:  # noqa: B027 - optional hook
        """Called at (or after) :attr:`deadline`."""

    @abstractmethod
    def connection_made(self, now: float) -> None:
        """The transport is open; queue the opening messages."""

    @abstractmethod
    def receive_data(self, data: str | bytes, now: float) -> None:
        """Process one frame from the provider."""

    @abstractmethod
    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        """The transport closed. Return the error it means (``None`` for an expected close)."""

    @abstractmethod
    def close(self, now: float) -> None:
        """Queue the provider's orderly goodbye, if it has one. Input is refused afterwards."""

    @abstractmethod
    def continuation(self, reason: str) -> Continuation:
        """A snapshot a new connection can continue the call from."""

    # -- application input (native rate) -----------------------------------------------------

    @abstractmethod
    def send_audio(self, pcm: bytes, now: float) -> None:
        """Caller audio, PCM16 at :attr:`input_rate`."""

    @abstractmethod
    def send_text(self, text: str, now: float) -> None:
        """A typed user message; the model answers it."""

    @abstractmethod
    def send_tool_result(self, result: ToolResult, now: float) -> None:
        """The application's result for a tool call."""

    @abstractmethod
    def interrupt(self, now: float) -> None:
        """Stop the current response and forget what the caller did not hear."""

    def end_turn(self, now: float) -> None:  # noqa: B027 - optional hook
        """The caller finished speaking (manual turn detection)."""

    def report_playback(self, item_id: str, played_ms: int) -> None:  # noqa: B027
        """The application played ``played_ms`` of ``item_id`` so far."""
