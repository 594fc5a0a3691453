"""Waiting for a condition that is re-checked on every change (no polling).

A simulator calls :meth:`Changes.notify` whenever its state changes (from sync code, any
number of times); :meth:`Changes.until` wakes on each notification and re-checks. A recorded
failure is raised to every waiter, and a finished run ends the wait with :class:`CallEndedError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .twilio_errors import CallEndedError

__all__ = ["Changes"]


class Changes:
    """A change counter waiters can block on."""

    __slots__ = ("_event", "failure")

    def __init__(self) -> None:
        self._event = asyncio.Event()
        #: The first failure of a background task; raised from every wait.
        self.failure: BaseException | None = None

    def notify(self) -> None:
        """Wake everyone waiting; they re-check their condition."""
        self._event.set()
        self._event = asyncio.Event()

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` (the first one wins) and wake the waiters."""
        if self.failure is None:
            self.failure = exc
        self.notify()

    async def until(
        self,
        check: Callable[[], bool],
        *,
        limit: float | None,
        what: str,
        over: Callable[[], bool] = lambda: False,
    ) -> None:
        """Return once ``check()`` holds.

        Raises the recorded failure if there is one, :class:`CallEndedError` once ``over()``
        says nothing more will change, and TimeoutError after ``limit`` seconds.
        """
        try:
            async with asyncio.timeout(limit):
                while True:
                    if self.failure is not None:
                        raise self.failure
                    if check():
                        return
                    if over():
                        raise CallEndedError(f"the call ended before {what}")
                    await self._event.wait()
        except TimeoutError:
            raise TimeoutError(f"{what} did not happen within {limit} s") from None
