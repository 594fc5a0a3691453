"""The playback queue of a phone network, driven by a real-time clock (sans-I/O).

A telephony platform (Twilio, Genesys, ...) queues the audio a bot sends and plays it to the
caller in order, at real time. Named marks sit in the same queue: a mark falls due when the play
cursor reaches the end of the audio queued before it (at once if nothing is queued). ``clear``
drops the queued audio and hands back the marks still pending.

Contract:

- Times are ``time.monotonic()`` seconds passed in as ``now``; nothing here reads a clock,
  sleeps or does I/O. ``now`` must not go backwards.
- The cursor moves ``bytes_per_ms`` bytes per millisecond (8.0 for 8 kHz μ-law, 16.0 for
  8 kHz L16) while audio is queued. Audio pushed while idle starts playing at ``now``; audio
  pushed while playing follows the queue.
- :attr:`Playout.played` holds exactly the bytes the cursor has passed (rounded down to whole
  ``frame_bytes``), in order; cleared audio never enters it.
- Marks come back in the order they were pushed, each exactly once: from :meth:`push_mark`,
  :meth:`advance` or :meth:`clear`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Cleared", "Playout"]

#: Tolerance (bytes) for float clock arithmetic: a mark at position p is due at cursor p - EPS.
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Cleared:
    """What :meth:`Playout.clear` dropped.

    Attributes:
        discarded_ms: audio dropped from the queue, in milliseconds.
        pending_marks: marks that had not fallen due, in queue order.
        passed_marks: marks the cursor had passed but nobody collected with :meth:`advance`
            before the clear (they were played, not discarded), in order.
    """

    discarded_ms: float
    pending_marks: tuple[str, ...]
    passed_marks: tuple[str, ...] = ()


class Playout:
    """A real-time playback queue of audio bytes and named marks."""

    __slots__ = (
        "_anchor_pos",
        "_anchor_time",
        "_audio",
        "_end",
        "_frame",
        "_last_now",
        "_marks",
        "_rate",
        "_played_pos",
        "played",
    )

    def __init__(self, bytes_per_ms: float = 8.0, *, frame_bytes: int = 1) -> None:
        """``frame_bytes``: the played position is rounded down to whole frames (2 for L16)."""
        if not bytes_per_ms > 0:
            raise ValueError(f"Playout bytes_per_ms must be > 0, got {bytes_per_ms!r}")
        if frame_bytes < 1:
            raise ValueError(f"Playout frame_bytes must be >= 1, got {frame_bytes!r}")
        self._rate = float(bytes_per_ms)
        self._frame = frame_bytes
        #: Queue positions are byte offsets since the Playout was made (cleared audio excluded).
        self._end = 0
        self._played_pos = 0
        self._anchor_pos = 0
        self._anchor_time = 0.0
        self._last_now = -math.inf
        #: Queued audio not yet moved into ``played``: (start position, bytes).
        self._audio: deque[tuple[int, bytes]] = deque()
        #: Pending marks: (position, name); position = queue end when the mark was pushed.
        self._marks: deque[tuple[int, str]] = deque()
        #: The audio played out so far.
        self.played = bytearray()

    # -- clock -----------------------------------------------------------------------------

    def _cursor(self, now: float) -> float:
        if now < self._last_now:
            raise ValueError(f"Playout time went backwards: {now!r} < {self._last_now!r}")
        self._last_now = now
        if self._anchor_pos >= self._end:
            return float(self._end)
        moved = (now - self._anchor_time) * 1000.0 * self._rate
        return min(float(self._end), self._anchor_pos + max(0.0, moved) + _EPS)

    def _idle(self, cursor: float) -> bool:
        return cursor >= self._end

    def _collect(self, cursor: float) -> list[str]:
        """Move passed audio into ``played`` and pop the marks the cursor has reached."""
        whole = int(cursor)
        whole -= whole % self._frame if whole < self._end else 0
        while self._audio and self._played_pos < whole:
            start, data = self._audio[0]
            upto = min(whole, start + len(data))
            self.played += data[self._played_pos - start : upto - start]
            self._played_pos = upto
            if upto >= start + len(data):
                self._audio.popleft()
        due: list[str] = []
        while self._marks and self._marks[0][0] <= cursor:
            due.append(self._marks.popleft()[1])
        return due

    # -- queue -----------------------------------------------------------------------------

    def push_audio(self, data: bytes, now: float) -> None:
        """Queue ``data``; playback starts at ``now`` if the queue was idle."""
        cursor = self._cursor(now)
        if not data:
            return
        if self._idle(cursor):
            self._anchor_pos = self._end
            self._anchor_time = now
        self._audio.append((self._end, bytes(data)))
        self._end += len(data)

    def push_mark(self, name: str, now: float) -> list[str]:
        """Queue mark ``name`` after the queued audio.

        Returns the marks due at once, in order: any earlier marks the cursor has passed that
        :meth:`advance` had not yet returned, then ``name`` itself if nothing is queued.
        """
        due = self.advance(now)
        if self._idle(self._cursor(now)):
            due.append(name)
        else:
            self._marks.append((self._end, name))
        return due

    def advance(self, now: float) -> list[str]:
        """The marks whose position the play cursor has passed by ``now``, in order."""
        return self._collect(self._cursor(now))

    def clear(self, now: float) -> Cleared:
        """Drop the queued audio not yet played by ``now``; return the pending marks."""
        cursor = self._cursor(now)
        passed = self._collect(cursor)
        # Only the whole frames already moved into ``played`` count as played.
        stop = self._played_pos
        discarded = self._end - stop
        pending = tuple(name for _, name in self._marks)
        self._audio.clear()
        self._marks.clear()
        self._end = self._anchor_pos = stop
        return Cleared(
            discarded_ms=discarded / self._rate,
            pending_marks=pending,
            passed_marks=tuple(passed),
        )

    # -- queries ---------------------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        """The monotonic time the next pending mark falls due (may be <= ``now``); None if none."""
        cursor = self._cursor(now)
        if not self._marks:
            return None
        position = self._marks[0][0]
        if position <= cursor:
            return now
        return self._anchor_time + (position - self._anchor_pos) / (self._rate * 1000.0)

    @property
    def playing(self) -> bool:
        """True if audio was still queued as of the latest ``now`` seen by any method."""
        if self._anchor_pos >= self._end:
            return False
        moved = (self._last_now - self._anchor_time) * 1000.0 * self._rate
        return self._anchor_pos + max(0.0, moved) + _EPS < self._end

    def queued_ms(self, now: float) -> float:
        """Milliseconds of audio still queued (not yet played) at ``now``."""
        return max(0.0, (self._end - self._cursor(now)) / self._rate)

    @property
    def pending_marks(self) -> tuple[str, ...]:
        """Names of the marks not yet due (as of the last collect), in order."""
        return tuple(name for _, name in self._marks)

    @property
    def bytes_per_ms(self) -> float:
        return self._rate
