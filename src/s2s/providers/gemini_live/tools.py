"""The tool-call ledger: calls in, results out, cancellations honoured.

``args`` objects become JSON strings; results go back as
``toolResponse.functionResponses[{id, name, response}]`` (``scheduling`` for NON_BLOCKING tools);
``toolCallCancellation`` is its own event and a cancelled call's result is refused. A result for
a call the resumption handle predates is held until every such call is answered (:mod:`.replay`).
"""

from __future__ import annotations

import json
from typing import Any

from ...config import ToolCall, ToolResult
from ...conversation import FunctionCall, FunctionOutput
from ...events import EventType, SessionEvent
from ..shared import result_object
from . import wire
from .base import ProtocolBase, State, _dict
from .resumption import Record, item_key

__all__ = ["ToolsMixin"]


class ToolsMixin(ProtocolBase):
    """Tool calls and their results for :class:`~.protocol.GeminiLiveProtocol`."""

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        call = self.tools.answer(result)  # refuses cancelled, unknown and answered calls
        output = FunctionOutput(result.call_id, result.content, result.is_error)
        if call.carried:  # this connection's model never saw the call: replayed with its result
            self._held.append(output)
            self._release_held()
            return
        if self.state is not State.READY:
            self._queued.append(("tool_result", output))
            return
        self._send_tool_output(output, call.name)

    def _send_tool_output(self, output: FunctionOutput, name: str) -> None:
        scheduling = self.settings.scheduling(name)
        response = wire.function_response(
            output.call_id,
            name,
            result_object(output.output, output.is_error),
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
            arguments = json.dumps(_dict(call.get("args")))
            if self.tools.open(ToolCall(call_id, name, arguments)) is None:
                continue  # seen before
            self.conversation.append(FunctionCall(call_id, name, arguments, call_id))
            self.ledger.mark_received(call_id)
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
        for call in self.tools.cancel(ids):
            self.conversation.remove(call.id)
        if ids:
            self._emit(SessionEvent(EventType.TOOL_CALL_CANCELLED, call_ids=ids, at=now))
        self._maybe_rotate()
