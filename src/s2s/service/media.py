"""The media channel: ordered, acknowledged caller input from an ingress replica to a session actor.

A Ray actor call costs about 1 ms of CPU (measured: ~0.5 ms in the caller plus ~0.5 ms in the
actor), so one call per 20 ms audio frame would cost 0.05 core per call on its own. Instead each
session actor listens on a TCP port and the replica keeps one connection per session: audio and
control messages travel as length-prefixed msgpack frames (:mod:`.media_wire`), in the order the
caller sent them, for a few microseconds each. Ray calls remain for the lifecycle.

Handshake: the replica's first frame must be ``["hello", token, 0]`` with the session's token
(a str, compared in constant time). Until it is accepted a frame may be at most
:data:`HELLO_MAX_FRAME` (512) bytes (a longer length prefix is refused before its body is read)
and the hello must arrive within ``hello_timeout`` (2 s). The actor answers ``["welcome",
{"version", "max_frame", "position", "heartbeat_s"}, ts]``; from then on frames may be up to
:data:`MAX_FRAME` (4 MiB). Otherwise it answers ``["refused", reason, ts]`` (``"bad hello"``,
``"bad token"``, ``"frame too large"``, ``"hello timeout"``, ``"too many connections"``) and
closes the connection. An actor holds at most ``max_connections`` (8) connections, counting those
still waiting for their hello; one more is refused at once. A frame that is too large,
undecodable or of the wrong shape after the handshake closes that connection only.

Acknowledgement (version 2). Input from a caller's stream carries its *session input position*
(1, 2, ... over the whole call, whichever replica or connection carried it). The actor hands a
frame to the session only if its position is above the highest it has handed over (``position``;
a replacement actor starts from its saved state's), so input resent after a failure is never
applied twice; frames without a position are always applied. After handling frames the actor
writes ``["ack", [handled, position, durable], ts]`` (``handled``: frames handled on this
connection, duplicates included): at once (coalesced per event-loop turn) after any other
kind; after audio only when the last ack is :data:`AUDIO_ACK_S` old (one write and one wakeup
of the replica per five frames, not per frame, and no timer of its own); and every
:data:`HEARTBEAT_S` as a heartbeat (which also acks the last audio of a turn).
``durable`` is the highest position a replacement actor would not need again: the actor sets
it (:meth:`MediaServer.set_durable`) after saving the call's state, which carries the audio the
provider had not yet committed. Before it closes the channel on purpose it writes ``["bye",
reason, ts]``, half-closes, and drops what the replica still sends until it hangs up (within
1 s): closing with input unread would reset the connection, and the reset can overtake the
bye. The replica keeps every frame until it is handled,
and positioned frames until they are durable, and resends them on a new channel
(:class:`~.media_client.MediaClient`); the welcome gives ``position`` and ``durable`` too.

Fencing. A replica that gives up on a silent actor replaces it; if the old one was only frozen
(SIGSTOP, a stalled VM) it may wake up with frames still in its socket. So before handing over a
frame older than :data:`~.media_wire.LIVENESS_S`, or after its own timers ran that late, the
server asks ``still_current()`` (the actor checks that the session's advertised endpoint is
still its own) and, if not, hands nothing more over and calls ``superseded()``.

Kinds in: ``audio`` (bytes, PCM16 at the session rate), ``text`` (str), ``interrupt``,
``end_turn``, ``playback`` ({item_id, played_ms}), ``tool_result`` ({call_id, content,
is_error}), ``dtmf`` ({digit, to_model}: a phone key press), ``close`` (optionally {reason}).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..log import logger
from .media_wire import (
    HEARTBEAT_S,
    HELLO_MAX_FRAME,
    LIVENESS_S,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Endpoint,
    FrameError,
    FrameTooLarge,
    encode_frame,
    read_frame,
    tune_socket,
)

__all__ = ["Endpoint", "MediaClient", "MediaServer", "encode_frame"]

log = logger.getChild("media")

HELLO_TIMEOUT = 2.0
MAX_CONNECTIONS = 8
#: Audio frames are acknowledged when the last ack is this old (seconds), else by the next
#: heartbeat: acks only let the replica forget input, and audio is most frames. Other kinds
#: (which a replica may wait on) are acked at once.
AUDIO_ACK_S = 0.1
KINDS = frozenset(
    {"audio", "text", "interrupt", "end_turn", "playback", "tool_result", "dtmf", "close"}
)

#: After a refusal or a bye, wait at most this long for the peer to hang up (dropping what it
#: still sends: at most _REFUSE_DISCARD bytes before a hello), so that closing does not reset
#: the connection: a reset discards the last frame before the peer has read it.
_LINGER_S = 1.0
_REFUSE_DISCARD = 64 * 1024

Handler = Callable[[str, Any, float], Awaitable[None]]
Check = Callable[[], Awaitable[bool]]


class _Connection:
    """One replica's connection: what it has handled, and its acks."""

    __slots__ = ("ack_soon", "acked_at", "handled", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.handled = 0
        #: An ack scheduled for this event-loop turn, and the loop time of the last one written.
        self.ack_soon: asyncio.Handle | None = None
        self.acked_at = 0.0


class MediaServer:
    """The actor side: accepts replica connections and hands each frame to ``handler`` in order.

    ``position`` is the highest session input position handed to ``handler`` so far (a
    replacement actor passes its saved one); frames at or below it are acknowledged but not
    handled again. ``max_connections`` caps the connections held at once (authenticated or
    awaiting their hello); ``hello_timeout`` is how long a new connection has to send its hello.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        *,
        max_connections: int = MAX_CONNECTIONS,
        hello_timeout: float = HELLO_TIMEOUT,
        position: int = 0,
        heartbeat_s: float = HEARTBEAT_S,
        still_current: Check | None = None,
        superseded: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._token = secrets.token_urlsafe(24)
        self._max_connections = max_connections
        self._hello_timeout = hello_timeout
        self._heartbeat_s = heartbeat_s
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._live: set[_Connection] = set()
        self._held = 0
        self.position = position
        #: The highest position the handler has finished with (``position`` is taken before).
        self.applied = position
        #: The highest position whose effect is saved with the call's state (see the module doc).
        self.durable = position
        #: Frames received again after a resend (already handled): dropped, counted.
        self.duplicates = 0
        self._still_current = still_current
        self._superseded = superseded
        self._checked_at = 0.0
        self._fenced = False
        #: The reason close() gives the replicas (``bye``), once it was called with one.
        self._bye: str | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> Endpoint:
        self._server = await asyncio.start_server(self._serve, self._host, 0)
        port = self._server.sockets[0].getsockname()[1]
        if self._still_current is not None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_clock())
        return Endpoint(self._host, port, self._token)

    async def _watch_clock(self) -> None:
        """Notice having been frozen: the timer fires much later than it was set for."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._heartbeat_s
            await asyncio.sleep(self._heartbeat_s)
            if loop.time() - due > LIVENESS_S and not await self._current():
                return

    async def _current(self) -> bool:
        """False (and ``superseded()`` called, once) if another actor has taken the session."""
        if self._fenced:
            return False
        if self._still_current is None:
            return True
        current = True
        for attempt in range(3):  # a process that was frozen sees its old timeouts fire at once
            try:
                current = await self._still_current()
                break
            except Exception as exc:
                if attempt == 2:  # cannot tell: keep the call going
                    log.warning("cannot check whether this actor still owns the session: %r", exc)
                    return True
                await asyncio.sleep(0.1)
        self._checked_at = time.monotonic()
        if not current:
            self._fenced = True
            log.warning("another actor has taken over this session; handing nothing more over")
            if self._superseded is not None:
                asyncio.get_running_loop().create_task(self._superseded())
        return current

    async def close(self, reason: str = "") -> None:
        """Close every connection and stop. With a ``reason``, each replica is told ``bye`` and
        given up to a second to hang up first (see the module's docstring)."""
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._server is not None:
            self._server.close()
            self._bye = reason[:200] or None
            # End every connection's task: each says bye as it ends (see _session). Not ours, if
            # a handler calls this: its connection gets the bye and is closed at once.
            current = asyncio.current_task()
            others = [task for task in self._connections if task is not current]
            for task, writer in list(self._connections.items()):
                if task is not current:
                    task.cancel()
                    continue
                if self._bye is not None and any(c.writer is writer for c in self._live):
                    with contextlib.suppress(Exception):
                        writer.write(encode_frame("bye", self._bye))
                writer.close()
            await asyncio.gather(*others, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        tune_socket(writer)
        try:
            if self._held >= self._max_connections:
                log.warning("media connection from %s refused: too many connections", peer)
                await _refuse(reader, writer, "too many connections")
                return
            self._held += 1
            try:
                await self._session(reader, writer, peer)
            finally:
                self._held -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Closed by close(); Python 3.12.1 would log a cancelled connection task as an error.
            pass
        except Exception:
            log.exception("media connection from %s failed", peer)
        finally:
            del self._connections[task]
            writer.close()

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        """Check the hello, answer it, then hand every new frame to the handler until EOF."""
        reason = await self._check_hello(reader)
        if reason is not None:
            log.warning("media connection from %s refused: %s", peer, reason)
            await _refuse(reader, writer, reason)
            return
        info = {
            "version": PROTOCOL_VERSION,
            "max_frame": MAX_FRAME,
            "position": self.position,
            "durable": self.durable,
            "heartbeat_s": self._heartbeat_s,
        }
        writer.write(encode_frame("welcome", info, time.time()))
        connection = _Connection(writer)
        self._live.add(connection)
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(connection))
        try:
            await self._receive(reader, connection, peer)
        except asyncio.CancelledError:
            if self._bye is not None:  # close(reason): no ack may follow the bye
                _stop_acks(connection, heartbeat)
                await _last_word(reader, writer, "bye", self._bye, limit=None)
            raise
        finally:
            self._live.discard(connection)
            _stop_acks(connection, heartbeat)

    async def _receive(
        self, reader: asyncio.StreamReader, connection: _Connection, peer: object
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await read_frame(reader, MAX_FRAME)
            except FrameError as exc:
                log.warning("media connection from %s dropped: %s", peer, exc)
                return
            if (
                self._still_current is not None
                and time.time() - frame.sent_at > LIVENESS_S
                and time.monotonic() - self._checked_at > 1.0
                and not await self._current()
            ) or self._fenced:
                return
            position = frame.position
            if position is None or position > self.position:
                if position is not None:
                    self.position = position
                await self._handler(frame.kind, frame.payload, frame.sent_at)
                if position is not None:
                    self.applied = max(self.applied, position)
            else:
                self.duplicates += 1
            connection.handled += 1
            if frame.kind != "audio":
                if connection.ack_soon is None:
                    connection.ack_soon = loop.call_soon(self._ack, connection)
            elif loop.time() - connection.acked_at >= AUDIO_ACK_S:
                self._ack(connection)

    def _ack(self, connection: _Connection) -> None:
        if connection.ack_soon is not None:
            connection.ack_soon.cancel()
            connection.ack_soon = None
        connection.acked_at = asyncio.get_running_loop().time()
        writer = connection.writer
        if not writer.is_closing():
            ack = [connection.handled, self.position, self.durable]
            writer.write(encode_frame("ack", ack))

    def set_durable(self, position: int) -> None:
        """Input up to ``position`` is saved with the call's state: replicas may forget it (the
        next ack or heartbeat tells them)."""
        self.durable = max(self.durable, min(position, self.applied))

    async def _heartbeat(self, connection: _Connection) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            self._ack(connection)

    async def _check_hello(self, reader: asyncio.StreamReader) -> str | None:
        """None for a good hello, else the reason to refuse it."""
        try:
            async with asyncio.timeout(self._hello_timeout):
                frame = await read_frame(reader, HELLO_MAX_FRAME)
        except TimeoutError:
            return "hello timeout"
        except FrameTooLarge:
            return "frame too large"
        except FrameError:
            return "bad hello"
        if frame.kind != "hello":
            return "bad hello"
        token = frame.payload
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), self._token.encode()
        ):
            return "bad token"
        return None


def _stop_acks(connection: _Connection, heartbeat: asyncio.Task[None]) -> None:
    heartbeat.cancel()
    if connection.ack_soon is not None:
        connection.ack_soon.cancel()
        connection.ack_soon = None


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reason: str) -> None:
    await _last_word(reader, writer, "refused", reason, limit=_REFUSE_DISCARD)


async def _last_word(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    kind: str,
    reason: str,
    *,
    limit: int | None,
) -> None:
    """Send ``[kind, reason, ts]`` and half-close; return once the peer hangs up, within
    :data:`_LINGER_S`, dropping what it still sends (at most ``limit`` bytes; None: no limit)."""
    with contextlib.suppress(Exception):
        writer.write(encode_frame(kind, reason, time.time()))
        writer.write_eof()
        async with asyncio.timeout(_LINGER_S):
            discarded = 0
            while (limit is None or discarded < limit) and (chunk := await reader.read(4096)):
                discarded += len(chunk)


from .media_client import MediaClient  # noqa: E402  (re-exported; it imports the wire only)
