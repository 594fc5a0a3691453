"""The ``application/vnd.amazon.eventstream`` message format, both directions.

One message on the wire::

    [total length: u32][headers length: u32][prelude CRC32: u32]
    [headers: { name length: u8, name, type: u8, value }...]
    [payload]
    [message CRC32: u32, over everything before it]

:func:`encode` builds a message, :class:`MessageDecoder` splits a byte stream into checked
:class:`Message` objects (CRCs, lengths and header types are verified; a violation raises
:class:`EventStreamError` naming it). Written for the emulator; the provider side uses the SDK.
"""

from __future__ import annotations

import datetime
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "EventStreamError",
    "HeaderValue",
    "Message",
    "MessageDecoder",
    "Timestamp",
    "decode",
    "encode",
    "encode_headers",
]

MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024
_PRELUDE = struct.Struct(">III")
_MIN_LENGTH = _PRELUDE.size + 4

# Header value types.
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A type-8 header value: milliseconds since the Unix epoch."""

    millis: int

    @classmethod
    def of(cls, when: datetime.datetime) -> Timestamp:
        return cls(int(when.timestamp() * 1000))

    def to_datetime(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.millis / 1000, datetime.UTC)


#: ``bool`` -> types 0/1, ``int`` -> 4 (int32), ``bytes`` -> 6, ``str`` -> 7, ``Timestamp`` -> 8,
#: ``uuid.UUID`` -> 9. Decoded byte/short/long values come back as ``int``.
HeaderValue = bool | int | bytes | str | Timestamp | uuid.UUID


class EventStreamError(ValueError):
    """Bytes that are not a well-formed event-stream message."""


@dataclass(frozen=True, slots=True)
class Message:
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""
    #: The exact encoded headers section (what a chunk signature covers).
    raw_headers: bytes = b""


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        if not 0 < len(raw_name) < 256:
            raise EventStreamError(f"header name {name!r} must be 1-255 bytes")
        out += bytes([len(raw_name)]) + raw_name
        if isinstance(value, bool):
            out.append(_TRUE if value else _FALSE)
        elif isinstance(value, int):
            out += bytes([_INT]) + struct.pack(">i", value)
        elif isinstance(value, bytes):
            out += bytes([_BYTES]) + struct.pack(">H", len(value)) + value
        elif isinstance(value, str):
            raw = value.encode("utf-8")
            out += bytes([_STRING]) + struct.pack(">H", len(raw)) + raw
        elif isinstance(value, Timestamp):
            out += bytes([_TIMESTAMP]) + struct.pack(">q", value.millis)
        elif isinstance(value, uuid.UUID):
            out += bytes([_UUID]) + value.bytes
        else:  # pragma: no cover - guarded by the type
            raise EventStreamError(f"header {name!r}: unsupported value {value!r}")
    return bytes(out)


def encode(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """One complete message."""
    raw_headers = encode_headers(headers)
    if len(raw_headers) > MAX_HEADERS_LENGTH:
        raise EventStreamError(f"headers are {len(raw_headers)} bytes; at most 128 KiB")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise EventStreamError(f"payload is {len(payload)} bytes; at most 16 MiB")
    total = _MIN_LENGTH + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    try:
        while pos < len(data):
            size = data[pos]
            name = data[pos + 1 : pos + 1 + size].decode("utf-8")
            pos += 1 + size
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (_TRUE, _FALSE):
                value = kind == _TRUE
            elif kind == _BYTE:
                (value,) = struct.unpack_from(">b", data, pos)
                pos += 1
            elif kind == _SHORT:
                (value,) = struct.unpack_from(">h", data, pos)
                pos += 2
            elif kind == _INT:
                (value,) = struct.unpack_from(">i", data, pos)
                pos += 4
            elif kind == _LONG:
                (value,) = struct.unpack_from(">q", data, pos)
                pos += 8
            elif kind in (_BYTES, _STRING):
                (length,) = struct.unpack_from(">H", data, pos)
                raw = data[pos + 2 : pos + 2 + length]
                if len(raw) != length:
                    raise EventStreamError(f"header {name!r}: value runs past the headers")
                value = raw.decode("utf-8") if kind == _STRING else bytes(raw)
                pos += 2 + length
            elif kind == _TIMESTAMP:
                (millis,) = struct.unpack_from(">q", data, pos)
                value = Timestamp(millis)
                pos += 8
            elif kind == _UUID:
                raw = data[pos : pos + 16]
                if len(raw) != 16:
                    raise EventStreamError(f"header {name!r}: truncated uuid")
                value = uuid.UUID(bytes=bytes(raw))
                pos += 16
            else:
                raise EventStreamError(f"header {name!r}: unknown value type {kind}")
            if name in headers:
                raise EventStreamError(f"duplicate header {name!r}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from exc
    return headers


def decode(frame: bytes) -> Message:
    """Decode exactly one complete message (raises :class:`EventStreamError`)."""
    if len(frame) < _MIN_LENGTH:
        raise EventStreamError(f"a message is at least 16 bytes, got {len(frame)}")
    total, headers_length, prelude_crc = _PRELUDE.unpack_from(frame)
    if zlib.crc32(frame[:8]) != prelude_crc:
        raise EventStreamError("prelude CRC mismatch")
    if total != len(frame):
        raise EventStreamError(f"message length {total} does not match {len(frame)} bytes")
    if headers_length > MAX_HEADERS_LENGTH or headers_length > total - _MIN_LENGTH:
        raise EventStreamError(f"invalid headers length {headers_length}")
    (message_crc,) = struct.unpack_from(">I", frame, total - 4)
    if zlib.crc32(frame[: total - 4]) != message_crc:
        raise EventStreamError("message CRC mismatch")
    raw_headers = frame[12 : 12 + headers_length]
    return Message(
        headers=_decode_headers(raw_headers),
        payload=frame[12 + headers_length : total - 4],
        raw_headers=raw_headers,
    )


class MessageDecoder:
    """Incremental: :meth:`feed` bytes as they arrive, get complete messages back."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= 12:
            total, _, prelude_crc = _PRELUDE.unpack_from(self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if total < _MIN_LENGTH or total > _MIN_LENGTH + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH:
                raise EventStreamError(f"invalid message length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(decode(frame))
        return messages
