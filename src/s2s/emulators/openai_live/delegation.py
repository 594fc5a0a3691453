"""Responses delegation in the emulator: the hosted backend's function calls and its answers.

Drift reference §1.8: the voice model hands a task to a Responses model; its stream arrives in
``response.event`` envelopes (``response.created`` with empty output, one
``response.output_item.done`` per completed ``function_call``, ``response.completed``). The client
answers each call with ``response.item.create{function_call_output}`` and then sends exactly one
``response.create``; a ``response.create`` while calls are unanswered is refused, as is an output
for a call the backend never made. The continuation's text is then spoken by the voice model.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import behavior
from . import events as ev

__all__ = ["Backend"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Refuse = Callable[[str, str, str | None], Awaitable[None]]


@dataclass(slots=True)
class _Delegation:
    id: str
    #: call_id -> [tool name, output or None]
    calls: dict[str, list[str | None]] = field(default_factory=dict)
    continued: bool = False


class Backend:
    """The Responses backend of one emulated session."""

    def __init__(self, ids: ev.Ids, send: Send, refuse: Refuse, model: str) -> None:
        self.ids = ids
        self._send = send
        self._refuse = refuse
        self.model = model
        self.delegations: list[_Delegation] = []
        self._user_inputs: list[str] = []
        self._sequence = 0

    async def _event(self, delegation_id: str, event: dict[str, Any]) -> None:
        self._sequence += 1
        await self._send(
            {
                "type": "response.event",
                "event_id": self.ids.event(),
                "delegation_id": delegation_id,
                "event": {**event, "sequence_number": self._sequence},
            }
        )

    async def delegate(
        self, requests: list[behavior.ToolRequest], offset_ms: float, declared: set[str]
    ) -> str | None:
        """Run ``requests`` as backend function calls; returns what to say if none is declared."""
        known = [r for r in requests if r.name in declared]
        if not known:
            return behavior.reply_for_unknown_tools([r.name for r in requests])
        delegation = _Delegation(self.ids.new("del"))
        self.delegations.append(delegation)
        response_id = self.ids.new("resp")
        await self._send(
            {
                "type": "session.delegation.created",
                "event_id": self.ids.event(),
                "offset_ms": int(offset_ms),
                "delegation": {
                    "id": delegation.id,
                    "target": "responses",
                    "type": "delegation",
                    "response_id": response_id,
                },
            }
        )
        await self._event(
            delegation.id,
            {
                "type": "response.created",
                "response": ev.response_snapshot(response_id, self.model, "in_progress"),
            },
        )
        for index, request in enumerate(known):
            call_id = self.ids.new("call")
            item = {
                "id": self.ids.new("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": call_id,
                "name": request.name,
                "arguments": "",
            }
            await self._event(
                delegation.id,
                {"type": "response.output_item.added", "output_index": index, "item": item},
            )
            done = {**item, "status": "completed", "arguments": json.dumps(request.arguments)}
            await self._event(
                delegation.id,
                {"type": "response.output_item.done", "output_index": index, "item": done},
            )
            delegation.calls[call_id] = [request.name, None]
        await self._event(
            delegation.id,
            {
                "type": "response.completed",
                "response": ev.response_snapshot(
                    response_id, self.model, "completed", usage=ev.backend_usage(200, 20)
                ),
            },
        )
        return None

    async def item_create(self, item: dict[str, Any], event_id: str | None) -> None:
        """``response.item.create``: a function call output, or input for the backend."""
        kind = item.get("type")
        if kind == "function_call_output":
            call_id = str(item.get("call_id") or "")
            for delegation in self.delegations:
                call = delegation.calls.get(call_id)
                if call is None:
                    continue
                if call[1] is not None or delegation.continued:
                    await self._refuse(
                        "invalid_value",
                        f"Function call '{call_id}' already has an output.",
                        "item.call_id",
                    )
                    return
                output = item.get("output")
                call[1] = output if isinstance(output, str) else json.dumps(output)
                return
            await self._refuse(
                "invalid_value",
                f"No tool call found for function call output with call_id '{call_id}'.",
                "item.call_id",
            )
            return
        if kind in (None, "message") and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                self._user_inputs.append(content)
            elif isinstance(content, list):
                self._user_inputs.append(
                    " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                )

    async def create(self) -> str | None:
        """``response.create``: the backend continues; returns the text the voice speaks."""
        waiting = [
            call_id
            for d in self.delegations
            if not d.continued
            for call_id, (_, output) in d.calls.items()
            if output is None
        ]
        if waiting:
            await self._refuse(
                "invalid_request_error",
                "Cannot create a response while function calls are awaiting output: "
                + ", ".join(waiting)
                + ". Send a function_call_output for each call first.",
                None,
            )
            return None
        ready = [d for d in self.delegations if not d.continued and d.calls]
        if ready:
            outputs = [(str(name), str(out)) for d in ready for name, out in d.calls.values()]
            text = behavior.reply_for_tool_outputs(outputs)
            for d in ready:
                d.continued = True
            delegation_id = ready[-1].id
        elif self._user_inputs:
            text = behavior.reply_for_text(self._user_inputs.pop(), [])
            delegation = _Delegation(self.ids.new("del"), continued=True)
            self.delegations.append(delegation)
            delegation_id = delegation.id
        else:
            await self._refuse(
                "invalid_request_error",
                "There is nothing for the Responses backend to respond to.",
                None,
            )
            return None
        response_id = self.ids.new("resp")
        await self._event(
            delegation_id,
            {
                "type": "response.created",
                "response": ev.response_snapshot(response_id, self.model, "in_progress"),
            },
        )
        message = {
            "id": self.ids.new("msg"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        await self._event(
            delegation_id,
            {"type": "response.output_item.done", "output_index": 0, "item": message},
        )
        await self._event(
            delegation_id,
            {
                "type": "response.completed",
                "response": ev.response_snapshot(
                    response_id, self.model, "completed", usage=ev.backend_usage(300, len(text))
                ),
            },
        )
        return text
