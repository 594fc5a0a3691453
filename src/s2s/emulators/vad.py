"""An energy-based voice activity detector for the emulators.

Feeds on PCM16 at any rate in 10 ms frames. Speech starts after ``start_frames`` consecutive
frames above the threshold and stops after ``silence_ms`` below it. Times are milliseconds of
audio since the detector started, so results depend only on the audio, never on the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..audio.level import rms_dbfs

__all__ = ["EnergyVad", "VadEvent", "voiced_seconds"]


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: str  # "start" or "stop"
    at_ms: float  # start: first voiced frame; stop: end of the silence that ended speech
    speech_ms: float = 0.0  # stop: voiced span (first to last voiced frame)


class EnergyVad:
    """Streaming speech start/stop detection on signal energy."""

    def __init__(
        self,
        sample_rate: int,
        *,
        threshold_dbfs: float = -40.0,
        silence_ms: float = 500.0,
        start_frames: int = 3,
    ) -> None:
        self.sample_rate = sample_rate
        self.threshold_dbfs = threshold_dbfs
        self.silence_ms = silence_ms
        self.start_frames = start_frames
        self._frame_bytes = sample_rate // 100 * 2
        self._pending = bytearray()
        self._position_ms = 0.0
        self._in_speech = False
        self._run = 0
        self._run_start_ms = 0.0
        self._speech_start_ms = 0.0
        self._last_voiced_end_ms = 0.0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position_ms(self) -> float:
        """Milliseconds of audio processed so far."""
        return self._position_ms

    def reset(self) -> None:
        """Forget a speech segment in progress (the buffer was cleared)."""
        self._in_speech = False
        self._run = 0

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._pending += pcm
        events: list[VadEvent] = []
        step = self._frame_bytes
        while len(self._pending) >= step:
            frame = bytes(self._pending[:step])
            del self._pending[:step]
            start = self._position_ms
            self._position_ms += 10.0
            voiced = rms_dbfs(frame) > self.threshold_dbfs
            if not self._in_speech:
                if voiced:
                    if self._run == 0:
                        self._run_start_ms = start
                    self._run += 1
                    if self._run >= self.start_frames:
                        self._in_speech = True
                        self._speech_start_ms = self._run_start_ms
                        self._last_voiced_end_ms = self._position_ms
                        events.append(VadEvent("start", self._run_start_ms))
                else:
                    self._run = 0
            elif voiced:
                self._last_voiced_end_ms = self._position_ms
            elif self._position_ms - self._last_voiced_end_ms >= self.silence_ms:
                self._in_speech = False
                self._run = 0
                events.append(
                    VadEvent(
                        "stop", self._position_ms, self._last_voiced_end_ms - self._speech_start_ms
                    )
                )
        return events


def voiced_seconds(pcm: bytes, sample_rate: int, threshold_dbfs: float = -40.0) -> float:
    """Seconds from the first to the last voiced 10 ms frame of ``pcm`` (0 if none)."""
    step = sample_rate // 100 * 2
    voiced = [
        i
        for i in range(0, len(pcm) - step + 1, step)
        if rms_dbfs(pcm[i : i + step]) > threshold_dbfs
    ]
    if not voiced:
        return 0.0
    return (voiced[-1] - voiced[0] + step) / 2 / sample_rate
