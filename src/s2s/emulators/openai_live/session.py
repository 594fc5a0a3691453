"""One emulated GPT-Live session (a primary WebSocket's worth of server state).

The timeline advances only with input audio (drift reference §1.6): each
``session.input_audio.append`` of ``n`` ms is answered with ``n`` ms of
``session.output_audio.delta``, speech or digital silence. An energy VAD hears the caller; after
speech and ``answer_after_ms`` of silence the utterance is transcribed (timed
``session.input_transcript.delta`` fragments) and the model answers by the shared emulator rules
(:mod:`s2s.emulators.behavior`), or delegates a ``call <tool> {json}`` request. The model keeps
talking when the caller talks over it, unless the caller's speech lasts ``barge_in_ms``: then it
stops by itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from ...audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from ...providers.openai_live.wire import VOICES
from ...providers.openai_realtime.wire import GA_MODELS
from .. import behavior
from ..vad import EnergyVad, VadEvent
from . import events as ev
from .delegation import Backend
from .options import LiveEmulatorOptions
from .schema import SessionStart, validate
from .speech import Voice, fragments

__all__ = ["LiveSession"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]

_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}


class LiveSession:
    """Server state for one connection: ``handle()`` each client frame."""

    def __init__(self, send: Send, close: Close, options: LiveEmulatorOptions, ids: ev.Ids) -> None:
        self._send_raw = send
        self._close = close
        self.options = options
        self.ids = ids
        self.started_at = time.monotonic()
        self.resource: dict[str, Any] | None = None
        self.closed = False
        self.position_ms = 0.0
        self.muted = False
        self.format = "audio/pcm"
        self.rate = 24000
        self.voice = Voice(24000, options.fragment_ms)
        self.vad: EnergyVad | None = None
        self.backend = Backend(ids, self.send, self._refuse, options.backend_model)
        self.user_texts: list[str] = []
        self.context: list[str] = []
        self.client_delegations: set[str] = set()
        self.received: Counter[str] = Counter()
        self.frames_in: list[str | bytes] = []
        self.frames_out: list[dict[str, Any]] = []
        self._utterances = list(options.utterances)
        self._speech_from: float | None = None
        self._next_usage_ms = options.usage_interval_ms
        self._event_id: str | None = None

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
        type: str = "invalid_request_error",
        param: str | None = None,
        client_event_id: str | None = None,
    ) -> None:
        await self.send(
            ev.error(
                self.ids, code, message, type=type, param=param, client_event_id=client_event_id
            )
        )

    async def _refuse(self, code: str, message: str, param: str | None) -> None:
        await self.error(code, message, param=param, client_event_id=self._event_id)

    def _say(self, text: str) -> None:
        """The model speaks ``text`` (after ``response_delay_s`` of silence)."""
        self.voice.say(text, self.position_ms, delay_ms=self.options.response_delay_s * 1000)

    @property
    def delegation_type(self) -> str:
        return str(((self.resource or {}).get("delegation") or {}).get("type") or "client")

    def _usage(self) -> dict[str, Any]:
        return {"seconds": round(self.position_ms / 1000, 3)}

    async def end(self, reason: str) -> None:
        """``session.closed{reason}``, then close the socket (a normal close)."""
        if self.closed:
            return
        await self.send(
            {
                "type": "session.closed",
                "event_id": self.ids.event(),
                "client_event_id": self._event_id if reason == "close_requested" else None,
                "reason": reason,
                "session": self.resource or {},
                "usage": self._usage(),
            }
        )
        self.closed = True
        await self._close(1000, "")

    async def run_session_timer(self) -> None:
        await asyncio.sleep(self.options.session_limit_s)
        await self.end("expired")

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
            await self.error(code, message, param=param, client_event_id=_event_id(frame))
            return
        data = parsed.model_dump(exclude_unset=True)
        kind = data["type"]
        self.received[kind] += 1
        self._event_id = data.get("event_id")
        if self.resource is None and kind != "session.start":
            await self._refuse(
                "session_not_started", "Send session.start before any other event.", None
            )
            return
        handler = getattr(self, "_on_" + kind.replace(".", "_"), None)
        if handler is None:
            await self._refuse(
                "unsupported_event", f"{kind} is not supported by this emulator.", "type"
            )
            return
        if isinstance(parsed, SessionStart):
            await self._on_session_start(parsed)
        else:
            await handler(data)

    # -- start, update, close --------------------------------------------------------------

    async def _on_session_start(self, start: SessionStart) -> None:
        if self.resource is not None:
            await self._refuse("session_already_started", "The session has already started.", None)
            return
        config = start.session.model_dump(exclude_unset=True, exclude_none=True)
        model = config["model"]
        if model in GA_MODELS:
            await self._refuse(
                "invalid_model",
                f"The model '{model}' is a Realtime model and cannot be used with Live sessions; "
                "use gpt-live-1 or gpt-live-1.1.",
                "session.model",
            )
            return
        if model not in ev.MODELS:
            await self._refuse(
                "model_not_found",
                f"The model '{model}' does not exist or you do not have access to it.",
                "session.model",
            )
            return
        voice = ((config.get("audio") or {}).get("output") or {}).get("voice")
        if isinstance(voice, str) and voice not in VOICES:
            await self._refuse(
                "invalid_value",
                f"Invalid value: '{voice}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in sorted(VOICES))
                + ".",
                "session.audio.output.voice",
            )
            return
        self.resource = ev.session_resource(
            self.ids.new("live"), int(time.time() + self.options.session_limit_s), config
        )
        fmt = self.resource["audio"]["format"]
        self.format = fmt["type"]
        self.rate = int(fmt.get("rate") or _RATES[self.format])
        self.voice = Voice(self.rate, self.options.fragment_ms)
        self.vad = EnergyVad(self.rate, silence_ms=self.options.answer_after_ms)
        responses = self.resource["delegation"].get("responses") or {}
        self.backend.model = str(responses.get("model") or self.options.backend_model)
        for item in config.get("input") or []:
            if item["role"] == "user":
                self.user_texts.append(item["content"][0]["text"])
        await self.send(
            {
                "type": "session.started",
                "event_id": self.ids.event(),
                "client_event_id": self._event_id,
                "session": self.resource,
            }
        )

    async def _on_session_update(self, data: dict[str, Any]) -> None:
        assert self.resource is not None
        update = data["session"]
        delegation = update.get("delegation")
        if delegation is not None:
            if delegation.get("type") != self.delegation_type:
                await self._refuse(
                    "invalid_value",
                    "The delegation type cannot change after the session starts.",
                    "session.delegation.type",
                )
                return
            self.resource["delegation"] = {**self.resource["delegation"], **delegation}
        if "triggers" in update:
            self.resource["triggers"] = update["triggers"]
        await self.send(
            {
                "type": "session.updated",
                "event_id": self.ids.event(),
                "client_event_id": self._event_id,
                "session": self.resource,
            }
        )

    async def _on_session_close(self, data: dict[str, Any]) -> None:
        await self.end("close_requested")

    async def _on_session_input_audio_mute(self, data: dict[str, Any]) -> None:
        self.muted = True
        await self._ack("session.input_audio.muted")

    async def _on_session_input_audio_unmute(self, data: dict[str, Any]) -> None:
        self.muted = False
        await self._ack("session.input_audio.unmuted")

    async def _ack(self, kind: str, **fields: Any) -> None:
        await self.send(
            {
                "type": kind,
                "event_id": self.ids.event(),
                "client_event_id": self._event_id,
                **fields,
            }
        )

    # -- the timeline ----------------------------------------------------------------------

    async def _on_session_input_audio_append(self, data: dict[str, Any]) -> None:
        try:
            raw = base64.b64decode(data["audio"], validate=True)
        except (binascii.Error, ValueError):
            await self._refuse(
                "invalid_value", "Invalid 'audio': expected base64-encoded audio.", "audio"
            )
            return
        if self.format == "audio/pcmu":
            pcm = ulaw_to_pcm16(raw)
        elif self.format == "audio/pcma":
            pcm = alaw_to_pcm16(raw)
        else:
            pcm = raw[: len(raw) // 2 * 2]
        if not pcm:
            return
        if self.muted:
            pcm = bytes(len(pcm))
        assert self.vad is not None
        start_ms = self.position_ms
        end_ms = start_ms + len(pcm) / 2 / self.rate * 1000
        for vad_event in self.vad.feed(pcm):
            if vad_event.kind == "start":
                self._speech_from = vad_event.at_ms
            else:
                await self._utterance_ended(vad_event)
        if (
            self.vad.in_speech
            and self._speech_from is not None
            and self.voice.speaking
            and end_ms - self._speech_from >= self.options.barge_in_ms
        ):
            self.voice.stop()  # the caller kept talking: the model gives way
        out = self.voice.take(len(pcm))
        if self.format == "audio/pcmu":
            out = pcm16_to_ulaw(out)
        elif self.format == "audio/pcma":
            out = pcm16_to_alaw(out)
        await self.send(
            {"type": "session.output_audio.delta", "delta": base64.b64encode(out).decode("ascii")}
        )
        self.position_ms = end_ms
        for fragment in self.voice.due(end_ms):
            await self._fragment("session.output_transcript.delta", fragment.text, fragment)
        if end_ms >= self._next_usage_ms:
            self._next_usage_ms += self.options.usage_interval_ms
            await self.send(
                {
                    "type": "session.usage.updated",
                    "event_id": self.ids.event(),
                    "usage": self._usage(),
                }
            )

    async def _fragment(self, kind: str, text: str, timing: Any) -> None:
        await self.send(
            {
                "type": kind,
                "event_id": self.ids.event(),
                "delta": text,
                "start_ms": timing.start_ms,
                "end_ms": timing.end_ms,
            }
        )

    async def _utterance_ended(self, vad_event: VadEvent) -> None:
        self._speech_from = None
        end = vad_event.at_ms - self.options.answer_after_ms
        start = max(0.0, end - vad_event.speech_ms)
        scripted = self._utterances.pop(0) if self._utterances else None
        text = scripted or behavior.audio_transcript(vad_event.speech_ms / 1000)
        for fragment in fragments(text, start, end, self.options.fragment_ms):
            await self._fragment("session.input_transcript.delta", fragment.text, fragment)
        earlier = list(self.user_texts)
        self.user_texts.append(text)
        requests = behavior.parse_tool_requests(text)
        if requests:
            await self._delegate(requests)
        elif scripted is None:
            self._say(behavior.reply_for_audio(vad_event.speech_ms / 1000))
        else:
            self._say(behavior.reply_for_text(text, earlier))

    async def _delegate(self, requests: list[behavior.ToolRequest]) -> None:
        kind = self.delegation_type
        if kind == "responses":
            declared = {
                str(t.get("name"))
                for t in (self.resource or {})["delegation"]["responses"].get("tools") or []
                if t.get("type") == "function"
            }
            refusal = await self.backend.delegate(requests, self.position_ms, declared)
            if refusal:
                self._say(refusal)
        elif kind == "client":
            delegation_id = self.ids.new("del")
            self.client_delegations.add(delegation_id)
            await self.send(
                {
                    "type": "session.delegation.created",
                    "event_id": self.ids.event(),
                    "offset_ms": int(self.position_ms),
                    "delegation": {"id": delegation_id, "target": "client", "type": "delegation"},
                }
            )
        else:
            self._say("I cannot do that in this session.")

    # -- appended context ------------------------------------------------------------------

    async def _check_delegation_id(self, data: dict[str, Any]) -> bool:
        delegation_id = data["delegation_id"]
        if delegation_id is None:
            return True
        if self.delegation_type == "responses":
            await self._refuse(
                "invalid_value",
                "delegation_id must be null with Responses delegation.",
                "delegation_id",
            )
            return False
        if delegation_id not in self.client_delegations:
            await self._refuse(
                "invalid_value", f"Unknown delegation_id '{delegation_id}'.", "delegation_id"
            )
            return False
        return True

    async def _appended(self, kind: str) -> None:
        at = int(self.position_ms)
        await self._ack(kind, start_ms=at, end_ms=at)

    async def _on_session_commentary_append(self, data: dict[str, Any]) -> None:
        if await self._check_delegation_id(data):
            self._say(data["content"])  # paraphrased aloud, once
            await self._appended("session.commentary.appended")

    async def _on_session_thinking_append(self, data: dict[str, Any]) -> None:
        if not await self._check_delegation_id(data):
            return
        self.context.append(data["content"])
        await self._appended("session.thinking.appended")
        requests = behavior.parse_tool_requests(data["content"])
        if requests and self.delegation_type == "responses" and data["delegation_id"] is None:
            await self._delegate(requests)  # the model acts on what it was told

    async def _on_session_instructions_append(self, data: dict[str, Any]) -> None:
        if await self._check_delegation_id(data):
            self.context.append(data["content"])
            await self._appended("session.instructions.appended")

    # -- responses delegation ---------------------------------------------------------------

    async def _not_responses(self, kind: str) -> bool:
        if self.delegation_type == "responses":
            return False
        await self._refuse(
            "invalid_request_error", f"{kind} requires Responses delegation.", "type"
        )
        return True

    async def _on_response_item_create(self, data: dict[str, Any]) -> None:
        if not await self._not_responses("response.item.create"):
            await self.backend.item_create(data["item"], self._event_id)

    async def _on_response_create(self, data: dict[str, Any]) -> None:
        if await self._not_responses("response.create"):
            return
        text = await self.backend.create()
        if text:
            self._say(text)


def _event_id(frame: str) -> str | None:
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
