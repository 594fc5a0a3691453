"""Responses delegation of one GPT-Live connection (sans-I/O): tool calls in, results out.

Drift reference §1.8: the hosted backend's stream arrives in ``response.event`` envelopes,
correlated by their ``delegation_id`` (not every inner event names its response). Function calls
are read **only** from ``response.output_item.done`` items with status ``completed`` and recorded
in the :class:`~s2s.providers.shared.ToolLedger`, grouped by delegation. Each result is a
``response.item.create``; exactly one ``response.create`` follows, once every call of that
delegation has its result and the delegation's backend response has finished (a
``response.create`` with calls unanswered is refused by the server). A failed, incomplete or
cancelled backend response cancels its open calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...config import ToolCall, ToolResult
from ...conversation import Conversation, FunctionCall
from ...errors import ProviderServerError
from ...events import EventType, SessionEvent, Usage
from ..shared import ToolLedger, result_text
from . import wire
from .settings import PROVIDER

__all__ = ["Delegations"]

_ENDED = frozenset({"response.failed", "response.incomplete", "response.cancelled"})


class Delegations:
    """The delegated work of one connection; ``put`` queues a frame for the provider."""

    def __init__(self, ledger: ToolLedger, conversation: Conversation, put: Callable[[str], None]):
        self.ledger = ledger
        self.conversation = conversation
        self._put = put
        self._busy: dict[str, bool] = {}

    @property
    def waiting(self) -> bool:
        """True while a tool call awaits the application's result."""
        return self.ledger.waiting

    def answer(self, result: ToolResult) -> None:
        """Send the application's result (raises InvalidInputError for a call it cannot take)."""
        entry = self.ledger.answer(result)
        output = result_text(result.content, result.is_error)
        if entry.carried:  # made on an earlier connection: this backend never saw the call
            self.ledger.discard(entry.id)
            # Commentary, not thinking: the caller is waiting for this answer, and commentary is
            # what the voice model says aloud (once, in its own words).
            self._put(
                wire.context_append(
                    "commentary", f"The {entry.name} tool (call {entry.id}) returned {output}."
                )
            )
            return
        self._put(wire.function_output(entry.id, output))
        self._maybe_continue(entry.group)

    def _maybe_continue(self, group: str | None) -> None:
        if group is None or self._busy.get(group, False):
            return
        if any(c.group == group for c in self.ledger.calls) and self.ledger.group_answered(group):
            self.ledger.release(group)
            self._put(wire.response_create())

    def on_event(self, group: str | None, event: dict[str, Any], now: float) -> list[SessionEvent]:
        """One nested Responses event of delegation ``group``; returns the events it makes."""
        kind = event.get("type")
        response = event.get("response") or {}
        if kind == "response.created" and group:
            self._busy[group] = True
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("status") == "completed":
                return self._tool_call(item, group, response.get("id"), now)
        elif kind == "response.completed":
            if group:
                self._busy[group] = False
                self._maybe_continue(group)
            usage = _usage(response.get("usage"))
            if usage is not None:
                return [
                    SessionEvent(
                        EventType.USAGE, response_id=response.get("id"), usage=usage, at=now
                    )
                ]
        elif kind in _ENDED:
            return self._ended(group, response, now)
        return []

    def _tool_call(
        self, item: dict[str, Any], group: str | None, response_id: str | None, now: float
    ) -> list[SessionEvent]:
        call_id, name = str(item.get("call_id") or ""), str(item.get("name") or "")
        arguments = str(item.get("arguments") or "") or "{}"
        call = ToolCall(call_id, name, arguments)
        if not call_id or self.ledger.open(call, group=group) is None:
            return []  # a repeated item
        self.conversation.append(FunctionCall(call_id, name, arguments, item.get("id")))
        return [
            SessionEvent(
                EventType.TOOL_CALL,
                tool_call=call,
                response_id=response_id,
                item_id=item.get("id"),
                data={"delegation_id": group} if group else {},
                at=now,
            )
        ]

    def _ended(self, group: str | None, response: dict[str, Any], now: float) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        if group:
            self._busy[group] = False
            calls = [c.id for c in self.ledger.calls if c.group == group]
            if cancelled := self.ledger.cancel(calls):
                ids = tuple(c.id for c in cancelled)
                events.append(SessionEvent(EventType.TOOL_CALL_CANCELLED, call_ids=ids, at=now))
        err = response.get("error") or {}
        events.append(
            SessionEvent(
                EventType.ERROR,
                response_id=response.get("id"),
                at=now,
                error=ProviderServerError(
                    f"{PROVIDER}: the delegated response ended {response.get('status')}: "
                    f"{err.get('message', 'no details')}",
                    code=err.get("code"),
                    provider=PROVIDER,
                    retryable=False,
                ),
            )
        )
        return events


def _usage(usage: dict[str, Any] | None) -> Usage | None:
    """Backend token usage (GPT-Live itself bills by duration)."""
    if not usage:
        return None
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        total_tokens=usage.get("total_tokens") or 0,
        input_text_tokens=usage.get("input_tokens") or 0,
        output_text_tokens=usage.get("output_tokens") or 0,
        cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
    )
