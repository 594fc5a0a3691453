"""Runs a :class:`~.genesys_core.GenesysClientCore` over one WebSocket, as Genesys would.

:class:`GenesysDriver` owns the I/O of a simulated Genesys session: one reader task feeding
server frames to the core, three clocks on ``time.monotonic()`` (200 ms caller frames, pings,
playback of bot audio), one send lock so that ``seq`` order is wire order and no audio can
follow ``close``, and the close sequence: ``[error,] close``, at most ``close_timeout_s`` for
``closed`` (else ``error`` 408), then the socket. It reacts to the core's actions and wakes
waiters (an :class:`asyncio.Condition`) on every change. A background task that fails is
recorded, the call is torn down, and the failure is re-raised by :meth:`_raise_failures`.
:func:`open_socket` opens the socket like Genesys: no redirects, no subprotocol.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .genesys_audio import CALLER_FRAME_MS
from .genesys_core import (
    Abort,
    Action,
    ClosedReceived,
    DisconnectReceived,
    GenesysClientCore,
    Opened,
    Outgoing,
    PingNow,
)
from .genesys_timeline import EndedBy, GenesysConnectError, GenesysOutcome, GenesysSessionError

__all__ = ["GenesysDriver", "open_socket"]

#: Largest server frame read; text over 64 KiB is still a violation (413).
MAX_FRAME_BYTES = 1024 * 1024


class _NoRedirects(connect):
    """Genesys does not follow redirects: a 3xx fails like any other refusal."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class GenesysDriver:
    """The tasks, clocks and close sequence of one simulated Genesys session."""

    def __init__(
        self, ws: ClientConnection, core: GenesysClientCore, *, close_timeout_s: float
    ) -> None:
        self._ws = ws
        self._core = core
        self._close_timeout_s = close_timeout_s
        self._send_lock = asyncio.Lock()
        self._cond = asyncio.Condition()
        self._closed = asyncio.Event()
        self._done = asyncio.Event()
        self._ping_wake = asyncio.Event()
        self._audio_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._failures: list[tuple[str, Exception]] = []
        self._socket_closing = False
        self.outcome: GenesysOutcome | None = None

    async def aclose(self) -> None:
        """Stop every task and close the socket at once (no protocol goodbye)."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._end_socket()
        if self.outcome is None:
            self._core.closing = True
            self._core.ended_by = self._core.ended_by or "caller"
            self.outcome = self._core.outcome(closed_in_time=self._core.closed_received)
        self._done.set()
        await self._changed()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro, name), name=f"genesys-{name}")
        self._tasks.append(task)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failures.append((name, exc))
            await self.aclose()

    def _raise_failures(self) -> None:
        if self._failures:
            name, exc = self._failures[0]
            raise GenesysSessionError(
                f"the simulator's {name} task failed: {exc!r}", tuple(self._core.violations)
            ) from exc

    async def _changed(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _wait(self, ready: Callable[[], bool], limit_s: float | None) -> None:
        """Wait until ``ready()`` or the end of the call; a task failure is raised."""
        async with asyncio.timeout(limit_s), self._cond:
            await self._cond.wait_for(lambda: ready() or self._done.is_set())
        self._raise_failures()

    async def _send(self, out: Outgoing) -> None:
        """Send one message in ``seq`` order (dropped once the session is closing)."""
        async with self._send_lock:
            text = self._core.encode(out, time.monotonic())
            if text is not None:
                try:
                    await self._ws.send(text)
                except ConnectionClosed:
                    pass  # the reader reports the lost socket
        await self._changed()

    async def _send_live(self, out: Outgoing) -> None:
        if self._core.closing or self._core.opened is None:
            raise GenesysSessionError(f"cannot send {out.type!r}: the session is not open")
        await self._send(out)

    async def _apply(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Outgoing):
                await self._send(action)
            elif isinstance(action, Abort):
                self._begin_close("error", "error", (action.code, action.message))
            elif isinstance(action, Opened):
                self._start_streams()
            elif isinstance(action, DisconnectReceived):
                self._begin_close("disconnect", "server")
            elif isinstance(action, ClosedReceived):
                self._closed.set()
                if not action.solicited:
                    self._begin_close("error", "error", send_close=False)
            elif isinstance(action, PingNow):
                self._ping_wake.set()

    def _start_streams(self) -> None:
        self._spawn(self._pinger(), "pinger")
        self._spawn(self._player(), "player")
        if self._core.media is not None and not self._core.config.probe:
            self._spawn(self._caller_audio(), "caller-audio")
        if self._core.config.probe:
            self._begin_close("end", "caller")

    async def _read(self) -> None:
        core = self._core
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                break
            now = time.monotonic()
            if isinstance(message, str):
                actions = core.receive_text(message, now)
            else:
                actions = core.receive_binary(message, now)
                self._audio_wake.set()
            await self._apply(actions)
            await self._changed()
        core.socket_lost(expected=self._socket_closing)
        self._closed.set()
        self._begin_close("error", "error", send_close=False)
        await self._changed()

    async def _caller_audio(self) -> None:
        """One 200 ms frame per 200 ms of the monotonic clock, from ``opened`` on."""
        assert self._core.opened is not None
        start, step, index = self._core.opened.at, CALLER_FRAME_MS / 1000, 1
        while not self._core.closing:
            delay = start + index * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._send_lock:
                frame = self._core.caller_frame(time.monotonic())
                if frame is not None:
                    try:
                        await self._ws.send(frame)
                    except ConnectionClosed:
                        return
            index += 1
            await self._changed()

    async def _sleep_until(self, at: float | None, wake: asyncio.Event) -> None:
        """Sleep until monotonic time ``at`` (forever if None) or until ``wake`` is set."""
        delay = None if at is None else at - time.monotonic()
        if delay is None or delay > 0:
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except TimeoutError:
                pass
        wake.clear()

    async def _pinger(self) -> None:
        core = self._core
        while core.next_ping_at is not None:
            if time.monotonic() >= core.next_ping_at:
                await self._apply(core.ping_due(time.monotonic()))
            else:
                await self._sleep_until(core.next_ping_at, self._ping_wake)

    async def _player(self) -> None:
        core = self._core
        while not self._done.is_set():
            await self._sleep_until(core.bot.playout.next_due(time.monotonic()), self._audio_wake)
            await self._apply(core.playout_tick(time.monotonic()))
            await self._changed()

    def _begin_close(
        self,
        reason: str,
        ended_by: EndedBy,
        error: tuple[int, str] | None = None,
        *,
        send_close: bool = True,
    ) -> None:
        if self._closer is None:
            self._closer = self._spawn(self._close(reason, ended_by, error, send_close), "closer")

    async def _close(
        self, reason: str, ended_by: EndedBy, error: tuple[int, str] | None, send_close: bool
    ) -> None:
        core = self._core
        if send_close:
            try:
                async with asyncio.timeout(self._close_timeout_s):
                    await self._send_closing(core.start_close(reason, ended_by, error))
                    await self._closed.wait()
            except TimeoutError:
                message = f"no 'closed' within {self._close_timeout_s:g} s of our 'close'"
                core.violate(message, fatal=False)
                try:
                    async with asyncio.timeout(1.0):
                        await self._send_closing(
                            [Outgoing("error", {"code": 408, "message": message})]
                        )
                except TimeoutError:
                    pass  # the server does not read any more; drop the socket
        else:
            core.closing = True
            core.ended_by = core.ended_by or ended_by
        await self._end_socket()
        current = asyncio.current_task()
        if self._reader is not None and self._reader is not current:
            await self._reader
        others = [t for t in self._tasks if t is not current and t is not self._reader]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self.outcome = core.outcome(closed_in_time=core.closed_received)
        self._done.set()
        await self._changed()

    async def _send_closing(self, messages: list[Outgoing]) -> None:
        """Send ``error``/``close`` even though the core is closing."""
        async with self._send_lock:
            for out in messages:
                text = self._core.encode(out, time.monotonic(), force=True)
                assert text is not None
                try:
                    await self._ws.send(text)
                except ConnectionClosed:
                    break
        await self._changed()

    async def _end_socket(self) -> None:
        self._socket_closing = True
        await self._ws.close()


async def open_socket(
    url: str, headers: dict[str, str], ssl: ssl_module.SSLContext | None, close_timeout_s: float
) -> ClientConnection:
    try:
        return await _NoRedirects(
            url,
            additional_headers=headers,
            ssl=ssl,
            compression=None,
            ping_interval=None,
            max_size=MAX_FRAME_BYTES,
            close_timeout=close_timeout_s,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise GenesysConnectError(
            f"the AudioHook upgrade to {url} was refused with HTTP {status}", status
        ) from exc
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise GenesysConnectError(f"cannot open the AudioHook socket {url}: {exc}") from exc
