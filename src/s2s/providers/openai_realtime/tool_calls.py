"""Tool calls grouped by the response that made them.

The Realtime server makes parallel calls within one response. The rule: every call of a response
gets its ``function_call_output``, and once the response has finished and all its calls are
answered, exactly **one** ``response.create`` follows (never one per output). The
:class:`~s2s.providers.shared.ToolLedger` keeps the calls, the answers and the checks; this module
adds the Realtime wire shapes and the group rule.
"""

from __future__ import annotations

from ...config import ToolCall, ToolResult
from ...conversation import Conversation, FunctionCall
from ..shared import ToolLedger, result_text
from . import wire
from .settings import PROVIDER

__all__ = ["ToolCalls"]


class ToolCalls:
    """The tool calls of one connection (sans-I/O; owned by one protocol)."""

    __slots__ = ("conversation", "ledger")

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        #: Calls carried over from an earlier connection form the group ``None``.
        self.ledger = ToolLedger(PROVIDER, conversation)

    @property
    def waiting(self) -> bool:
        """True while some call has no result yet."""
        return self.ledger.waiting

    def made(
        self, call_id: str, name: str, arguments: str, item_id: str | None, response_id: str | None
    ) -> ToolCall | None:
        """The model made a call; the :class:`ToolCall` to report, or ``None`` if seen before
        (``arguments.done`` and ``output_item.done`` both carry every call)."""
        if not call_id or self.ledger.seen(call_id):
            return None
        call = ToolCall(call_id, name, arguments or "{}")
        self.ledger.open(call, group=response_id)
        self.conversation.append(FunctionCall(call_id, name, arguments, item_id))
        return call

    def answer(self, result: ToolResult) -> tuple[str, str | None]:
        """Accept the application's result: the ``conversation.item.create`` frame to send and
        the group (response id) it belongs to.

        Raises:
            InvalidInputError: unknown, cancelled or already answered call.
        """
        entry = self.ledger.answer(result)
        output = result_text(result.content, result.is_error)
        return wire.item_create(wire.function_output_item(result.call_id, output)), entry.group

    def group_ready(self, group: str | None, active_response: str | None) -> bool:
        """All calls of ``group`` are answered and the response that made them has finished."""
        if active_response is not None and active_response == group:
            return False
        return self.ledger.group_answered(group)

    def release(self, group: str | None) -> None:
        """Forget a fully answered group (its follow-up response is being asked for)."""
        self.ledger.release(group)
