"""Application input held in order until the provider connection is ready.

Providers refuse input before their setup completes (OpenAI before ``session.updated``, Gemini
before ``setupComplete``, GPT-Live before ``session.started``). The session runtime may hand a
protocol input from the first moment, so each protocol keeps it here and releases it, in order,
once ready::

    outbox = Outbox[str](self._send)
    outbox.put(frame)       # sent at once when open, else held
    outbox.open()           # ready: everything held is sent, in order
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Outbox"]


class Outbox[T]:
    """A FIFO that passes items straight to ``deliver`` once :meth:`open` was called."""

    __slots__ = ("_deliver", "_held", "_open")

    def __init__(self, deliver: Callable[[T], None]) -> None:
        self._deliver = deliver
        self._held: list[T] = []
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def __len__(self) -> int:
        """How many items are held."""
        return len(self._held)

    def put(self, item: T) -> None:
        """Deliver ``item`` now if open, else hold it."""
        if self._open:
            self._deliver(item)
        else:
            self._held.append(item)

    def open(self) -> None:
        """Deliver everything held, in order; later items go straight through."""
        self._open = True
        held, self._held = self._held, []
        for item in held:
            self._deliver(item)

    def close(self) -> list[T]:
        """Stop delivering; return (and forget) what was still held."""
        self._open = False
        held, self._held = self._held, []
        return held
