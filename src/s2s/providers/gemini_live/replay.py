"""Carrying a call onto a new connection: adopt its history, then send what it lacks once set up.

:mod:`.resumption` plans what the handle covers; here the plan is carried out: covered items and
open tool calls are adopted, and on ``setupComplete`` the history is replayed as
``clientContent`` turns, the pending audio, text and tool responses are sent again, held tool
calls go out with their results, and the input queued while connecting follows.
"""

from __future__ import annotations

import json
from typing import Any

from ...conversation import FunctionCall, FunctionOutput, HistoryItem, Message
from ...events import Role
from ..shared import result_object
from . import wire
from .base import ProtocolBase, State, _dict
from .resumption import COVERED, Plan, Record, item_key, owes_answer

__all__ = ["RESEND_CHUNK_BYTES", "ReplayMixin"]

#: Pending caller audio goes out again in messages of this size (1 s at 16 kHz).
RESEND_CHUNK_BYTES = wire.INPUT_RATE * 2


class ReplayMixin(ProtocolBase):
    """Carried history and the set-up handshake for :class:`~.protocol.GeminiLiveProtocol`."""

    def _adopt(self, carried_plan: Plan, carried: dict[str, Any]) -> None:
        """Take over a previous connection's history: what is covered, open, held."""
        items = list(self.conversation)
        for n in carried_plan.covered:
            self.ledger.keys[item_key(items[n])] = COVERED
            item = items[n]
            call = self.tools.get(item.call_id) if isinstance(item, FunctionCall) else None
            if call is not None:
                call.carried = False  # the handle's server state has it: answer it directly
        self._held = [items[n] for n in carried_plan.held]
        if self.ledger.handle is not None:
            for entry in carried.get("pending") or []:
                if entry.get("covered"):
                    self.ledger.record(self._carried_record(entry, index=None))

    def _carried_record(self, entry: Any, index: int | None) -> Record:
        kind = entry.get("kind")
        items = list(self.conversation)
        if kind == "audio":
            source = self._covered_audio if entry.get("covered") else self._carried_audio
            return Record("audio", index, audio=source[entry["start"] : entry["end"]])
        if kind in ("activity_start", "activity_end"):
            return Record(kind, index)
        item = items[entry["item"]]
        if isinstance(item, FunctionOutput):
            return Record("tool_response", index, item=item_key(item), call_id=item.call_id)
        return Record("text", index, text=getattr(item, "text", ""), item=item_key(item))

    # -- sending a carried history once set up ----------------------------------------------------

    def _setup_complete(self, now: float) -> None:
        if self.state is not State.CONNECTING:
            return
        self.state = State.READY
        if self._connected_at is not None:
            self.ledger.window_s = min(1.0, max(0.0, now - self._connected_at))
        carried = self._plan
        self._plan = None
        if carried is not None:
            items = list(self.conversation)
            replay = [items[n] for n in carried.replay]
            if replay:
                turn_complete = owes_answer(replay) and not self._held
                self._send_history(replay, turn_complete)
            audio = bytearray()
            for entry in carried.resend:
                if entry.get("kind") == "audio":
                    audio += self._carried_record(entry, index=None).audio
                    continue
                self._resend_audio(bytes(audio), now)
                audio.clear()
                self._resend(entry, items, now)
            self._resend_audio(bytes(audio), now)
            self._release_held()
        if self._foreign_audio:
            self._resend_audio(self._foreign_audio, now)
            self._foreign_audio = b""
        queued, self._queued = self._queued, []
        for op, value in queued:
            if op == "audio":
                self.send_audio(value, now)
            elif op == "text":
                self._send_text(value)
            elif op == "tool_result":
                call = self.tools.get(value.call_id)
                self._send_tool_output(value, call.name if call else "")
            else:
                self.end_turn(now)
        self._maybe_rotate()

    def _resend_audio(self, pcm: bytes, now: float) -> None:
        for start in range(0, len(pcm), RESEND_CHUNK_BYTES):
            chunk = pcm[start : start + RESEND_CHUNK_BYTES]
            index = self._send_frame(wire.audio(chunk))
            self.ledger.record(Record("audio", index, audio=chunk, at=now))

    def _resend(self, entry: Any, items: list[HistoryItem], now: float) -> None:
        if entry.get("kind") in ("activity_start", "activity_end"):
            self._activity(start=entry["kind"] == "activity_start", now=now)
            return
        item = items[entry["item"]]
        if isinstance(item, Message):
            self._send_text(item)
        elif isinstance(item, FunctionOutput):
            call = self.conversation.find_call(item.call_id)
            self._send_tool_output(item, call.name if call else "")

    def _release_held(self) -> None:
        """Send held tool calls with their results as history once every one is answered."""
        if not self._held or self.state is not State.READY:
            return
        answered = {i.call_id for i in self._held if isinstance(i, FunctionOutput)}
        calls = [i for i in self._held if isinstance(i, FunctionCall)]
        if any(c.call_id not in answered for c in calls):
            return
        held, self._held = self._held, []
        self._send_history(held, owes_answer(held))

    def _send_history(self, items: list[HistoryItem], turn_complete: bool) -> None:
        turns = self._turns(items)
        if not turns:
            return
        index = self._send_frame(wire.client_content(turns, turn_complete))
        for item in items:
            self.ledger.mark_sent(item_key(item), index)
        if turn_complete:
            self._awaiting_answer = True

    def _turns(self, items: list[HistoryItem]) -> list[dict[str, Any]]:
        """History items as ``Content`` turns (consecutive parts of one role merged)."""
        turns: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, Message):
                if not item.text:
                    continue
                role = "user" if item.role is Role.USER else "model"
                part = wire.text_part(item.text)
            elif isinstance(item, FunctionCall):
                role = "model"
                try:
                    args = json.loads(item.arguments or "{}")
                except ValueError:
                    args = {}
                part = wire.function_call_part(item.call_id, item.name, _dict(args))
            else:
                role = "user"
                call = self.conversation.find_call(item.call_id)
                part = {
                    "functionResponse": wire.function_response(
                        item.call_id,
                        call.name if call else "",
                        result_object(item.output, item.is_error),
                    )
                }
            if turns and turns[-1]["role"] == role:
                turns[-1]["parts"].append(part)
            else:
                turns.append({"role": role, "parts": [part]})
        return turns
