"""The input audio buffer: appends, server VAD / turn detection, commit, clear, transcription."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from ...audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from .. import behavior
from ..vad import EnergyVad, voiced_seconds
from .base import SessionBase
from .items import _Item

__all__ = ["InputAudioMixin"]


class InputAudioMixin(SessionBase):
    """Input audio and turn detection for :class:`~.session.EmulatedSession`."""

    # -- config accessors ----------------------------------------------------------------------

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.session["audio"]["input"].get("turn_detection")
        return td

    @property
    def transcription(self) -> dict[str, Any] | None:
        tr: dict[str, Any] | None = self.session["audio"]["input"].get("transcription")
        return tr

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
