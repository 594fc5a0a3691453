"""One emulated OpenAI Realtime session (a WebSocket connection's worth of server state).

Behaviour is deterministic (see :mod:`s2s.emulators.behavior`); protocol behaviour follows the
GA server: events, their order and shapes, validation errors, server VAD on input energy,
barge-in cancelling the response in progress, cancel, truncate, tool calls and the session
time limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ...audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from ...audio.resample import StreamResampler
from ...audio.synth import speech_for_text
from ...providers.openai_realtime.wire import VOICES
from ...tasks import TaskSet
from .. import behavior
from ..vad import EnergyVad, voiced_seconds
from . import events as ev
from .validation import validate

__all__ = ["EmulatedSession", "EmulatorOptions"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


@dataclass(slots=True)
class EmulatorOptions:
    """Knobs for the OpenAI emulator.

    Attributes:
        api_key: the only accepted key; ``None`` accepts any non-empty key.
        speed: how much faster than real time response audio is sent.
        chunk_ms: duration of each ``response.output_audio.delta``.
        response_delay_s: pause between ``response.created`` and the first output (model latency).
        session_limit_s: the session time limit (production: 3600); then ``session_expired``.
        event_delay_s: fault injection: delay before every server event.
        record: keep every frame in and out (``frames_in`` / ``frames_out``) for inspection.
        timing: keep ``time.monotonic()`` of every audio append received (``append_times``) and
            every audio delta sent (``delta_times[item_id]``), for latency benchmarks.
    """

    api_key: str | None = None
    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    session_limit_s: float = 3600.0
    event_delay_s: float = 0.0
    record: bool = False
    timing: bool = False


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
        return ev.assistant_item(self.id, self.status, [part])


@dataclass(slots=True)
class _Response:
    id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    task: asyncio.Task[None] | None = None


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


class EmulatedSession:
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

    # -- plumbing ------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.options.event_delay_s:
            await asyncio.sleep(self.options.event_delay_s)
        if self.options.record:
            self.frames_out.append(event)
        await self._send_raw(event)

    async def error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        await self.send(
            ev.error(self.ids, code, message, type=type, param=param, event_id=event_id)
        )

    async def start(self) -> None:
        if self.options.record:
            self.frames_out.clear()
        await self.send(
            {"type": "session.created", "event_id": self.ids.event(), "session": self.session}
        )

    def shutdown(self) -> None:
        self.closed = True
        self._tasks.cancel()

    # -- config accessors ----------------------------------------------------------------------

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.session["audio"]["input"].get("turn_detection")
        return td

    @property
    def transcription(self) -> dict[str, Any] | None:
        tr: dict[str, Any] | None = self.session["audio"]["input"].get("transcription")
        return tr

    def _format(self, direction: str) -> str:
        fmt = self.session["audio"][direction].get("format") or {}
        return str(fmt.get("type") or "audio/pcm")

    def _build_vad(self) -> EnergyVad | None:
        td = self.turn_detection
        if td is None:
            return None
        if td.get("type") == "semantic_vad":
            silence = {"low": 800, "medium": 500, "high": 250}.get(td.get("eagerness") or "", 500)
        else:
            silence = td.get("silence_duration_ms") or 200
        threshold = td.get("threshold")
        threshold = 0.5 if threshold is None else threshold
        rate = 24000 if self._format("input") == "audio/pcm" else 8000
        return EnergyVad(rate, threshold_dbfs=-60.0 + 40.0 * threshold, silence_ms=silence)

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

    # -- input audio ---------------------------------------------------------------------------

    async def _on_input_audio_buffer_append(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        if self.options.timing:
            self.append_times.append(time.monotonic())
        try:
            raw = base64.b64decode(data["audio"], validate=True)
        except (binascii.Error, ValueError):
            await self.error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio.",
                param="audio",
                event_id=event_id,
            )
            return
        fmt = self._format("input")
        if self.options.timing and not self.first_audio:
            self.first_audio = raw[:16]
        if fmt == "audio/pcmu":
            pcm, rate = ulaw_to_pcm16(raw), 8000
        elif fmt == "audio/pcma":
            pcm, rate = alaw_to_pcm16(raw), 8000
        else:
            pcm, rate = raw[: len(raw) // 2 * 2], 24000
        self._buffer_rate = rate
        self._buffer += pcm
        self.audio_received_ms += len(pcm) / 2 / rate * 1000
        if self._vad is None and self.turn_detection is not None:
            self._vad = self._build_vad()
        if self._vad is None:
            return
        for vad_event in self._vad.feed(pcm):
            if vad_event.kind == "start":
                await self._speech_started(vad_event.at_ms)
            else:
                await self._speech_stopped(vad_event.at_ms, vad_event.speech_ms / 1000)

    async def _speech_started(self, at_ms: float) -> None:
        td = self.turn_detection or {}
        self._speech_item = self.ids.new("item")
        padding = td.get("prefix_padding_ms") or 0
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": self.ids.event(),
                "audio_start_ms": int(max(0.0, at_ms - padding)),
                "item_id": self._speech_item,
            }
        )
        if self._response is not None and td.get("interrupt_response", True):
            await self._cancel(self._response, "turn_detected")

    async def _speech_stopped(self, at_ms: float, heard_s: float) -> None:
        item_id = self._speech_item or self.ids.new("item")
        self._speech_item = None
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "event_id": self.ids.event(),
                "audio_end_ms": int(at_ms),
                "item_id": item_id,
            }
        )
        await self._commit(item_id, heard_s)
        if (self.turn_detection or {}).get("create_response", True):
            await self._start_response()

    async def _on_input_audio_buffer_commit(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        buffered_ms = len(self._buffer) / 2 / self._buffer_rate * 1000
        if buffered_ms < 100:
            await self.error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                event_id=event_id,
            )
            return
        heard = voiced_seconds(
            bytes(self._buffer), self._buffer_rate, self._vad.threshold_dbfs if self._vad else -40.0
        )
        if self._vad is not None:
            self._vad.reset()
        await self._commit(self._speech_item or self.ids.new("item"), heard)
        self._speech_item = None

    async def _on_input_audio_buffer_clear(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        self._buffer.clear()
        if self._vad is not None:
            self._vad.reset()
        await self.send({"type": "input_audio_buffer.cleared", "event_id": self.ids.event()})

    async def _commit(self, item_id: str, heard_s: float) -> None:
        previous = self.items[-1].id if self.items else None
        self._buffer.clear()
        item = _Item(id=item_id, type="message", role="user", audio=True, heard_s=heard_s)
        self.items.append(item)
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "event_id": self.ids.event(),
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send(
                {
                    "type": kind,
                    "event_id": self.ids.event(),
                    "previous_item_id": previous,
                    "item": item.wire(),
                }
            )
        if self.transcription:
            self._tasks.spawn(self._transcribe(item))

    async def _transcribe(self, item: _Item) -> None:
        await asyncio.sleep(0.02)  # transcripts arrive asynchronously, as in production
        text = behavior.audio_transcript(item.heard_s)
        item.text = text
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "event_id": self.ids.event(),
                "item_id": item.id,
                "content_index": 0,
                "delta": text,
            }
        )
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": self.ids.event(),
                "item_id": item.id,
                "content_index": 0,
                "transcript": text,
                "usage": {
                    "type": "tokens",
                    "input_tokens": int(item.heard_s * 10) + 1,
                    "output_tokens": len(text) // 4 + 1,
                    "total_tokens": int(item.heard_s * 10) + len(text) // 4 + 2,
                    "input_token_details": {
                        "audio_tokens": int(item.heard_s * 10) + 1,
                        "text_tokens": 0,
                    },
                },
            }
        )

    # -- conversation items --------------------------------------------------------------------

    def _find(self, item_id: str) -> _Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    async def _find_or_error(self, item_id: str, event_id: str | None) -> _Item | None:
        """The item, or ``None`` after telling the client it does not exist."""
        item = self._find(item_id)
        if item is None:
            await self.error(
                "invalid_value",
                f"Item with item_id '{item_id}' not found.",
                param="item_id",
                event_id=event_id,
            )
        return item

    async def _on_conversation_item_create(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        raw = data["item"]
        item_id = raw.get("id") or self.ids.new("item")
        if self._find(item_id) is not None:
            await self.error(
                "invalid_value",
                f"Item with id '{item_id}' already exists.",
                param="item.id",
                event_id=event_id,
            )
            return
        kind = raw["type"]
        if kind == "message":
            parts = raw.get("content") or []
            text = " ".join(p.get("text") or p.get("transcript") or "" for p in parts).strip()
            item = _Item(id=item_id, type="message", role=raw["role"], text=text)
        elif kind == "function_call":
            item = _Item(
                id=item_id,
                type="function_call",
                call_id=raw.get("call_id") or self.ids.new("call"),
                name=raw["name"],
                arguments=raw["arguments"],
            )
        else:
            item = _Item(
                id=item_id,
                type="function_call_output",
                call_id=raw["call_id"],
                output=raw["output"],
            )
        previous_id = data.get("previous_item_id")
        if previous_id:
            previous = self._find(previous_id)
            if previous is None:
                await self.error(
                    "invalid_value",
                    f"Previous item with id '{previous_id}' not found.",
                    param="previous_item_id",
                    event_id=event_id,
                )
                return
            self.items.insert(self.items.index(previous) + 1, item)
        else:
            previous_id = self.items[-1].id if self.items else None
            self.items.append(item)
        for kind_name in ("conversation.item.added", "conversation.item.done"):
            await self.send(
                {
                    "type": kind_name,
                    "event_id": self.ids.event(),
                    "previous_item_id": previous_id,
                    "item": item.wire(),
                }
            )

    async def _on_conversation_item_truncate(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        if item.role != "assistant" or not item.audio:
            await self.error(
                "invalid_value",
                "Only model output audio messages can be truncated.",
                param="item_id",
                event_id=event_id,
            )
            return
        end = data["audio_end_ms"]
        if end > item.audio_ms:
            await self.error(
                "invalid_value",
                f"Audio content of {int(item.audio_ms)}ms is already shorter than {end}ms.",
                param="audio_end_ms",
                event_id=event_id,
            )
            return
        if item.audio_ms:
            item.text = item.text[: int(len(item.text) * end / item.audio_ms)]
        item.audio_ms = float(end)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "event_id": self.ids.event(),
                "item_id": item.id,
                "content_index": data["content_index"],
                "audio_end_ms": end,
            }
        )

    async def _on_conversation_item_delete(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        self.items.remove(item)
        await self.send(
            {"type": "conversation.item.deleted", "event_id": self.ids.event(), "item_id": item.id}
        )

    async def _on_conversation_item_retrieve(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        await self.send(
            {
                "type": "conversation.item.retrieved",
                "event_id": self.ids.event(),
                "item": item.wire(),
            }
        )

    # -- responses -----------------------------------------------------------------------------

    async def _on_response_create(self, data: dict[str, Any], event_id: str | None) -> None:
        if self._response is not None:
            await self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                event_id=event_id,
            )
            return
        params = data.get("response") or {}
        await self._start_response(params.get("output_modalities"))

    async def _on_response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        response = self._response
        wanted = data.get("response_id")
        if response is None or (wanted and wanted != response.id):
            await self.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                event_id=event_id,
            )
            return
        await self._cancel(response, "client_cancelled")

    async def _cancel(self, response: _Response, reason: str) -> None:
        response.reason = reason
        response.cancel.set()
        if response.task is not None:
            await asyncio.shield(response.task)

    async def _start_response(self, modalities: list[str] | None = None) -> None:
        response = _Response(id=self.ids.new("resp"))
        self._response = response
        modalities = modalities or list(self.session.get("output_modalities") or ["audio"])
        response.task = self._tasks.spawn(self._run_response(response, modalities))

    def _plan(self) -> tuple[list[behavior.ToolRequest], str]:
        """What to answer: tool calls to make, or the text to say."""
        last_model = max(
            (
                i
                for i, item in enumerate(self.items)
                if item.role == "assistant" or item.type == "function_call"
            ),
            default=-1,
        )
        tail = self.items[last_model + 1 :]
        outputs = [item for item in tail if item.type == "function_call_output"]
        if outputs:
            calls = {i.call_id: i.name for i in self.items if i.type == "function_call"}
            return [], behavior.reply_for_tool_outputs(
                [(calls.get(o.call_id) or "unknown", o.output or "") for o in outputs]
            )
        users = [item for item in tail if item.role == "user"]
        if not users:
            return [], "Hello! How can I help you today?"
        user = users[-1]
        earlier = [
            i.text for i in self.items[: self.items.index(user)] if i.role == "user" and i.text
        ]
        if user.audio:
            return [], behavior.reply_for_audio(user.heard_s)
        requests = behavior.parse_tool_requests(user.text)
        if requests:
            declared = {t.get("name") for t in self.session.get("tools") or []}
            known = [r for r in requests if r.name in declared]
            if known:
                return known, ""
            return [], behavior.reply_for_unknown_tools([r.name for r in requests])
        return [], behavior.reply_for_text(user.text, earlier)

    async def _run_response(self, response: _Response, modalities: list[str]) -> None:
        voice = str((self.session["audio"]["output"].get("voice")) or "alloy")
        await self.send(
            {
                "type": "response.created",
                "event_id": self.ids.event(),
                "response": ev.response_object(
                    response.id, self.conversation_id, "in_progress", [], modalities, voice
                ),
            }
        )
        try:
            if self.options.response_delay_s:
                await asyncio.wait_for(response.cancel.wait(), self.options.response_delay_s)
        except TimeoutError:
            pass
        calls, text = self._plan()
        output: list[dict[str, Any]] = []
        status = "completed"
        if calls and not response.cancel.is_set():
            for index, request in enumerate(calls):
                output.append(await self._emit_call(response, index, request))
        elif not response.cancel.is_set():
            item = await self._emit_message(response, text, modalities)
            output.append(item.wire())
        if response.cancel.is_set():
            status = "cancelled"
        prompt_chars = sum(len(i.text) for i in self.items)
        spoken = sum(len(i.text) for i in self.items if i.role == "assistant")
        audio_in = int(sum(i.heard_s for i in self.items) * 10)
        done = ev.response_object(
            response.id,
            self.conversation_id,
            status,
            output,
            modalities,
            voice,
            usage=ev.usage(
                prompt_chars // 4 + 1,
                audio_in,
                len(text) // 4 + 1 if text else 0,
                int(len(text) * 0.6) if "audio" in modalities else 0,
            ),
            status_details=(
                {"type": "cancelled", "reason": response.reason} if status == "cancelled" else None
            ),
        )
        self._response = None
        await self.send({"type": "response.done", "event_id": self.ids.event(), "response": done})
        await self.send(
            {
                "type": "rate_limits.updated",
                "event_id": self.ids.event(),
                "rate_limits": ev.rate_limits(400000 - spoken - prompt_chars),
            }
        )

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

    async def _emit_message(self, response: _Response, text: str, modalities: list[str]) -> _Item:
        audio_out = "audio" in modalities
        item = _Item(
            id=self.ids.new("item"),
            type="message",
            role="assistant",
            audio=audio_out,
            status="in_progress",
        )
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        common = {
            "response_id": response.id,
            "item_id": item.id,
            "output_index": 0,
            "content_index": 0,
        }
        empty = _Item(
            id=item.id, type="message", role="assistant", audio=audio_out, status="in_progress"
        ).wire()
        empty["content"] = []
        await self.send(
            {
                "type": "response.output_item.added",
                "event_id": self.ids.event(),
                "response_id": response.id,
                "output_index": 0,
                "item": empty,
            }
        )
        await self.send(
            {
                "type": "conversation.item.added",
                "event_id": self.ids.event(),
                "previous_item_id": previous,
                "item": empty,
            }
        )
        part: dict[str, Any] = (
            {"type": "audio", "transcript": ""} if audio_out else {"type": "text", "text": ""}
        )
        await self.send(
            {
                "type": "response.content_part.added",
                "event_id": self.ids.event(),
                **common,
                "part": part,
            }
        )
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip()
        if audio_out:
            await self._stream_audio(response, item, text, words, common)
        else:
            for word in words:
                if response.cancel.is_set():
                    break
                item.text += word
                await self.send(
                    {
                        "type": "response.output_text.delta",
                        "event_id": self.ids.event(),
                        **common,
                        "delta": word,
                    }
                )
        cancelled = response.cancel.is_set()
        item.status = "incomplete" if cancelled else "completed"
        if not cancelled:
            if audio_out:
                await self.send(
                    {"type": "response.output_audio.done", "event_id": self.ids.event(), **common}
                )
                await self.send(
                    {
                        "type": "response.output_audio_transcript.done",
                        "event_id": self.ids.event(),
                        **common,
                        "transcript": item.text,
                    }
                )
            else:
                await self.send(
                    {
                        "type": "response.output_text.done",
                        "event_id": self.ids.event(),
                        **common,
                        "text": item.text,
                    }
                )
        done_part = (
            {"type": "audio", "transcript": item.text}
            if audio_out
            else {"type": "text", "text": item.text}
        )
        await self.send(
            {
                "type": "response.content_part.done",
                "event_id": self.ids.event(),
                **common,
                "part": done_part,
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
                "response_id": response.id,
                "output_index": 0,
                "item": item.wire(),
            }
        )
        return item

    async def _stream_audio(
        self, response: _Response, item: _Item, text: str, words: list[str], common: dict[str, Any]
    ) -> None:
        fmt = self._format("output")
        rate = 24000 if fmt == "audio/pcm" else 8000
        # ~1 ms per second of speech; off the loop so appends keep being read meanwhile
        pcm = await asyncio.to_thread(speech_for_text, text, 24000)
        if rate != 24000:
            resampler = StreamResampler(24000, rate)
            pcm = resampler.process(pcm) + resampler.flush()
        step = rate * 2 * self.options.chunk_ms // 1000
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
        per_chunk = [0] * len(chunks)
        for w in range(len(words)):
            per_chunk[min(len(chunks) - 1, w * len(chunks) // max(1, len(words)))] += 1
        word_iter = iter(words)
        interval = self.options.chunk_ms / 1000 / max(self.options.speed, 0.01)
        for chunk, n_words in zip(chunks, per_chunk, strict=True):
            if response.cancel.is_set():
                return
            payload = chunk
            if fmt == "audio/pcmu":
                payload = pcm16_to_ulaw(chunk)
            elif fmt == "audio/pcma":
                payload = pcm16_to_alaw(chunk)
            if self.options.timing:
                self.delta_times.setdefault(item.id, []).append(time.monotonic())
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "event_id": self.ids.event(),
                    **common,
                    "delta": base64.b64encode(payload).decode("ascii"),
                }
            )
            item.audio_ms += len(chunk) / 2 / rate * 1000
            for _ in range(n_words):
                word = next(word_iter)
                item.text += word
                await self.send(
                    {
                        "type": "response.output_audio_transcript.delta",
                        "event_id": self.ids.event(),
                        **common,
                        "delta": word,
                    }
                )
            try:
                await asyncio.wait_for(response.cancel.wait(), interval)
            except TimeoutError:
                pass

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
