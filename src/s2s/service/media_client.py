"""The replica side of the media channel: one connection to one session actor.

Every frame written stays in the client until the actor acknowledges it (``ack`` frames, see
:mod:`.media`); a frame with an input position stays longer, until the actor has saved the call's
state past it (``durable``), because a replacement actor continues from that state. When the
channel fails the router hands what is kept (:meth:`MediaClient.unacked`) to a new channel (to
the same actor, which drops what it already has, or a replacement) with
:meth:`MediaClient.adopt`. The channel counts
as failed when the actor closes it, says ``bye``, is silent for :data:`~.media_wire.LIVENESS_S`
(it heartbeats every :data:`~.media_wire.HEARTBEAT_S`), or does not take our writes within
:attr:`MediaClient.WRITE_DEADLINE` seconds. ``on_lost`` (if given) is called once, with the
reason, when the channel fails by itself (not after :meth:`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import ProviderConnectionError
from ..log import logger
from .media_wire import (
    HELLO_MAX_FRAME,
    LIVENESS_S,
    MAX_FRAME,
    Endpoint,
    FrameError,
    encode_frame,
    read_frame,
    tune_socket,
)

__all__ = ["MediaClient"]

log = logger.getChild("media")


class MediaClient:
    """One connection to one session actor, keeping what the actor has not acknowledged."""

    #: Wait for the socket to drain once this much is buffered (backpressure on a slow actor).
    HIGH_WATER = 256 * 1024
    #: Seconds to connect and get the actor's welcome.
    CONNECT_TIMEOUT = 5.0
    #: A write that cannot be buffered for this long fails the channel.
    WRITE_DEADLINE = 2.0
    #: Unacknowledged bytes kept for a resend (about 20 s of 24 kHz PCM16); past it a send
    #: waits for acknowledgements (up to WRITE_DEADLINE).
    MAX_UNACKED_BYTES = 1024 * 1024
    #: Handled but not yet durable bytes kept for a replacement actor; past it the oldest are
    #: forgotten (counted in ``forgotten``): a replacement would then miss them.
    MAX_RETAINED_BYTES = 1024 * 1024

    def __init__(
        self, endpoint: Endpoint, *, on_lost: Callable[[MediaClient, str], None] | None = None
    ) -> None:
        self.endpoint = endpoint
        self._writer: asyncio.StreamWriter | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._on_lost = on_lost
        self._unacked: deque[tuple[int | None, bytes]] = deque()
        self._unacked_bytes = 0
        self._retained: deque[tuple[int, bytes]] = deque()
        self._retained_bytes = 0
        #: Handled, not yet durable frames dropped for the retention bound.
        self.forgotten = 0
        self._acked = 0
        self._sent = 0
        self._progress = asyncio.Event()
        self.closed = asyncio.Event()
        #: Why the channel failed ("" while it works, or after close()).
        self.failure = ""
        #: The reason the actor gave when it closed the channel on purpose ("bye").
        self.bye: str | None = None
        #: The highest session input position the actor has handed to the provider.
        self.position = 0
        #: The highest position saved with the call's state (a replacement starts after it).
        self.durable = 0
        self.version = 1

    @property
    def connected(self) -> bool:
        return (
            self._writer is not None and not self._writer.is_closing() and not self.closed.is_set()
        )

    @property
    def sent(self) -> int:
        """Frames written on this channel so far (resent ones included)."""
        return self._sent

    @property
    def unacked_bytes(self) -> int:
        return self._unacked_bytes

    @property
    def retained_bytes(self) -> int:
        """Bytes of frames the actor handled but has not yet saved (kept for a replacement)."""
        return self._retained_bytes

    async def connect(self) -> None:
        """Connect and say hello; returns once the actor welcomed us.

        Raises ProviderConnectionError if the actor cannot be reached, refuses the hello (the
        message gives its reason) or does not answer within CONNECT_TIMEOUT seconds.
        """
        where = f"the session's media channel at {self.endpoint.host}:{self.endpoint.port}"
        deadline = asyncio.get_running_loop().time() + self.CONNECT_TIMEOUT
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(
                    self.endpoint.host, self.endpoint.port
                )
        except (OSError, TimeoutError) as exc:
            raise ProviderConnectionError(f"cannot reach {where}") from exc
        tune_socket(writer)
        try:
            await self._hello(reader, writer, where, deadline)
        except BaseException:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            raise
        self._writer = writer
        self._watcher = asyncio.get_running_loop().create_task(self._watch(reader))

    async def _hello(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
        deadline: float,
    ) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                writer.write(encode_frame("hello", self.endpoint.token, 0.0))
                frame = await read_frame(reader, HELLO_MAX_FRAME)
        except TimeoutError as exc:
            raise ProviderConnectionError(
                f"{where} did not answer the hello within {self.CONNECT_TIMEOUT:g} s"
            ) from exc
        except (OSError, EOFError, ValueError) as exc:
            raise ProviderConnectionError(f"{where} closed without a welcome") from exc
        if frame.kind == "refused":
            reason = frame.payload if isinstance(frame.payload, str) else "no reason given"
            raise ProviderConnectionError(f"{where} refused the connection: {reason[:200]}")
        if frame.kind != "welcome" or not isinstance(frame.payload, dict):
            raise ProviderConnectionError(f"{where} answered the hello with {frame.kind[:40]!r}")
        info = frame.payload
        self.version = int(info.get("version", 1))
        self.position = int(info.get("position", 0))
        self.durable = int(info.get("durable", self.position))

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """Read the actor's acks and heartbeats; any silence, EOF or bad frame fails the channel."""
        reason = "the actor closed the channel"
        try:
            if self.version < 2:  # an older actor writes nothing after its welcome
                while await reader.read(65536):
                    pass
            else:
                while True:
                    try:
                        async with asyncio.timeout(LIVENESS_S):
                            frame = await read_frame(reader, MAX_FRAME)
                    except TimeoutError:
                        reason = f"the actor was silent for {LIVENESS_S:g} s"
                        break
                    if frame.kind == "ack":
                        self._acknowledge(frame.payload)
                    elif frame.kind == "bye":
                        self.bye = str(frame.payload)
                        reason = f"the actor closed the channel ({self.bye})"
                        break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except FrameError as exc:
            reason = f"the actor sent a bad frame ({exc})"
        self._lost(reason)

    def _acknowledge(self, payload: Any) -> None:
        handled, position = int(payload[0]), int(payload[1])
        durable = int(payload[2]) if len(payload) > 2 else position
        self.position = max(self.position, position)
        self.durable = max(self.durable, durable)
        while self._acked < handled and self._unacked:
            at, frame = self._unacked.popleft()
            self._unacked_bytes -= len(frame)
            self._acked += 1
            newest = self._retained[-1][0] if self._retained else self.durable
            if at is not None and at > newest:  # a resent frame is retained once
                self._retained.append((at, frame))
                self._retained_bytes += len(frame)
        while self._retained and (
            self._retained[0][0] <= self.durable or self._retained_bytes > self.MAX_RETAINED_BYTES
        ):
            at, frame = self._retained.popleft()
            self._retained_bytes -= len(frame)
            if at > self.durable:
                self.forgotten += 1
                if self.forgotten == 1:
                    log.warning(
                        "over %d bytes of input not yet saved by the actor: the oldest are no"
                        " longer kept for a replacement",
                        self.MAX_RETAINED_BYTES,
                    )
        self._progress.set()

    def _lost(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.failure = reason
        self.closed.set()
        self._progress.set()
        if self._writer is not None:
            self._writer.close()
        if self._on_lost is not None:
            self._on_lost(self, reason)

    async def send(
        self,
        kind: str,
        payload: Any = None,
        sent_at: float | None = None,
        position: int | None = None,
    ) -> int:
        """Queue one frame; returns its number on this channel (for :meth:`wait_acked`).

        Raises ProviderConnectionError if the channel is already gone (nothing was written). If
        it fails afterwards the frame stays among :meth:`unacked`, for the next channel.
        """
        return await self._write(encode_frame(kind, payload, sent_at, position), position)

    async def adopt(self, frames: list[tuple[int | None, bytes]]) -> None:
        """Send frames another channel kept (:meth:`unacked`), in order; the actor drops the
        positions it already has."""
        for position, frame in frames:
            await self._write(frame, position)

    async def _write(self, frame: bytes, position: int | None) -> int:
        writer = self._writer
        if writer is None or not self.connected:
            raise ProviderConnectionError(
                f"the session's media channel is closed ({self.failure or 'not connected'})"
            )
        if self.version >= 2:
            self._unacked.append((position, frame))
            self._unacked_bytes += len(frame)
        writer.write(frame)
        self._sent += 1
        number = self._sent
        try:
            if writer.transport.get_write_buffer_size() > self.HIGH_WATER:
                async with asyncio.timeout(self.WRITE_DEADLINE):
                    await writer.drain()
            if self._unacked_bytes > self.MAX_UNACKED_BYTES:
                async with asyncio.timeout(self.WRITE_DEADLINE):
                    while self._unacked_bytes > self.MAX_UNACKED_BYTES and self.connected:
                        self._progress.clear()
                        await self._progress.wait()
        except TimeoutError:
            self._lost(f"the actor took no input for {self.WRITE_DEADLINE:g} s")
        except ConnectionError:
            self._lost("the channel dropped")
        # Written but perhaps not delivered: the frame stays in unacked() for the next channel.
        return number

    async def wait_acked(self, number: int) -> None:
        """Return once the actor handled frame ``number``; ProviderConnectionError if the
        channel fails first (the caller bounds the wait)."""
        if self.version < 2:
            return
        while self._acked < number:
            if not self.connected:
                raise ProviderConnectionError(
                    f"the session's media channel failed ({self.failure})"
                )
            self._progress.clear()
            await self._progress.wait()

    def unacked(self) -> list[tuple[int | None, bytes]]:
        """``(position, frame)`` for every frame a new channel must carry, oldest first: those
        handled but not yet durable, then those not acknowledged (taken: both are cleared)."""
        frames: list[tuple[int | None, bytes]] = list(self._retained)
        frames += self._unacked
        self._retained.clear()
        self._retained_bytes = 0
        self._unacked.clear()
        self._unacked_bytes = 0
        return frames

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self.closed.set()
        self._progress.set()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
