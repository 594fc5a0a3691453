"""When a connection should hand the call to a new one (the session time limit).

Realtime sessions end at a hard limit (60 minutes). The protocol asks for a rotation at
``rotate_after_s``, but only between answers (no response running or requested, the caller not
speaking); at ``max_session_s - 5`` it rotates regardless. Sans-I/O: ``now`` is passed in.
"""

from __future__ import annotations

__all__ = ["Lifetime"]


class Lifetime:
    """The rotation clock of one connection."""

    __slots__ = ("connected_at", "due", "max_session_s", "rotate_after_s")

    def __init__(self, rotate_after_s: float, max_session_s: float) -> None:
        self.rotate_after_s = rotate_after_s
        self.max_session_s = max_session_s
        self.connected_at: float | None = None
        #: The soft limit passed; rotate at the next quiet moment.
        self.due = False

    @property
    def hard_limit(self) -> float | None:
        if self.connected_at is None:
            return None
        return self.connected_at + self.max_session_s - 5.0

    def deadline(self) -> float | None:
        """When :meth:`expired` should next run."""
        if self.connected_at is None:
            return None
        if not self.due:
            return self.connected_at + self.rotate_after_s
        # Waiting for the current answer to end; the hard limit still applies.
        return self.connected_at + max(self.rotate_after_s, self.max_session_s - 5.0)

    def expired(self, now: float) -> bool:
        """The timer fired: True when the hard limit forces a rotation now (else maybe
        :attr:`due` was set)."""
        hard = self.hard_limit
        if hard is None:
            return False
        if now >= hard:
            self.due = False
            return True
        if self.connected_at is not None and now >= self.connected_at + self.rotate_after_s:
            self.due = True
        return False

    def rotate_if_quiet(self, quiet: bool) -> bool:
        """True (and no longer due) when a rotation is due and the connection is quiet."""
        if self.due and quiet:
            self.due = False
            return True
        return False
