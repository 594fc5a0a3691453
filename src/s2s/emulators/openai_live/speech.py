"""The model's voice on the session timeline: queued speech, played as input audio arrives.

The GPT-Live timeline advances only while input audio flows (drift reference §1.6): every input
chunk of ``n`` ms is answered with ``n`` ms of output, speech when the model talks, digital
silence otherwise. :class:`Voice` holds what the model still has to say (PCM16 at the session
rate) and its transcript as timed fragments of about ``fragment_ms`` (§1.7: fragments carry their
own leading space, except the first of a segment).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ...audio.resample import StreamResampler
from ...audio.synth import speech_for_text

__all__ = ["Fragment", "Voice", "fragments"]


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    start_ms: int
    end_ms: int


def fragments(text: str, start_ms: float, end_ms: float, fragment_ms: float) -> list[Fragment]:
    """``text`` split into word groups spread evenly over ``start_ms``-``end_ms``."""
    words = text.split()
    if not words:
        return []
    span = max(1.0, end_ms - start_ms)
    count = max(1, min(len(words), round(span / fragment_ms)))
    out: list[Fragment] = []
    for i in range(count):
        group = words[i * len(words) // count : (i + 1) * len(words) // count]
        if not group:
            continue
        piece = " ".join(group)
        out.append(
            Fragment(
                piece if i == 0 else " " + piece,
                int(start_ms + span * i / count),
                int(start_ms + span * (i + 1) / count),
            )
        )
    return out


class Voice:
    """Speech the model has queued, consumed chunk by chunk as the timeline advances."""

    def __init__(self, rate: int, fragment_ms: float) -> None:
        self.rate = rate
        self.fragment_ms = fragment_ms
        self._pcm = bytearray()
        self._pending: deque[Fragment] = deque()
        #: Everything said so far (text of emitted fragments), per utterance, for history.
        self.said: list[str] = []

    @property
    def speaking(self) -> bool:
        return bool(self._pcm)

    def queued_ms(self) -> float:
        return len(self._pcm) / 2 / self.rate * 1000

    def say(self, text: str, now_ms: float, *, delay_ms: float = 0.0) -> None:
        """Queue ``text``; it starts where the queue ends (``now_ms`` if the model is quiet),
        after ``delay_ms`` of silence."""
        pcm = speech_for_text(text, 24000)
        if self.rate != 24000:
            resampler = StreamResampler(24000, self.rate)
            pcm = resampler.process(pcm) + resampler.flush()
        self._pcm += bytes(int(self.rate * delay_ms / 1000) * 2)
        start = now_ms + self.queued_ms()
        self._pcm += pcm[: len(pcm) // 2 * 2]
        end = now_ms + self.queued_ms()
        self._pending.extend(fragments(text, start, end, self.fragment_ms))
        self.said.append(text)

    def take(self, n_bytes: int) -> bytes:
        """The next ``n_bytes`` of output: queued speech, then digital silence."""
        chunk = bytes(self._pcm[:n_bytes])
        del self._pcm[:n_bytes]
        return chunk + bytes(n_bytes - len(chunk))

    def due(self, now_ms: float) -> list[Fragment]:
        """Fragments whose speech has been played by ``now_ms``."""
        out: list[Fragment] = []
        while self._pending and self._pending[0].end_ms <= now_ms:
            out.append(self._pending.popleft())
        return out

    def stop(self) -> None:
        """The model stops talking: what it had not said yet is dropped."""
        self._pcm.clear()
        self._pending.clear()
