"""The media channel: ordered caller input from an ingress replica to a session actor.

A Ray actor call costs about 1 ms of CPU (measured: ~0.5 ms in the caller plus ~0.5 ms in the
actor), so one call per 20 ms audio frame would cost 0.05 core per call on its own. Instead each
session actor listens on a TCP port and the replica keeps one connection per session: audio and
control messages travel as length-prefixed msgpack frames, in the order the caller sent them,
for a few microseconds each. Ray calls remain for the lifecycle (create, attach, close).

Frame: 4-byte big-endian length, then msgpack ``[kind, payload, sent_at]`` (``kind`` a str,
``sent_at`` a number).

Handshake: the replica's first frame must be ``["hello", token, 0]`` with the session's token
(a str, compared in constant time). Until it is accepted a frame may be at most
:data:`HELLO_MAX_FRAME` (512) bytes (a longer length prefix is refused before its body is read)
and the hello must arrive within ``hello_timeout`` (2 s). The actor answers
``["welcome", {"version": PROTOCOL_VERSION, "max_frame": MAX_FRAME}, ts]``; from then on frames
may be up to :data:`MAX_FRAME` (4 MiB) and the actor writes nothing more. Otherwise it answers
``["refused", reason, ts]`` (``"bad hello"``, ``"bad token"``, ``"frame too large"``,
``"hello timeout"``, ``"too many connections"``) and closes the connection. An actor holds at
most ``max_connections`` (8) connections, counting those still waiting for their hello; one more
is refused at once. A frame that is too large, undecodable or of the wrong shape after the
handshake closes that connection only. :meth:`MediaClient.connect` returns once welcomed and
raises ProviderConnectionError (with the reason) if refused or not answered within 5 s.

Kinds: ``audio`` (bytes, PCM16 at the session rate), ``text`` (str), ``interrupt``, ``end_turn``,
``playback`` ({item_id, played_ms}), ``tool_result`` ({call_id, content, is_error}), ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from ..errors import ProviderConnectionError
from ..log import logger

__all__ = ["Endpoint", "MediaClient", "MediaServer", "encode_frame"]

log = logger.getChild("media")

_HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024
#: The largest frame accepted before the hello is (a hello is about 50 bytes).
HELLO_MAX_FRAME = 512
HELLO_TIMEOUT = 2.0
MAX_CONNECTIONS = 8
PROTOCOL_VERSION = 1
KINDS = frozenset({"audio", "text", "interrupt", "end_turn", "playback", "tool_result", "close"})

#: After a refusal, wait at most this long (reading at most _REFUSE_DISCARD bytes) for the peer
#: to hang up, so that closing does not reset the connection before the refusal is read.
_REFUSE_LINGER = 1.0
_REFUSE_DISCARD = 64 * 1024

Handler = Callable[[str, Any, float], Awaitable[None]]


class _FrameError(ValueError):
    """A frame the protocol does not allow (its message never quotes the frame's content)."""


class _FrameTooLarge(_FrameError):
    """A length prefix over the limit (the body was not read)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "token": self.token}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        return cls(str(data["host"]), int(data["port"]), str(data["token"]))


def encode_frame(kind: str, payload: Any = None, sent_at: float | None = None) -> bytes:
    body = bytes(
        msgpack.packb(
            [kind, payload, time.time() if sent_at is None else sent_at], use_bin_type=True
        )
    )
    return _HEADER.pack(len(body)) + body


async def _read_frame(reader: asyncio.StreamReader, limit: int) -> tuple[str, Any, float]:
    """Read one frame; raises _FrameError if it is malformed or over ``limit`` bytes."""
    (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > limit:
        raise _FrameTooLarge(f"a {length} byte frame is over the {limit} byte limit")
    body = await reader.readexactly(length)
    try:
        frame = msgpack.unpackb(body, raw=False)
    except Exception as exc:
        raise _FrameError(f"undecodable frame ({type(exc).__name__})") from None
    if not (isinstance(frame, list) and len(frame) == 3 and isinstance(frame[0], str)):
        raise _FrameError("malformed frame")
    kind, payload, sent_at = frame
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        raise _FrameError("malformed frame")
    return kind, payload, float(sent_at)


class MediaServer:
    """The actor side: accepts replica connections and hands each frame to ``handler`` in order.

    ``max_connections`` caps the connections held at once (authenticated or awaiting their
    hello); ``hello_timeout`` is how long a new connection has to send its hello.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        *,
        max_connections: int = MAX_CONNECTIONS,
        hello_timeout: float = HELLO_TIMEOUT,
    ) -> None:
        self._handler = handler
        self._host = host
        self._token = secrets.token_urlsafe(24)
        self._max_connections = max_connections
        self._hello_timeout = hello_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._held = 0

    async def start(self) -> Endpoint:
        self._server = await asyncio.start_server(self._serve, self._host, 0)
        port = self._server.sockets[0].getsockname()[1]
        return Endpoint(self._host, port, self._token)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # Close every connection, and end their tasks (but not ours, if a handler calls this).
            current = asyncio.current_task()
            others = [task for task in self._connections if task is not current]
            for task, writer in list(self._connections.items()):
                writer.close()
                if task is not current:
                    task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
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
        """Check the hello, answer it, then hand every frame to the handler until EOF."""
        reason = await self._check_hello(reader)
        if reason is not None:
            log.warning("media connection from %s refused: %s", peer, reason)
            await _refuse(reader, writer, reason)
            return
        info = {"version": PROTOCOL_VERSION, "max_frame": MAX_FRAME}
        writer.write(encode_frame("welcome", info, time.time()))
        while True:
            try:
                kind, payload, sent_at = await _read_frame(reader, MAX_FRAME)
            except _FrameError as exc:
                log.warning("media connection from %s dropped: %s", peer, exc)
                return
            await self._handler(kind, payload, sent_at)

    async def _check_hello(self, reader: asyncio.StreamReader) -> str | None:
        """None for a good hello, else the reason to refuse it."""
        try:
            async with asyncio.timeout(self._hello_timeout):
                kind, token, _ = await _read_frame(reader, HELLO_MAX_FRAME)
        except TimeoutError:
            return "hello timeout"
        except _FrameTooLarge:
            return "frame too large"
        except _FrameError:
            return "bad hello"
        if kind != "hello":
            return "bad hello"
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), self._token.encode()
        ):
            return "bad token"
        return None


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reason: str) -> None:
    """Send ``["refused", reason, ts]`` and half-close; return once the peer hangs up (bounded)."""
    writer.write(encode_frame("refused", reason, time.time()))
    with contextlib.suppress(Exception):
        writer.write_eof()
        async with asyncio.timeout(_REFUSE_LINGER):
            discarded = 0
            while discarded < _REFUSE_DISCARD and (chunk := await reader.read(4096)):
                discarded += len(chunk)


class MediaClient:
    """The replica side: one connection to one session actor."""

    #: Wait for the socket to drain once this much is buffered (backpressure on a slow actor).
    HIGH_WATER = 256 * 1024
    #: Seconds to connect and get the actor's welcome.
    CONNECT_TIMEOUT = 5.0

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._writer: asyncio.StreamWriter | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def connected(self) -> bool:
        return (
            self._writer is not None and not self._writer.is_closing() and not self.closed.is_set()
        )

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
                kind, info, _ = await _read_frame(reader, HELLO_MAX_FRAME)
        except TimeoutError as exc:
            raise ProviderConnectionError(
                f"{where} did not answer the hello within {self.CONNECT_TIMEOUT:g} s"
            ) from exc
        except (OSError, EOFError, ValueError) as exc:
            raise ProviderConnectionError(f"{where} closed without a welcome") from exc
        if kind == "refused":
            reason = info if isinstance(info, str) else "no reason given"
            raise ProviderConnectionError(f"{where} refused the connection: {reason[:200]}")
        if kind != "welcome":
            raise ProviderConnectionError(f"{where} answered the hello with {kind[:40]!r}")

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """After its welcome the actor writes nothing: EOF means it closed the channel or died."""
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        self.closed.set()

    async def send(self, kind: str, payload: Any = None, sent_at: float | None = None) -> None:
        """Queue one frame; raises ProviderConnectionError if the channel is gone."""
        writer = self._writer
        if writer is None or writer.is_closing() or self.closed.is_set():
            raise ProviderConnectionError("the session's media channel is closed")
        writer.write(encode_frame(kind, payload, sent_at))
        transport = writer.transport
        if transport.get_write_buffer_size() > self.HIGH_WATER:
            try:
                await writer.drain()
            except ConnectionError as exc:
                raise ProviderConnectionError("the session's media channel dropped") from exc

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self.closed.set()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
