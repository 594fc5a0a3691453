"""Streaming an assistant message: text deltas, or audio deltas with their transcript."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from ...audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from ...audio.resample import StreamResampler
from ...audio.synth import speech_for_text
from .base import SessionBase
from .items import _Item
from .responses import _Response

__all__ = ["OutputMixin"]


class OutputMixin(SessionBase):
    """Assistant message output for :class:`~.session.EmulatedSession`."""

    async def _emit_messages(
        self, response: _Response, parts: list[tuple[str, str | None]], modalities: list[str]
    ) -> list[_Item]:
        """Stream one assistant message item per ``(text, phase)`` of ``parts``, in order.

        Each item has its own ``output_index`` and events; its deltas arrive in playback order.
        The items' ``…done`` events come in a burst after the last item's deltas (as
        gpt-realtime-2 sends them), so for one item the order is the usual one. A cancel stops
        the item streaming and starts no further ones.
        """
        audio_out = "audio" in modalities
        started: list[tuple[_Item, dict[str, Any], str | None]] = []
        for index, (text, phase) in enumerate(parts):
            if response.cancel.is_set():
                break
            item, common, previous = await self._begin_message(response, index, audio_out, phase)
            started.append((item, common, previous))
            words = [w + " " for w in text.split(" ")]
            words[-1] = words[-1].rstrip()
            if audio_out:
                await self._stream_audio(response, item, text, words, common)
            else:
                await self._stream_text(response, item, words, common)
            item.status = "incomplete" if response.cancel.is_set() else "completed"
        for item, common, previous in started:
            await self._finish_message(response, item, common, previous, audio_out)
        return [item for item, _, _ in started]

    async def _begin_message(
        self, response: _Response, index: int, audio_out: bool, phase: str | None
    ) -> tuple[_Item, dict[str, Any], str | None]:
        item = _Item(
            id=self.ids.new("item"),
            type="message",
            role="assistant",
            audio=audio_out,
            status="in_progress",
            phase=phase,
        )
        previous = self.items[-1].id if self.items else None
        self.items.append(item)
        common = {
            "response_id": response.id,
            "item_id": item.id,
            "output_index": index,
            "content_index": 0,
        }
        empty = _Item(
            id=item.id,
            type="message",
            role="assistant",
            audio=audio_out,
            status="in_progress",
            phase=phase,
        ).wire()
        empty["content"] = []
        await self.send(
            {
                "type": "response.output_item.added",
                "event_id": self.ids.event(),
                "response_id": response.id,
                "output_index": index,
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
        return item, common, previous

    async def _stream_text(
        self, response: _Response, item: _Item, words: list[str], common: dict[str, Any]
    ) -> None:
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

    async def _finish_message(
        self,
        response: _Response,
        item: _Item,
        common: dict[str, Any],
        previous: str | None,
        audio_out: bool,
    ) -> None:
        if item.status == "completed":
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
                "output_index": common["output_index"],
                "item": item.wire(),
            }
        )

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
