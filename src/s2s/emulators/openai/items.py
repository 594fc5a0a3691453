"""A conversation item as the emulated server holds it, and its wire shape (``realtime.item``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import events as ev

__all__ = ["_Item"]


@dataclass(slots=True)
class _Item:
    id: str
    type: str  # message | function_call | function_call_output
    role: str | None = None
    text: str = ""
    audio: bool = False  # a user audio item / an assistant audio item
    heard_s: float = 0.0
    audio_ms: float = 0.0
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    status: str = "completed"
    #: An assistant item's ``phase`` ("commentary" / "final_answer"), sent only when set.
    phase: str | None = None

    def wire(self) -> dict[str, Any]:
        if self.type == "function_call":
            return ev.function_call_item(
                self.id, self.call_id or "", self.name or "", self.arguments or "", self.status
            )
        if self.type == "function_call_output":
            return {
                "id": self.id,
                "type": "function_call_output",
                "object": "realtime.item",
                "status": "completed",
                "call_id": self.call_id,
                "output": self.output,
            }
        if self.role == "user":
            if self.audio:
                return ev.user_audio_item(self.id, self.status, self.text or None)
            return {
                "id": self.id,
                "type": "message",
                "object": "realtime.item",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_text", "text": self.text}],
            }
        if self.role == "system":
            return {
                "id": self.id,
                "type": "message",
                "object": "realtime.item",
                "status": "completed",
                "role": "system",
                "content": [{"type": "input_text", "text": self.text}],
            }
        part = (
            {"type": "output_audio", "transcript": self.text}
            if self.audio
            else {"type": "output_text", "text": self.text}
        )
        wire = ev.assistant_item(self.id, self.status, [part])
        if self.phase is not None:
            wire["phase"] = self.phase
        return wire
