"""State shared by the parts of :class:`~.protocol.GeminiLiveProtocol`, and what each part needs.

The protocol class is assembled from sibling modules, one concern each: :mod:`.turns` (model
turns, their output and transcripts), :mod:`.tools` (the tool-call ledger), :mod:`.replay`
(carrying a call onto a new connection once set up) and :mod:`.protocol` (lifecycle, input and
dispatch of server messages). :class:`ProtocolBase` declares the connection state they share
(set in :meth:`GeminiLiveProtocol.__init__ <.protocol.GeminiLiveProtocol>`), the primitives
every part uses, and, as abstract methods, what one part calls in another.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...conversation import Conversation, FunctionOutput, HistoryItem, Message
from ...protocol import ProviderProtocol
from ..shared import check_open
from .resumption import Ledger, Plan
from .settings import GeminiSettings

if TYPE_CHECKING:
    from ..shared import ToolLedger
    from .turns import _Turn

__all__ = ["ProtocolBase", "State"]


class State(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ProtocolBase(ProviderProtocol):
    """The connection state the parts of the Gemini Live protocol share."""

    settings: GeminiSettings
    state: State
    conversation: Conversation
    ledger: Ledger
    _plan: Plan | None
    _carried_audio: bytes
    _foreign_audio: bytes  # another provider's pending audio, sent once set up
    _covered_audio: bytes
    _on_handle_refused: Callable[[str], None] | None
    _tag: str
    _seq: int
    _queued: list[tuple[str, Any]]
    _turn: _Turn | None
    _last_response_id: str | None
    #: Open tool calls; a *carried* one (the new connection's model never saw it) is held and
    #: replayed together with its result.
    tools: ToolLedger
    _held: list[HistoryItem]
    _assistant_item: str | None
    _assistant_text: str
    _user_item: str | None
    _user_text: str
    _user_open: bool  # the model has not started answering the caller's turn yet
    _user_final_sent: bool
    _awaiting_answer: bool
    _activity_open: bool
    _go_away_at: float | None
    _connected_at: float | None
    _handed_over: bool
    _closing: bool

    # -- ids and sending ---------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._tag}{self._seq}"

    def _send_frame(self, frame: str) -> int:
        """Send one client message; returns the index the server counts it by."""
        index = self.ledger.sent()
        self._send(frame)
        return index

    def _check_open(self, what: str) -> None:
        check_open(self.state is State.CLOSED, self.provider, what)

    # -- implemented by the other parts ----------------------------------------------------------

    @abstractmethod
    def _maybe_rotate(self) -> None:
        """:mod:`.protocol`: move the call if the server asked and the model is quiet."""

    @abstractmethod
    def _activity(self, *, start: bool, now: float) -> None:
        """:mod:`.protocol`: manual turn detection's ``activityStart`` / ``activityEnd``."""

    @abstractmethod
    def _send_text(self, message: Message) -> None:
        """:mod:`.protocol`: send a typed user message."""

    @abstractmethod
    def _begin_turn(self, now: float) -> _Turn:
        """:mod:`.turns`: the current model turn, started if there is none."""

    @abstractmethod
    def _close_assistant(self, *, final: bool) -> str | None:
        """:mod:`.turns`: the current answer item is complete (or cut)."""

    @abstractmethod
    def _send_tool_output(self, output: FunctionOutput, name: str) -> None:
        """:mod:`.tools`: send one tool result."""

    @abstractmethod
    def _release_held(self) -> None:
        """:mod:`.replay`: send held tool calls with their results once all are answered."""
