"""Caller audio the OpenAI server has not yet committed to a user turn (sans-I/O bookkeeping).

If the connection is lost, this audio is what a continuation carries to the next connection,
which sends it again first: the caller's words in the turn in progress are not lost.

A commit takes the audio only up to its end: ``input_audio_buffer.speech_stopped`` names that
end (``audio_end_ms``, counted from the start of what this connection's server got), and a
manual commit (``end_turn``) takes what was sent before it. Audio sent while the commit's
notice was in flight stays pending. Positions count bytes of the connection's audio format
(PCM16 at 24 kHz, two bytes a sample, or G.711 mu-law at 8 kHz, one byte a sample) that this
connection's server gets in all, the replayed audio first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...log import logger

if TYPE_CHECKING:
    from ...protocol import Continuation

__all__ = [
    "MAX_UNCOMMITTED_BYTES",
    "MAX_UNCOMMITTED_S",
    "REPLAY_CHUNK_BYTES",
    "REPLAY_CHUNK_S",
    "PendingAudio",
]

#: Caller audio kept for replay, in seconds; older audio is dropped first.
MAX_UNCOMMITTED_S = 30
#: Replayed audio goes out in appends of this many seconds.
REPLAY_CHUNK_S = 1
#: The two in bytes of 24 kHz PCM16 (the default format).
MAX_UNCOMMITTED_BYTES = MAX_UNCOMMITTED_S * 24000 * 2
REPLAY_CHUNK_BYTES = REPLAY_CHUNK_S * 24000 * 2


class PendingAudio:
    """The uncommitted audio of one connection, starting with ``replay`` (the previous
    connection's, to be sent again).

    ``rate`` and ``sample_width`` (bytes a sample) describe the audio; ``limit`` defaults to
    :data:`MAX_UNCOMMITTED_S` of it.
    """

    __slots__ = (
        "_buffer",
        "_chunk",
        "_commit_end",
        "_limit",
        "_rate",
        "_replay_bytes",
        "_total",
        "_width",
    )

    @classmethod
    def carried_over(
        cls, continuation: Continuation | None, audio_format: str, *, rate: int, sample_width: int
    ) -> PendingAudio:
        """A connection's pending audio: the continuation's, unless it was in another format
        (a resume with a new config), which cannot be replayed."""
        replay = continuation.pending_audio if continuation else b""
        carried = continuation.state.get("audio_format", "pcm16") if continuation else "pcm16"
        if replay and carried != audio_format:
            logger.getChild("openai_realtime").warning(
                "not replaying %d bytes of %s caller audio into a %s connection",
                len(replay),
                carried,
                audio_format,
            )
            replay = b""
        return cls(replay, rate=rate, sample_width=sample_width)

    def __init__(
        self,
        replay: bytes = b"",
        *,
        rate: int = 24000,
        sample_width: int = 2,
        limit: int | None = None,
    ) -> None:
        self._buffer = bytearray(replay)
        self._replay_bytes = len(replay)
        self._total = len(replay)
        self._commit_end: int | None = None
        self._rate = rate
        self._width = sample_width
        self._chunk = REPLAY_CHUNK_S * rate * sample_width
        self._limit = MAX_UNCOMMITTED_S * rate * sample_width if limit is None else limit

    def add(self, pcm: bytes) -> None:
        """Audio sent to the server (kept until committed; at most ``limit`` bytes)."""
        self._buffer += pcm
        self._total += len(pcm)
        if len(self._buffer) > self._limit:
            del self._buffer[: len(self._buffer) - self._limit]

    def replay_chunks(self) -> list[bytes]:
        """The previous connection's audio, in appends of :data:`REPLAY_CHUNK_S` each."""
        pending = bytes(self._buffer[: self._replay_bytes])
        step = self._chunk
        return [pending[start : start + step] for start in range(0, len(pending), step)]

    def commit_ends_at_ms(self, end_ms: float) -> None:
        """The server's VAD ended the turn at ``end_ms`` of this connection's audio."""
        self._commit_end = int(end_ms * self._rate // 1000) * self._width

    def commit_ends_now(self) -> None:
        """A manual commit: it takes everything sent so far."""
        self._commit_end = self._total

    def forget_committed(self) -> None:
        """The server committed: drop the audio up to the commit's end if known, else all."""
        end, self._commit_end = self._commit_end, None
        start = self._total - len(self._buffer)
        if end is None:
            self._buffer.clear()
        elif end > start:
            del self._buffer[: end - start]

    def clear(self) -> None:
        """The server cleared its buffer: nothing is pending."""
        self._buffer.clear()

    def snapshot(self) -> bytes:
        """What a continuation carries."""
        return bytes(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)
