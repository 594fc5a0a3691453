"""The emulator's event-stream codec, checked against the SDK's own codec as an oracle."""

from __future__ import annotations

import datetime
import io
import struct
import uuid
import zlib

import pytest
from smithy_aws_event_stream.events import Byte, Event, EventMessage, Long, Short

from s2s.emulators.nova.eventstream import (
    EventStreamError,
    MessageDecoder,
    Timestamp,
    decode,
    encode,
)

WHEN = datetime.datetime(2026, 11, 23, 22, 28, 20, 123000, tzinfo=datetime.UTC)
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_an_empty_message_is_16_bytes_with_known_crcs():
    frame = encode({})
    # total=16, headers=0, prelude CRC of 00000010 00000000, then the message CRC
    assert frame[:8] == bytes.fromhex("0000001000000000")
    assert struct.unpack(">I", frame[8:12])[0] == zlib.crc32(frame[:8]) == 0x05C248EB
    assert struct.unpack(">I", frame[12:])[0] == zlib.crc32(frame[:12]) == 0x7D98C8FF
    assert decode(frame).headers == {} and decode(frame).payload == b""


def test_our_encoding_decodes_with_the_sdk():
    headers = {
        ":message-type": "event",
        ":event-type": "chunk",
        "flag": True,
        "off": False,
        "n": 7,
        "blob": b"\x00\x01",
        ":date": Timestamp.of(WHEN),
        "id": UID,
    }
    frame = encode(headers, b'{"bytes":"e30="}')
    event = Event.decode(io.BytesIO(frame))
    assert event is not None
    assert event.message.payload == b'{"bytes":"e30="}'
    got = dict(event.message.headers)
    assert got[":date"] == WHEN
    assert got["id"] == UID and got["blob"] == b"\x00\x01" and got["n"] == 7
    assert got["flag"] is True and got["off"] is False


def test_sdk_encoding_decodes_with_ours_including_every_integer_size():
    message = EventMessage(
        headers={
            "b": Byte(-3),
            "s": Short(300),
            "i": 70000,
            "l": Long(2**40),
            ":date": WHEN,
            "u": UID,
            "str": "héllo",
        },
        payload=b"payload",
    )
    decoded = decode(message.encode())
    assert decoded.payload == b"payload"
    assert decoded.headers == {
        "b": -3,
        "s": 300,
        "i": 70000,
        "l": 2**40,
        ":date": Timestamp.of(WHEN),
        "u": UID,
        "str": "héllo",
    }


def test_the_incremental_decoder_splits_a_stream_fed_byte_by_byte():
    frames = [encode({"k": f"v{i}"}, b"x" * i) for i in range(5)]
    decoder = MessageDecoder()
    out = []
    for byte in b"".join(frames):
        out.extend(decoder.feed(bytes([byte])))
    assert [m.headers["k"] for m in out] == [f"v{i}" for i in range(5)]
    assert [len(m.payload) for m in out] == list(range(5)) and decoder.pending == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f[:8] + b"\x00\x00\x00\x00" + f[12:], "prelude CRC mismatch"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "message CRC mismatch"),
        (lambda f: f[:20] + bytes([f[20] ^ 0x40]) + f[21:], "message CRC mismatch"),
    ],
)
def test_damaged_frames_are_refused(damage, message):
    frame = encode({"k": "v"}, b"payload")
    with pytest.raises(EventStreamError, match=message):
        MessageDecoder().feed(damage(frame))


def test_malformed_headers_are_named():
    raw_headers = b"\x01k\x0e"  # type 14 does not exist
    prelude = struct.pack(">II", 16 + len(raw_headers), len(raw_headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers
    frame = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(EventStreamError, match="unknown value type 14"):
        decode(frame)
