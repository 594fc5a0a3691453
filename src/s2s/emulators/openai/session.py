"""One emulated OpenAI Realtime session (a WebSocket connection's worth of server state).

Behaviour is deterministic (see :mod:`s2s.emulators.behavior`); protocol behaviour follows the
GA server: events, their order and shapes, validation errors, server VAD on input energy,
barge-in cancelling the response in progress, cancel, truncate, tool calls and the session
time limit.

The session class is assembled from sibling modules, one concern each; see :mod:`.base`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel

from ...providers.openai_realtime.wire import VOICES
from ...tasks import TaskSet
from ..vad import EnergyVad
from . import events as ev
from .base import Close, Send
from .conversation import ConversationMixin
from .input_audio import InputAudioMixin
from .items import _Item
from .options import EmulatorOptions
from .output import OutputMixin
from .responses import ResponsesMixin, _Response
from .tool_calls import ToolCallsMixin
from .validation import validate

__all__ = ["EmulatedSession", "EmulatorOptions"]


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``session.update`` semantics: only sent fields change; a union object whose ``type``
    changes (server_vad -> semantic_vad, pcm -> pcmu) is replaced, not merged."""
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("type", old.get("type")) == old.get("type")
        ):
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


class EmulatedSession(
    InputAudioMixin, ConversationMixin, ResponsesMixin, ToolCallsMixin, OutputMixin
):
    """Server state for one connection. ``handle()`` each client frame; ``run()`` the timers."""

    def __init__(
        self, send: Send, close: Close, options: EmulatorOptions, model: str, ids: ev.Ids
    ) -> None:
        self._send_raw = send
        self._close = close
        self.options = options
        self.ids = ids
        self.model = model
        self.started = time.monotonic()
        self.session = ev.default_session(
            ids.new("sess"), model, int(time.time() + options.session_limit_s)
        )
        self.conversation_id = ids.new("conv")
        self.items: list[_Item] = []
        self.received: Counter[str] = Counter()
        self.audio_received_ms = 0.0
        self.closed = False
        self._buffer = bytearray()
        self._buffer_rate = 24000
        self._vad: EnergyVad | None = None
        self._speech_item: str | None = None
        self._response: _Response | None = None
        self._tasks = TaskSet()
        self.frames_in: list[str | bytes] = []
        self.frames_out: list[dict[str, Any]] = []
        self.first_audio = b""
        self.append_times: list[float] = []
        self.delta_times: dict[str, list[float]] = {}

    async def start(self) -> None:
        if self.options.record:
            self.frames_out.clear()
        await self.send(
            {"type": "session.created", "event_id": self.ids.event(), "session": self.session}
        )

    def shutdown(self) -> None:
        self.closed = True
        self._tasks.cancel()

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, frame: str | bytes) -> None:
        if self.options.record:
            self.frames_in.append(frame)
        if isinstance(frame, bytes):
            await self.error(
                "invalid_event",
                "Expected a text WebSocket message; binary frames are not supported.",
            )
            return
        parsed = validate(frame)
        if not isinstance(parsed, BaseModel):
            code, message, param = parsed
            await self.error(code, message, param=param, event_id=_event_id(frame))
            return
        data = parsed.model_dump(exclude_unset=True)
        kind = data["type"]
        self.received[kind] += 1
        event_id = data.get("event_id")
        handler = getattr(self, "_on_" + kind.replace(".", "_"))
        await handler(data, event_id)

    async def _on_session_update(self, data: dict[str, Any], event_id: str | None) -> None:
        update = data["session"]
        voice = ((update.get("audio") or {}).get("output") or {}).get("voice")
        if isinstance(voice, str) and voice not in VOICES:
            await self.error(
                "invalid_value",
                f"Invalid value: '{voice}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in sorted(VOICES))
                + ".",
                param="session.audio.output.voice",
                event_id=event_id,
            )
            return
        update.pop("model", None)  # the model is fixed by the URL
        self.session = _merge(self.session, update)
        self._vad = self._build_vad()
        await self.send(
            {"type": "session.updated", "event_id": self.ids.event(), "session": self.session}
        )

    async def _on_session_close(self, data: dict[str, Any], event_id: str | None) -> None:
        await self._close(1000, "")

    async def _on_output_audio_buffer_clear(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        await self.error(
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
            param="type",
            event_id=event_id,
        )

    # -- limits --------------------------------------------------------------------------------

    async def run_session_timer(self) -> None:
        await asyncio.sleep(self.options.session_limit_s)
        minutes = self.options.session_limit_s / 60
        limit = (
            f"{minutes:g} minutes" if minutes >= 1 else f"{self.options.session_limit_s:g} seconds"
        )
        await self.error("session_expired", f"Your session hit the maximum duration of {limit}.")
        await self._close(1001, "session_expired")


def _event_id(frame: str) -> str | None:
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
