"""Emitting a function call item as part of a response."""

from __future__ import annotations

import json
from typing import Any

from .. import behavior
from .base import SessionBase
from .items import _Item
from .responses import _Response

__all__ = ["ToolCallsMixin"]


class ToolCallsMixin(SessionBase):
    """Tool-call emission for :class:`~.session.EmulatedSession`."""

    async def _emit_call(
        self, response: _Response, index: int, request: behavior.ToolRequest
    ) -> dict[str, Any]:
        item = _Item(
            id=self.ids.new("item"),
            type="function_call",
            call_id=self.ids.new("call"),
            name=request.name,
            arguments="",
            status="in_progress",
        )
        arguments = json.dumps(request.arguments)
        common = {"response_id": response.id, "output_index": index}
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        await self.send(
            {
                "type": "response.output_item.added",
                "event_id": self.ids.event(),
                **common,
                "item": item.wire(),
            }
        )
        await self.send(
            {
                "type": "conversation.item.added",
                "event_id": self.ids.event(),
                "previous_item_id": previous,
                "item": item.wire(),
            }
        )
        half = len(arguments) // 2
        for delta in (arguments[:half], arguments[half:]):
            await self.send(
                {
                    "type": "response.function_call_arguments.delta",
                    "event_id": self.ids.event(),
                    **common,
                    "item_id": item.id,
                    "call_id": item.call_id,
                    "delta": delta,
                }
            )
        item.arguments = arguments
        item.status = "completed"
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "event_id": self.ids.event(),
                **common,
                "item_id": item.id,
                "call_id": item.call_id,
                "name": item.name,
                "arguments": arguments,
            }
        )
        await self.send(
            {
                "type": "conversation.item.done",
                "event_id": self.ids.event(),
                "previous_item_id": previous,
                "item": item.wire(),
            }
        )
        await self.send(
            {
                "type": "response.output_item.done",
                "event_id": self.ids.event(),
                **common,
                "item": item.wire(),
            }
        )
        return item.wire()
