"""The caller audio a Nova stream has not transcribed yet, and whether the caller is speaking.

Nova has no server-side resumption, so a new stream gets the caller audio the old one's model
had not turned into a USER transcript yet (what was said during the switch). The buffer keeps
the most recent ``max_bytes`` of 16 kHz PCM, is cleared at each USER transcript, and is replayed
from shortly before its first speech (leading silence is dropped).
"""

from __future__ import annotations

from ...audio.level import rms_dbfs
from .wire import INPUT_RATE

__all__ = ["REPLAY_CHUNK_BYTES", "SPEAKING_HOLD_S", "SPEECH_DBFS", "CallerAudio"]

#: Caller audio counts as speech above this level (the rotation waits for a pause).
SPEECH_DBFS = -40.0
#: The caller counts as speaking until this long after the last voiced chunk: long enough for
#: Nova's endpointing to have produced the transcript of what was said, so a rotation does not
#: leave the old stream answering words the new one is also given.
SPEAKING_HOLD_S = 2.5
#: Replayed caller audio starts this long before its first speech (leading silence is dropped).
REPLAY_LEAD_BYTES = INPUT_RATE * 2 // 2
_FRAME_BYTES = INPUT_RATE * 2 // 50  # 20 ms
#: Carried-over caller audio goes out in events of this many bytes (0.1 s at 16 kHz).
REPLAY_CHUNK_BYTES = INPUT_RATE * 2 // 10


class CallerAudio:
    """A rolling buffer of untranscribed caller audio, plus when the caller last spoke."""

    __slots__ = ("_buffer", "_last_voice_at", "_max_bytes")

    def __init__(self, carried: bytes, max_bytes: int) -> None:
        self._buffer = bytearray(carried)
        self._max_bytes = max_bytes
        self._last_voice_at: float | None = None
        self._trim()

    def _trim(self) -> None:
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[: excess + excess % 2]

    def add(self, pcm: bytes, now: float) -> None:
        """Keep ``pcm`` (the newest audio) and note speech in it."""
        if rms_dbfs(pcm) > SPEECH_DBFS:
            self._last_voice_at = now
        self._buffer += pcm
        self._trim()

    def transcribed(self) -> None:
        """The model has everything so far (its USER transcript arrived)."""
        self._buffer.clear()

    def speaking(self, now: float) -> bool:
        return self._last_voice_at is not None and now - self._last_voice_at < SPEAKING_HOLD_S

    def pending(self) -> bytes:
        """Everything not transcribed yet (what a continuation carries)."""
        return bytes(self._buffer)

    def replay(self) -> bytes:
        """The audio to send a new stream: from shortly before its first speech (or its tail)."""
        audio = bytes(self._buffer)
        first = next(
            (
                i
                for i in range(0, len(audio) - _FRAME_BYTES + 1, _FRAME_BYTES)
                if rms_dbfs(audio[i : i + _FRAME_BYTES]) > SPEECH_DBFS
            ),
            len(audio),
        )
        start = max(0, first - REPLAY_LEAD_BYTES)
        return audio[start - start % 2 :]
