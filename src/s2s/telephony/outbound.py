"""Model audio to a phone platform: paced to real time, in segments we can account for (sans-I/O).

Providers produce speech faster than real time; a platform plays what it is sent in order.
Sending it all at once would make a barge-in ``clear`` throw away seconds the caller never
heard and leave us no idea where playback was. :class:`OutboundAudio` releases audio on a
monotonic playback clock at most ``lead_ms`` ahead of real time, ``frame_ms`` per segment (a
late sender catches up in one larger segment, up to ``max_frame_ms``; segments at least
``min_interval_ms`` apart for platforms that rate-limit messages), and remembers each
segment: which model item it belongs to, where in that item it ends, and when it should play.

What the caller heard comes from the platform where it tells us (Twilio echoes a mark after
each segment: :meth:`OutboundAudio.confirmed`), else from the playback clock
(:meth:`OutboundAudio.estimated_played`, Genesys). :meth:`OutboundAudio.clear` drops
everything not yet sent and forgets the segments the platform will discard: their marks come
back from Twilio too, but mean "discarded", not "played".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["OutboundAudio", "Played", "Segment"]

#: A wake-up this long after a segment falls due finds it due despite float rounding.
_TICK_S = 0.0005


@dataclass(frozen=True, slots=True)
class Segment:
    """Audio to send now, and the mark name that stands for its end."""

    name: str
    item_id: str
    audio: bytes
    end_ms: float
    """Where this segment ends within its item, in milliseconds of audio."""
    plays_at: float
    """Monotonic time the platform should start playing it (by our clock)."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / 8000


@dataclass(frozen=True, slots=True)
class Played:
    """The caller heard ``played_ms`` of ``item_id`` (a playback report for the provider)."""

    item_id: str
    played_ms: int


class OutboundAudio:
    """Pacing and playback bookkeeping for one call. Times are ``time.monotonic()`` seconds."""

    def __init__(
        self,
        *,
        frame_ms: int,
        lead_ms: int,
        max_frame_ms: int | None = None,
        min_interval_ms: int = 0,
        bytes_per_ms: float = 8.0,
    ) -> None:
        if frame_ms <= 0 or lead_ms < 0:
            raise ValueError("frame_ms must be > 0 and lead_ms >= 0")
        self._bytes_per_ms = bytes_per_ms
        self._frame = max(1, int(frame_ms * bytes_per_ms))
        self._max = max(self._frame, int((max_frame_ms or 4 * frame_ms) * bytes_per_ms))
        self._lead_s = lead_ms / 1000
        #: Send the next segment once no more than this is still ahead of the caller, so the
        #: platform never holds more than ``lead_ms``.
        self._refill_s = max(0.0, (lead_ms - frame_ms) / 1000)
        self._queue: deque[tuple[str, bytearray]] = deque()
        self._queued = 0
        self._sent_ms: dict[str, float] = {}
        self._heard_ms: dict[str, float] = {}
        #: Segments sent and not yet known played or discarded, oldest first.
        self._pending: dict[str, Segment] = {}
        self._cursor = 0.0  # when the audio sent so far ends playing
        #: Segments go out at least this far apart (a platform that rate-limits messages).
        self._min_interval_s = min_interval_ms / 1000
        self._last_sent = -1e9
        self._count = 0

    # -- input ----------------------------------------------------------------------------------

    def push(self, item_id: str, audio: bytes) -> None:
        """Queue model audio (μ-law, 8 bytes per ms) of ``item_id``."""
        if not audio:
            return
        if self._queue and self._queue[-1][0] == item_id:
            self._queue[-1][1].extend(audio)
        else:
            self._queue.append((item_id, bytearray(audio)))
        self._queued += len(audio)

    @property
    def queued_bytes(self) -> int:
        """Audio waiting to be sent."""
        return self._queued

    def busy(self, now: float) -> bool:
        """True while audio waits to be sent or sent audio may still be playing."""
        return bool(self._queued) or now < self._cursor or bool(self._pending)

    @property
    def lead_s(self) -> float:
        """The most audio ever sent ahead of real time, in seconds."""
        return self._lead_s

    def playing_until(self) -> float:
        """When the audio sent so far ends playing, by our clock."""
        return self._cursor

    # -- output ---------------------------------------------------------------------------------

    def next_send_at(self, now: float) -> float | None:
        """When :meth:`take` will next have something to send (None: nothing queued)."""
        if not self._queued:
            return None
        return max(
            now,
            self._cursor - self._refill_s + _TICK_S,
            self._last_sent + self._min_interval_s,
        )

    def take(self, now: float) -> list[Segment]:
        """The segments due by ``now``: each at most one frame, except that a sender that fell
        behind gets what it owes in one segment of up to ``max_frame_ms``."""
        segments: list[Segment] = []
        while self._queued:
            if self._cursor - now > self._refill_s:
                break  # enough is on its way
            if now - self._last_sent < self._min_interval_s - 1e-9:
                break  # the platform's message rate
            start = max(now, self._cursor)
            owed = round((now + self._lead_s - start) * 1000 * self._bytes_per_ms)
            size = self._frame if owed < 2 * self._frame else min(self._max, owed)
            item_id, buffer = self._queue[0]
            chunk = bytes(buffer[:size])
            del buffer[:size]
            if not buffer:
                self._queue.popleft()
            self._queued -= len(chunk)
            duration_ms = len(chunk) / self._bytes_per_ms
            end_ms = self._sent_ms.get(item_id, 0.0) + duration_ms
            self._sent_ms[item_id] = end_ms
            self._count += 1
            segment = Segment(f"s{self._count}", item_id, chunk, end_ms, start)
            self._pending[segment.name] = segment
            self._cursor = start + duration_ms / 1000
            self._last_sent = now
            segments.append(segment)
            if len(chunk) < size:  # the item's audio ran out: the next one starts a new segment
                continue
        return segments

    # -- what the caller heard --------------------------------------------------------------------

    def confirmed(self, name: str) -> Played | None:
        """The platform played segment ``name`` (a Twilio mark echo): the report to send, or
        None for a mark we no longer count (discarded by a clear, or unknown)."""
        segment = self._pending.pop(name, None)
        if segment is None:
            return None
        # Marks come back in order: everything sent before this segment has played too.
        for older in [n for n, s in self._pending.items() if s.plays_at < segment.plays_at]:
            self._pending.pop(older)
        heard = max(self._heard_ms.get(segment.item_id, 0.0), segment.end_ms)
        self._heard_ms[segment.item_id] = heard
        return Played(segment.item_id, int(heard))

    def estimated_played(self, now: float) -> list[Played]:
        """Per item with segments in flight: what the playback clock says was heard by ``now``
        (for platforms without per-segment acknowledgements)."""
        heard: dict[str, float] = {}
        for segment in self._pending.values():
            seconds = min(max(0.0, now - segment.plays_at), segment.duration_s)
            start_ms = segment.end_ms - segment.duration_s * 1000
            if seconds > 0:
                heard[segment.item_id] = max(
                    heard.get(segment.item_id, 0.0), start_ms + seconds * 1000
                )
        reports = []
        for item_id, ms in heard.items():
            best = max(ms, self._heard_ms.get(item_id, 0.0))
            self._heard_ms[item_id] = best
            reports.append(Played(item_id, int(best)))
        return reports

    def heard_ms(self, item_id: str) -> int:
        """The best known played position of ``item_id``."""
        return int(self._heard_ms.get(item_id, 0.0))

    def settle(self, now: float) -> None:
        """Forget segments the clock says have finished playing (no acknowledgements come)."""
        for name, segment in list(self._pending.items()):
            if segment.plays_at + segment.duration_s <= now:
                self._heard_ms[segment.item_id] = max(
                    self._heard_ms.get(segment.item_id, 0.0), segment.end_ms
                )
                del self._pending[name]

    def clear(self) -> list[Played]:
        """The caller barged in: drop unsent audio and count every segment in flight as
        discarded. Returns the final played position of each item that was cut."""
        items = {item for item, _ in self._queue} | {s.item_id for s in self._pending.values()}
        self._queue.clear()
        self._queued = 0
        self._pending.clear()
        self._cursor = 0.0
        return [Played(item, self.heard_ms(item)) for item in sorted(items)]
