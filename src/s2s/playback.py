"""How much of each assistant audio item the caller has actually heard.

Audio arrives faster than real time and is buffered by the application (and often by a phone
network). When the caller barges in, the provider should forget what the caller never heard.
The application can report playback (``Session.report_playback``); without reports the tracker
estimates by wall clock from the moment the first chunk arrived. Either way the answer never
exceeds what was received.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlaybackTracker"]


@dataclass(slots=True)
class _Item:
    first_at: float
    received_ms: float = 0.0
    reported_ms: float | None = None


class PlaybackTracker:
    """Tracks received and played audio per item id. Times are ``time.monotonic()`` seconds."""

    __slots__ = ("_items", "_latest")

    def __init__(self) -> None:
        self._items: dict[str, _Item] = {}
        self._latest: str | None = None

    def on_audio(self, item_id: str, duration_ms: float, now: float) -> None:
        """Record ``duration_ms`` more audio received for ``item_id``."""
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = _Item(first_at=now)
        item.received_ms += duration_ms
        self._latest = item_id

    def report(self, item_id: str, played_ms: float) -> bool:
        """The application says ``played_ms`` of ``item_id`` were played. False if unknown."""
        item = self._items.get(item_id)
        if item is None:
            return False
        item.reported_ms = max(0.0, float(played_ms))
        return True

    def received_ms(self, item_id: str) -> float:
        item = self._items.get(item_id)
        return item.received_ms if item else 0.0

    def played_ms(self, item_id: str, now: float) -> int:
        """Milliseconds of ``item_id`` the caller heard, clamped to what was received."""
        item = self._items.get(item_id)
        if item is None:
            return 0
        heard = item.reported_ms if item.reported_ms is not None else (now - item.first_at) * 1000
        return int(max(0.0, min(heard, item.received_ms)))

    @property
    def latest(self) -> str | None:
        """The item that most recently received audio."""
        return self._latest

    def is_playing(self, item_id: str, now: float) -> bool:
        """True while the caller has not yet heard all received audio of ``item_id``."""
        item = self._items.get(item_id)
        return item is not None and self.played_ms(item_id, now) < int(item.received_ms)

    def forget(self, item_id: str) -> None:
        self._items.pop(item_id, None)
        if self._latest == item_id:
            self._latest = None
