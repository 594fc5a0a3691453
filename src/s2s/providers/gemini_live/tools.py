"""The tool-call ledger: calls in, results out, cancellations honoured.

``args`` objects become JSON strings; results go back as
``toolResponse.functionResponses[{id, name, response}]`` (``scheduling`` for NON_BLOCKING tools);
``toolCallCancellation`` is its own event and a cancelled call's result is refused. A result for
a call the resumption handle predates is held until every such call is answered (:mod:`.replay`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...config import ToolCall, ToolResult
from ...conversation import FunctionCall, FunctionOutput
from ...errors import InvalidInputError
from ...events import EventType, SessionEvent
from . import wire
from .base import ProtocolBase, State, _dict
from .resumption import Record, item_key

__all__ = ["ToolsMixin"]


@dataclass(slots=True)
class _Call:
    name: str
    answered: bool = False


class ToolsMixin(ProtocolBase):
    """Tool calls and their results for :class:`~.protocol.GeminiLiveProtocol`."""

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        call_id = result.call_id
        if call_id in self._cancelled:
            raise InvalidInputError(
                f"tool call {call_id!r} was cancelled by the provider (toolCallCancellation); "
                "its result is not sent"
            )
        held = {i.call_id: i for i in self._held if isinstance(i, FunctionCall)}
        call = self._calls.get(call_id)
        if call is None and call_id not in held:
            known = ", ".join(sorted([*self._calls, *held])) or "none"
            raise InvalidInputError(
                f"no tool call {call_id!r} in this session (open calls: {known})"
            )
        answered = {i.call_id for i in self.conversation if isinstance(i, FunctionOutput)}
        if (call is not None and call.answered) or call_id in answered:
            raise InvalidInputError(f"tool call {call_id!r} was already answered")
        output = FunctionOutput(call_id, result.content, result.is_error)
        self.conversation.append(output)
        if call is None:
            self._held.append(output)
            self._release_held()
            return
        call.answered = True
        if self.state is not State.READY:
            self._queued.append(("tool_result", output))
            return
        self._send_tool_output(output, call.name)

    def _send_tool_output(self, output: FunctionOutput, name: str) -> None:
        scheduling = self.settings.scheduling(name)
        response = wire.function_response(
            output.call_id,
            name,
            wire.result_payload(output.output, output.is_error),
            scheduling,
        )
        index = self._send_frame(wire.tool_response([response]))
        key = item_key(output)
        self.ledger.mark_sent(key, index)
        self.ledger.record(Record("tool_response", index, item=key, call_id=output.call_id))
        if scheduling != "SILENT":
            self._awaiting_answer = True

    # -- calls from the server ------------------------------------------------------------------

    def _tool_call(self, tool_call: dict[str, Any], now: float) -> None:
        turn = self._begin_turn(now)
        self._close_assistant(final=not turn.cut)
        for raw in tool_call.get("functionCalls") or []:
            call = _dict(raw)
            call_id = call.get("id") or self._new_id("call")
            name = str(call.get("name") or "")
            if call_id in self._calls or self.conversation.find_call(call_id) is not None:
                continue
            arguments = json.dumps(_dict(call.get("args")))
            self.conversation.append(FunctionCall(call_id, name, arguments, call_id))
            self.ledger.mark_received(call_id)
            self._calls[call_id] = _Call(name)
            turn.calls.append(call_id)
            self._emit(
                SessionEvent(
                    EventType.TOOL_CALL,
                    tool_call=ToolCall(call_id, name, arguments),
                    response_id=turn.response_id,
                    item_id=call_id,
                    at=now,
                )
            )

    def _tool_call_cancellation(self, cancellation: dict[str, Any], now: float) -> None:
        ids = tuple(str(i) for i in cancellation.get("ids") or [])
        for call_id in ids:
            call = self._calls.pop(call_id, None)
            if call is not None and not call.answered:
                self._cancelled.add(call_id)
                self.conversation.remove(call_id)
        if ids:
            self._emit(SessionEvent(EventType.TOOL_CALL_CANCELLED, call_ids=ids, at=now))
        self._maybe_rotate()
