"""The emulated model's state: what a session resumption handle captures and restores.

A handle is a deep copy of :class:`ModelState` taken at a quiet moment (no answer being generated,
no tool call waiting): the conversation so far, the caller speech being detected, and which
session chain it belongs to. A new connection that presents the handle continues from that copy,
so ``recall`` on the new connection lists what the caller said on the old one.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .. import behavior
from ..vad import EnergyVad

__all__ = ["Item", "ModelState", "Reply"]


@dataclass(slots=True)
class Item:
    """One conversation entry, as the model remembers it."""

    role: str  # "user" | "model"
    kind: str  # "text" | "audio" | "call" | "response"
    text: str = ""
    heard_s: float = 0.0
    call_id: str | None = None
    name: str | None = None
    args: dict[str, Any] | None = None
    output: Any = None


@dataclass(slots=True)
class Reply:
    """What the model does next: call tools, or say ``text``."""

    calls: list[behavior.ToolRequest] = field(default_factory=list)
    text: str = ""
    #: The answer to tool results (not to the caller).
    after_tools: bool = False


@dataclass(slots=True)
class ModelState:
    chain: str
    started: float
    items: list[Item] = field(default_factory=list)
    vad: EnergyVad | None = None
    #: Manual activity (``activityStart`` .. ``activityEnd``): the audio of the caller's turn.
    activity: bytearray | None = None
    heard_ms: float = 0.0

    def snapshot(self) -> ModelState:
        return copy.deepcopy(self)

    def user_texts(self) -> list[str]:
        return [i.text for i in self.items if i.role == "user" and i.kind in ("text", "audio")]

    def plan(self, declared: set[str]) -> Reply:
        """The answer to the newest input (deterministic; see :mod:`s2s.emulators.behavior`)."""
        last_model = max(
            (n for n, i in enumerate(self.items) if i.role == "model"),
            default=-1,
        )
        tail = self.items[last_model + 1 :]
        responses = [i for i in tail if i.kind == "response"]
        if responses:
            names = {i.call_id: i.name for i in self.items if i.kind == "call"}
            return Reply(
                after_tools=True,
                text=behavior.reply_for_tool_outputs(
                    [
                        (names.get(r.call_id) or r.name or "unknown", _shown(r.output))
                        for r in responses
                    ]
                ),
            )
        users = [i for i in tail if i.role == "user" and i.kind in ("text", "audio")]
        if not users:
            return Reply(text="Hello! How can I help you today?")
        user = users[-1]
        if user.kind == "audio":
            return Reply(text=behavior.reply_for_audio(user.heard_s))
        requests = behavior.parse_tool_requests(user.text)
        if requests:
            known = [r for r in requests if r.name in declared]
            if known:
                return Reply(calls=known)
            return Reply(text=behavior.reply_for_unknown_tools([r.name for r in requests]))
        earlier = [
            i.text for i in self.items[: self.items.index(user)] if i.role == "user" and i.text
        ]
        return Reply(text=behavior.reply_for_text(user.text, earlier))


def _shown(response: Any) -> str:
    """How the model quotes a tool's result: the ``output`` (or ``error``) value."""
    if isinstance(response, dict):
        for key in ("output", "error"):
            if key in response:
                value = response[key]
                return value if isinstance(value, str) else json.dumps(value)
    return json.dumps(response)
