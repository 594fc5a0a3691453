"""Both audio directions of the simulated Genesys client (sans-I/O).

- :class:`CallerAudio`: the caller's speech, cut into 200 ms frames in the negotiated format
  (μ-law silence when nothing is queued; an ``internal`` channel carries silence). The driver
  takes one frame per 200 ms of real time; frames taken while audio may not flow are dropped,
  as a phone line drops speech during a hold.
- :class:`BotAudio`: the server's audio, played on a real-time :class:`~.playout.Playout`
  (8 bytes per ms for PCMU). It says when to send ``playback_started`` (the queue goes from
  empty to playing) and ``playback_completed`` (it drains, or a ``barge_in`` flushes it), and
  runs the 429 rate limiter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from s2s.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16

from .genesys_messages import MediaFormat, format_duration
from .genesys_ratelimit import FrameRateLimiter
from .genesys_timeline import BargeIn, BotFrame, GenesysTimeline, RateLimitSent
from .playout import Playout

__all__ = ["CALLER_FRAME_MS", "ULAW_SILENCE", "BotAudio", "BotAudioResult", "CallerAudio"]

#: Caller audio frame length (1600 B of PCMU mono).
CALLER_FRAME_MS = 200
ULAW_SILENCE = pcm16_to_ulaw(b"\x00\x00")


class CallerAudio:
    """Queued caller speech (μ-law 8 kHz) and the framing of it."""

    def __init__(self) -> None:
        self._queue = bytearray()
        #: μ-law bytes queued and taken so far (``say`` waits for taken >= its end).
        self.enqueued = 0
        self.consumed = 0

    def enqueue(self, ulaw: bytes) -> int:
        """Queue speech; returns the byte count it ends at."""
        self._queue += ulaw
        self.enqueued += len(ulaw)
        return self.enqueued

    def take(self, media: MediaFormat | None) -> bytes | None:
        """Consume 200 ms of speech; the frame in ``media``'s format, or ``None`` to drop it."""
        samples = 8 * CALLER_FRAME_MS  # 8 kHz
        chunk = bytes(self._queue[:samples])
        del self._queue[:samples]
        self.consumed += len(chunk)
        if media is None:
            return None
        return encode_frame(chunk + ULAW_SILENCE * (samples - len(chunk)), media)


def encode_frame(ulaw: bytes, media: MediaFormat) -> bytes:
    """Caller μ-law in the negotiated format, channels interleaved in ``media.channels`` order."""
    caller = ulaw if media.format == "PCMU" else ulaw_to_pcm16(ulaw)
    if len(media.channels) == 1:
        return caller
    width = media.bytes_per_sample
    silent = np.frombuffer(ULAW_SILENCE if width == 1 else b"\x00\x00", dtype=np.uint8)
    samples = np.frombuffer(caller, dtype=np.uint8).reshape(-1, width)
    out = np.empty((len(samples), len(media.channels), width), dtype=np.uint8)
    for index, channel in enumerate(media.channels):
        out[:, index, :] = samples if channel == "external" else silent
    return out.tobytes()


@dataclass(frozen=True, slots=True)
class BotAudioResult:
    """What one bot frame calls for: messages to send (types and parameters) and flags."""

    messages: tuple[tuple[str, dict[str, object]], ...] = ()
    retry_after_ignored: bool = False


class BotAudio:
    """The Genesys-side playback of bot audio."""

    def __init__(
        self,
        timeline: GenesysTimeline,
        *,
        max_frames_per_s: float,
        retry_after_s: float,
        retry_grace_s: float,
        playback_completed_on_barge_in: bool,
    ) -> None:
        self.timeline = timeline
        self.playout = Playout()
        self.retry_after_s = retry_after_s
        self.max_frames_per_s = max_frames_per_s
        self.completed_on_barge_in = playback_completed_on_barge_in
        self._limiter = FrameRateLimiter(max_frames_per_s, retry_after_s, grace_s=retry_grace_s)
        self._in_playback = False
        self._marks = 0

    def set_format(self, media: MediaFormat) -> None:
        """Bot audio is mono in the negotiated format."""
        width = media.bytes_per_sample
        self.playout = Playout(8.0 * width, frame_bytes=width)

    def tick(self, now: float) -> list[str]:
        """Advance playback; ``["playback_completed"]`` when the queue has just drained."""
        marks = self.playout.advance(now)
        if marks and marks[-1] == f"end-{self._marks}" and self._in_playback:
            self._in_playback = False
            return ["playback_completed"]
        return []

    def push(self, data: bytes, now: float) -> BotAudioResult:
        """Queue one frame for playback, through the rate limiter."""
        messages: list[tuple[str, dict[str, object]]] = []
        verdict = self._limiter.on_frame(now)
        if verdict.kind == "limit":
            retry = self.retry_after_s
            self.timeline.rate_limits.append(RateLimitSent(now, verdict.frames_in_window, retry))
            text = (
                f"Rate limit exceeded: {verdict.frames_in_window} audio frames in 1 s "
                f"(limit {self.max_frames_per_s:g}/s)"
            )
            error = {"code": 429, "message": text, "retryAfter": format_duration(retry)}
            messages.append(("error", error))
        elif verdict.kind == "ignored":
            self.timeline.retry_after_ignored.append(BotFrame(now, len(data)))
        messages += [(kind, {}) for kind in self.tick(now)]
        if not self._in_playback:
            self._in_playback = True
            messages.append(("playback_started", {}))
        self.playout.push_audio(data, now)
        self._marks += 1
        self.playout.push_mark(f"end-{self._marks}", now)
        return BotAudioResult(tuple(messages), verdict.kind == "ignored")

    def barge_in(self, now: float) -> list[str]:
        """Flush the queue; ``["playback_completed"]`` if a playback was cut (and enabled)."""
        done = self.tick(now)
        was_playing = self._in_playback
        cleared = self.playout.clear(now)
        self.timeline.barge_ins.append(BargeIn(now, cleared.discarded_ms, was_playing))
        self._in_playback = False
        if was_playing and self.completed_on_barge_in:
            done.append("playback_completed")
        return done
