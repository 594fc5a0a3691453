"""Background tasks an object owns: kept referenced until done, cancelled together.

asyncio keeps only a weak reference to a running task, so a task nobody holds can vanish
mid-flight (ruff RUF006). A :class:`TaskSet` holds each task until it finishes and cancels what
is still running when its owner shuts down.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]


class TaskSet:
    """The running background tasks of one owner (a session, an actor, an emulated connection)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn[T](
        self, coro: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None
    ) -> asyncio.Task[T]:
        """Run ``coro`` as a task (in ``context`` if given) and hold it until it is done."""
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self, *, spare_current: bool = False) -> None:
        """Cancel every task still running; with ``spare_current``, not the one calling this."""
        current = asyncio.current_task() if spare_current else None
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
