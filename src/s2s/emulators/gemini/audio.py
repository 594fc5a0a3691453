"""Audio of an emulated Gemini Live connection: caller audio in (decoding, VAD), speech out.

:class:`AudioMixin` is a part of :class:`~.session.EmulatedSession`: it decodes
``realtimeInput`` audio (any ``audio/pcm`` rate, resampled to 16 kHz), feeds the energy VAD
that finds the caller's turns, and streams an answer as audio chunks with its transcription.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any

from ...audio.resample import StreamResampler
from ...audio.synth import speech_for_text
from ...providers.gemini_live import wire
from ..vad import EnergyVad
from . import messages as msg
from .options import EmulatorOptions
from .setup import SessionSetup
from .state import Item, ModelState
from .validation import INVALID_ARGUMENT

__all__ = ["AudioMixin"]


class AudioMixin:
    """Caller audio in and answer audio out (state lives in the session)."""

    options: EmulatorOptions
    setup: SessionSetup | None
    state: ModelState
    audio_received_ms: float
    _resamplers: dict[int, StreamResampler]

    @abstractmethod
    async def send(self, message: dict[str, Any]) -> None: ...

    @abstractmethod
    async def refuse(self, code: int, reason: str) -> None: ...

    @abstractmethod
    async def _caller_starts(self) -> None: ...

    @abstractmethod
    async def _caller_turn(self, heard_s: float) -> None: ...

    def _new_vad(self) -> EnergyVad:
        assert self.setup is not None
        return EnergyVad(
            wire.INPUT_RATE,
            threshold_dbfs=self.setup.start_threshold_dbfs,
            silence_ms=self.setup.silence_ms,
        )

    async def _decode_audio(self, blob: wire.Blob) -> bytes | None:
        mime = (blob.mime_type or "").replace(" ", "")
        if not mime.startswith("audio/pcm"):
            await self.refuse(
                INVALID_ARGUMENT,
                f"Unsupported mime type for realtime audio: {blob.mime_type!r}; "
                "use audio/pcm;rate=16000.",
            )
            return None
        rate = wire.INPUT_RATE
        for param in mime.split(";")[1:]:
            if param.startswith("rate="):
                try:
                    rate = int(param[5:])
                except ValueError:
                    rate = 0
        if not 8000 <= rate <= 48000:
            await self.refuse(INVALID_ARGUMENT, f"Unsupported audio sample rate in {mime!r}.")
            return None
        try:
            raw = wire.b64decode(blob.data or "")
        except ValueError:
            await self.refuse(
                INVALID_ARGUMENT,
                "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES), "
                "Base64 decoding failed.",
            )
            return None
        pcm = raw[: len(raw) // 2 * 2]
        if rate != wire.INPUT_RATE:
            resampler = self._resamplers.setdefault(rate, StreamResampler(rate, wire.INPUT_RATE))
            pcm = resampler.process(pcm)
        self.audio_received_ms += len(pcm) / 32.0
        return pcm

    async def _on_audio(self, pcm: bytes) -> None:
        if self.state.activity is not None:
            self.state.activity += pcm
        if self.state.vad is not None:
            await self._feed_vad(pcm)

    async def _feed_vad(self, pcm: bytes) -> None:
        assert self.state.vad is not None
        for event in self.state.vad.feed(pcm):
            if event.kind == "start":
                await self._caller_starts()
            else:
                await self._caller_turn(event.speech_ms / 1000)

    async def _speak(self, cancel: asyncio.Event, text: str) -> str:
        """Stream ``text`` as audio with its transcription; returns what was said before a cut."""
        setup = self.setup
        assert setup is not None
        item = Item("model", "text")
        self.state.items.append(item)
        pcm = speech_for_text(text, wire.OUTPUT_RATE)
        step = wire.OUTPUT_RATE * 2 * self.options.chunk_ms // 1000
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip()
        per_chunk = [0] * len(chunks)
        for w in range(len(words)):
            per_chunk[min(len(chunks) - 1, w * len(chunks) // max(1, len(words)))] += 1
        word_iter = iter(words)
        for chunk, n_words in zip(chunks, per_chunk, strict=True):
            interval = self.options.chunk_ms / 1000 / max(self.options.speed, 0.01)
            if cancel.is_set():
                break
            await self.send(msg.audio(chunk))
            for _ in range(n_words):
                word = next(word_iter)
                item.text += word
                if setup.output_transcription:
                    await self.send(msg.output_transcription(word))
            try:
                await asyncio.wait_for(cancel.wait(), interval)
            except TimeoutError:
                pass
        return item.text
