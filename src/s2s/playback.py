"""How much of each assistant audio item the caller has actually heard.

Audio arrives faster than real time and is buffered by the application (and often by a phone
network). When the caller barges in, the provider should forget what the caller never heard.

The items of one response (a *group*: gpt-realtime-2 may speak a preamble item, then the answer
item) play one after another on one timeline that starts when the group's first audio arrives:
item k starts where items 0..k-1 end. The playhead on that timeline comes from the application's
playback reports (``Session.report_playback``: reporting item B at 300 ms means every item before
B was played in full) or, without reports, from the wall clock since the group's first audio.
Either way it never passes the audio received. Audio without a group is its own timeline, so a
single-item response behaves as one item always did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MAX_TIMELINES", "PlaybackTracker", "Playhead"]

#: Timelines kept; older ones are forgotten (a barge-in only ever cuts the latest).
MAX_TIMELINES = 16


@dataclass(frozen=True, slots=True)
class Playhead:
    """Where the caller is on one group's timeline.

    Attributes:
        item_id: the item being played (the last one when everything received was heard).
        played_ms: milliseconds of *that* item heard, from its own first sample.
        received_ms: milliseconds of that item received.
        before: the items of the group before it (played in full).
        after: the items of the group after it (not heard at all).
        group: the group (response id) of the timeline.
    """

    item_id: str
    played_ms: int
    received_ms: float
    before: tuple[str, ...]
    after: tuple[str, ...]
    group: str

    @property
    def finished(self) -> bool:
        """True when the caller heard every millisecond received (nothing is left to play)."""
        return not self.after and self.played_ms >= int(self.received_ms)


@dataclass(slots=True)
class _Timeline:
    first_at: float
    order: list[str] = field(default_factory=list)
    received: dict[str, float] = field(default_factory=dict)
    #: The latest playback report: (item id, ms of that item played).
    report: tuple[str, float] | None = None

    def offset(self, item_id: str) -> float:
        start = 0.0
        for other in self.order:
            if other == item_id:
                return start
            start += self.received[other]
        return start

    def total(self) -> float:
        return sum(self.received.values())

    def position(self, now: float) -> float:
        """The playhead, in ms from the group's first sample, clamped to what arrived."""
        if self.report is not None:
            item_id, played = self.report
            pos = self.offset(item_id) + min(played, self.received[item_id])
        else:
            pos = (now - self.first_at) * 1000
        return max(0.0, min(pos, self.total()))


class PlaybackTracker:
    """Tracks received and played audio per item on one timeline per group.

    Times are ``time.monotonic()`` seconds.
    """

    __slots__ = ("_groups", "_item_group", "_latest")

    def __init__(self) -> None:
        self._groups: dict[str, _Timeline] = {}
        self._item_group: dict[str, str] = {}
        self._latest: str | None = None

    def on_audio(
        self, item_id: str, duration_ms: float, now: float, group: str | None = None
    ) -> None:
        """Record ``duration_ms`` more audio received for ``item_id`` of ``group``.

        ``group`` (a response id) puts the item on that group's timeline, after the items that
        received audio before it; ``None`` gives the item a timeline of its own.
        """
        key = self._item_group.get(item_id)
        if key is None:
            key = group if group else item_id
            self._item_group[item_id] = key
        timeline = self._groups.get(key)
        if timeline is None:
            timeline = self._groups[key] = _Timeline(first_at=now)
            if len(self._groups) > MAX_TIMELINES:  # long played out; only recent ones matter
                self._drop(next(iter(self._groups)))
        if item_id not in timeline.received:
            timeline.order.append(item_id)
            timeline.received[item_id] = 0.0
        timeline.received[item_id] += duration_ms
        self._latest = item_id

    def report(self, item_id: str, played_ms: float) -> bool:
        """The application says ``played_ms`` of ``item_id`` were played. False if unknown."""
        key = self._item_group.get(item_id)
        if key is None:
            return False
        self._groups[key].report = (item_id, max(0.0, float(played_ms)))
        return True

    def received_ms(self, item_id: str) -> float:
        key = self._item_group.get(item_id)
        return self._groups[key].received[item_id] if key is not None else 0.0

    def played_ms(self, item_id: str, now: float) -> int:
        """Milliseconds of ``item_id`` the caller heard, clamped to what was received."""
        key = self._item_group.get(item_id)
        if key is None:
            return 0
        timeline = self._groups[key]
        heard = timeline.position(now) - timeline.offset(item_id)
        return int(max(0.0, min(heard, timeline.received[item_id])))

    def playhead(self, item_id: str, now: float) -> Playhead | None:
        """Where the caller is on the timeline of ``item_id``'s group (``None`` if unknown).

        At a boundary the later item is the one playing (with 0 ms heard).
        """
        key = self._item_group.get(item_id)
        if key is None:
            return None
        timeline = self._groups[key]
        pos = timeline.position(now)
        start = 0.0
        order = timeline.order
        for index, current in enumerate(order):
            length = timeline.received[current]
            last = index == len(order) - 1
            if pos < start + length or last:
                played = int(max(0.0, min(pos - start, length)))
                return Playhead(
                    item_id=current,
                    played_ms=played,
                    received_ms=length,
                    before=tuple(order[:index]),
                    after=tuple(order[index + 1 :]),
                    group=key,
                )
            start += length
        return None  # pragma: no cover - a timeline always has an item

    @property
    def latest(self) -> str | None:
        """The item that most recently received audio."""
        return self._latest

    def is_playing(self, item_id: str, now: float) -> bool:
        """True while the caller has not yet heard all received audio of ``item_id``."""
        key = self._item_group.get(item_id)
        if key is None:
            return False
        return self.played_ms(item_id, now) < int(self._groups[key].received[item_id])

    def forget(self, item_id: str) -> None:
        """Forget ``item_id``'s whole timeline (its group was cut or is over)."""
        key = self._item_group.get(item_id)
        if key is not None:
            self._drop(key)

    def _drop(self, key: str) -> None:
        timeline = self._groups.pop(key)
        for other in timeline.order:
            self._item_group.pop(other, None)
        if self._latest in timeline.received:
            self._latest = None
