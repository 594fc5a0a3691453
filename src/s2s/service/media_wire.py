"""The media channel's frames, endpoint and socket settings (shared by both ends).

Frame: 4-byte big-endian length, then msgpack ``[kind, payload, sent_at]`` or, for caller input
that carries a session input position, ``[kind, payload, sent_at, position]`` (``kind`` a str,
``sent_at`` a number, ``position`` a positive int).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import msgpack

__all__ = [
    "HEARTBEAT_S",
    "HELLO_MAX_FRAME",
    "LIVENESS_S",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "Endpoint",
    "Frame",
    "FrameError",
    "FrameTooLarge",
    "encode_frame",
    "read_frame",
    "tune_socket",
]

_HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024
#: The largest frame accepted before the hello is (a hello is about 50 bytes).
HELLO_MAX_FRAME = 512
#: 2: input positions, ``ack`` heartbeats from the actor, ``bye`` before it closes.
PROTOCOL_VERSION = 2
#: The actor writes an ``ack`` at least this often, even with no new input.
HEARTBEAT_S = 0.5
#: A replica that hears nothing from its actor for this long treats the channel as dead.
LIVENESS_S = 2.0
#: Unacknowledged bytes a dead peer may hold before the kernel gives up (TCP_USER_TIMEOUT).
_USER_TIMEOUT_MS = 5000


class FrameError(ValueError):
    """A frame the protocol does not allow (its message never quotes the frame's content)."""


class FrameTooLarge(FrameError):
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


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str
    payload: Any
    sent_at: float
    position: int | None = None


def encode_frame(
    kind: str, payload: Any = None, sent_at: float | None = None, position: int | None = None
) -> bytes:
    fields: list[Any] = [kind, payload, time.time() if sent_at is None else sent_at]
    if position is not None:
        fields.append(position)
    body = bytes(msgpack.packb(fields, use_bin_type=True))
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int) -> Frame:
    """Read one frame; raises FrameError if it is malformed or over ``limit`` bytes."""
    (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > limit:
        raise FrameTooLarge(f"a {length} byte frame is over the {limit} byte limit")
    body = await reader.readexactly(length)
    try:
        fields = msgpack.unpackb(body, raw=False)
    except Exception as exc:
        raise FrameError(f"undecodable frame ({type(exc).__name__})") from None
    if not (isinstance(fields, list) and len(fields) in (3, 4) and isinstance(fields[0], str)):
        raise FrameError("malformed frame")
    sent_at = fields[2]
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        raise FrameError("malformed frame")
    position = fields[3] if len(fields) == 4 else None
    if position is not None and (
        isinstance(position, bool) or not isinstance(position, int) or position < 1
    ):
        raise FrameError("malformed frame (bad position)")
    return Frame(fields[0], fields[1], float(sent_at), position)


def tune_socket(writer: asyncio.StreamWriter) -> None:
    """Low latency, and a dead peer noticed in seconds rather than TCP's ~15 minutes."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, _USER_TIMEOUT_MS)
