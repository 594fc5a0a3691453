"""The tool-call ledger: which calls the model made, which the application answered.

Every provider protocol keeps one per connection. It refuses a result for a call it never saw,
a second result for the same call and a result for a call the provider cancelled, each with the
same wording on every provider, and it records each accepted result in the
:class:`~s2s.conversation.Conversation` so a new connection (or another provider) can carry it
over. Calls the conversation holds without an output when the ledger is built were made on an
earlier connection: they are *carried* and can still be answered exactly once.

Calls may be grouped (OpenAI Realtime: the response that made them) so a protocol can ask for one
follow-up answer when the whole group is answered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...config import ToolCall, ToolResult
from ...conversation import Conversation, FunctionOutput
from ...errors import InvalidInputError

__all__ = ["OpenCall", "ToolLedger"]


@dataclass(slots=True)
class OpenCall:
    """A tool call awaiting (or holding) the application's result."""

    call: ToolCall
    #: What made the call (a response id), for providers that answer a group at once.
    group: str | None = None
    #: Made on an earlier connection; this one's model may not know the call id.
    carried: bool = False
    answered: bool = False

    @property
    def id(self) -> str:
        return self.call.id

    @property
    def name(self) -> str:
        return self.call.name


class ToolLedger:
    """Open tool calls of one provider connection (sans-I/O; owned by one protocol)."""

    __slots__ = ("_calls", "_cancelled", "conversation", "provider")

    def __init__(
        self, provider: str, conversation: Conversation, *, cancelled: Iterable[str] = ()
    ) -> None:
        self.provider = provider
        self.conversation = conversation
        self._calls: dict[str, OpenCall] = {
            call.id: OpenCall(call, carried=True) for call in conversation.pending_calls()
        }
        #: Calls the provider cancelled (carried over too: their results stay refused).
        self._cancelled: set[str] = set(cancelled)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> OpenCall | None:
        return self._calls.get(call_id)

    @property
    def cancelled(self) -> list[str]:
        """Ids of the calls the provider cancelled, sorted (for a continuation's state)."""
        return sorted(self._cancelled)

    @property
    def calls(self) -> list[OpenCall]:
        """Every call still held, oldest first."""
        return list(self._calls.values())

    @property
    def unanswered(self) -> list[OpenCall]:
        return [c for c in self._calls.values() if not c.answered]

    @property
    def waiting(self) -> bool:
        """True while some call has no result yet."""
        return any(not c.answered for c in self._calls.values())

    def seen(self, call_id: str) -> bool:
        """True for a call this ledger holds or the conversation already records."""
        return call_id in self._calls or self.conversation.find_call(call_id) is not None

    def open(self, call: ToolCall, *, group: str | None = None) -> OpenCall | None:
        """Record a call the model made; ``None`` (ignore it) when the id was seen before."""
        if self.seen(call.id):
            return None
        entry = self._calls[call.id] = OpenCall(call, group=group)
        return entry

    def answer(self, result: ToolResult) -> OpenCall:
        """Accept the application's result and record it in the conversation.

        Raises:
            InvalidInputError: the call was cancelled, is unknown, or was already answered. The
                ledger and the conversation are unchanged.
        """
        call_id = result.call_id
        if call_id in self._cancelled:
            raise InvalidInputError(
                f"tool call {call_id!r} was cancelled by the provider ({self.provider}); "
                "its result is not sent"
            )
        entry = self._calls.get(call_id)
        already = entry.answered if entry is not None else self._answered_before(call_id)
        if already:
            raise InvalidInputError(f"tool call {call_id!r} was already answered")
        if entry is None:
            known = ", ".join(c.id for c in self.unanswered) or "none"
            raise InvalidInputError(
                f"no tool call {call_id!r} in this session (open calls: {known})"
            )
        entry.answered = True
        self.conversation.append(FunctionOutput(call_id, result.content, result.is_error))
        return entry

    def _answered_before(self, call_id: str) -> bool:
        return any(
            isinstance(item, FunctionOutput) and item.call_id == call_id
            for item in self.conversation
        )

    def cancel(self, call_ids: Iterable[str]) -> list[OpenCall]:
        """The provider cancelled these calls; their results will be refused. Returns those
        that were still unanswered (already answered ones are simply forgotten)."""
        cancelled: list[OpenCall] = []
        for call_id in call_ids:
            entry = self._calls.pop(call_id, None)
            if entry is not None and not entry.answered:
                self._cancelled.add(call_id)
                cancelled.append(entry)
        return cancelled

    def group_answered(self, group: str | None) -> bool:
        """True when every call of ``group`` has a result."""
        return all(c.answered for c in self._calls.values() if c.group == group)

    def release(self, group: str | None) -> list[OpenCall]:
        """Forget the calls of ``group`` (all answered and sent on); returns them."""
        released = [c for c in self._calls.values() if c.group == group]
        for entry in released:
            del self._calls[entry.id]
        return released

    def discard(self, call_id: str) -> OpenCall | None:
        """Forget one call (answered and sent on)."""
        return self._calls.pop(call_id, None)
