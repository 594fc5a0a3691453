import asyncio
import contextlib
import logging
import struct

import msgpack
import pytest

import s2s
from s2s.service.media import Endpoint, MediaClient, MediaServer, encode_frame


class Recorder:
    """A media handler that records frames and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, object, float]] = []
        self._changed = asyncio.Event()

    async def __call__(self, kind, payload, sent_at):
        self.frames.append((kind, payload, sent_at))
        self._changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.frames) < count:
                self._changed.clear()
                await self._changed.wait()


async def raw_connection(endpoint: Endpoint):
    return await asyncio.open_connection(endpoint.host, endpoint.port)


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def read_frame(reader: asyncio.StreamReader) -> list:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(length), raw=False)


async def read_until_closed(reader: asyncio.StreamReader) -> list[list]:
    """Every frame the server sends before it closes the connection."""
    frames = []
    async with asyncio.timeout(5):
        while True:
            try:
                frames.append(await read_frame(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                return frames


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="s2s")
    return caplog


async def test_frames_arrive_in_order_with_their_timestamps():
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    client = MediaClient(endpoint)
    await client.connect()
    assert client.connected
    for n in range(200):  # 640 bytes each: over the pre-hello limit, fine after the welcome
        await client.send("audio", bytes([n % 256]) * 640, 1000.0 + n)
    await client.send("text", "hello")
    await client.send("playback", {"item_id": "i", "played_ms": 120})
    await received.until(202)
    await client.close()
    await server.close()
    assert len(received.frames) == 202
    assert [r[2] for r in received.frames[:200]] == [1000.0 + n for n in range(200)]
    assert received.frames[-2][:2] == ("text", "hello")
    assert received.frames[-1][1] == {"item_id": "i", "played_ms": 120}


async def test_a_raw_client_with_a_good_hello_is_welcomed():
    server = MediaServer(Recorder())
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(encode_frame("hello", endpoint.token, 0))
    async with asyncio.timeout(5):
        kind, info, sent_at = await read_frame(reader)
    assert kind == "welcome"
    assert info == {
        "version": 2,
        "max_frame": 4 * 1024 * 1024,
        "position": 0,
        "durable": 0,
        "heartbeat_s": 0.5,
    }
    assert sent_at > 0
    await hang_up(writer)
    await server.close()


async def test_a_wrong_token_is_refused(logs):
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    client = MediaClient(Endpoint(endpoint.host, endpoint.port, "not-the-token"))
    with pytest.raises(s2s.ProviderConnectionError, match="refused the connection: bad token"):
        await client.connect()
    assert not client.connected
    with pytest.raises(s2s.ProviderConnectionError):
        await client.send("text", "let me in")
    assert received.frames == []
    await client.close()
    await server.close()
    assert "bad token" in logs.text
    assert endpoint.token not in logs.text
    assert "not-the-token" not in logs.text


@pytest.mark.parametrize(
    ("hello", "reason"),
    [
        (encode_frame("hello", 12345, 0), "bad token"),
        (encode_frame("hello", b"bytes-token", 0), "bad token"),
        (encode_frame("hello", None, 0), "bad token"),
        (encode_frame("audio", b"\x00" * 100, 0), "bad hello"),
        (raw_frame(b"\xc1\xc1\xc1"), "bad hello"),  # not msgpack
        (raw_frame(b"\x92"), "bad hello"),  # truncated array
        (raw_frame(b"\xa2\xff\xfe"), "bad hello"),  # invalid UTF-8
        (raw_frame(msgpack.packb({})), "bad hello"),  # wrong shape
        (raw_frame(msgpack.packb([1, 2, 3])), "bad hello"),
        (raw_frame(msgpack.packb(["hello", "t"])), "bad hello"),
    ],
    ids=[
        "int-token",
        "bytes-token",
        "no-token",
        "not-hello",
        "not-msgpack",
        "truncated",
        "bad-utf8",
        "map",
        "kind-not-str",
        "two-items",
    ],
)
async def test_a_bad_hello_is_refused_with_a_reason(hello, reason, logs):
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(hello)
    frames = await read_until_closed(reader)
    assert [f[:2] for f in frames] == [["refused", reason]]
    assert received.frames == []
    await hang_up(writer)
    await server.close()
    assert endpoint.token not in logs.text
    assert "Traceback" not in logs.text


async def test_an_oversized_length_before_the_hello_is_refused_without_reading_the_body():
    server = MediaServer(Recorder(), hello_timeout=30)
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(struct.pack(">I", 10_000_000))  # the header alone: no body follows
    async with asyncio.timeout(2):  # far less than the hello deadline
        frames = await read_until_closed(reader)
    assert [f[:2] for f in frames] == [["refused", "frame too large"]]
    await hang_up(writer)
    await server.close()


async def test_a_frame_of_513_bytes_is_too_large_before_the_hello():
    server = MediaServer(Recorder(), hello_timeout=30)
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(raw_frame(b"\x00" * 513))
    frames = await read_until_closed(reader)
    assert [f[:2] for f in frames] == [["refused", "frame too large"]]
    await hang_up(writer)
    await server.close()


async def test_a_silent_connection_is_closed_after_the_hello_deadline():
    server = MediaServer(Recorder(), hello_timeout=0.2)
    endpoint = await server.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await raw_connection(endpoint)
    frames = await read_until_closed(reader)
    assert loop.time() - started >= 0.15
    assert [f[:2] for f in frames] == [["refused", "hello timeout"]]
    await hang_up(writer)
    await server.close()


@pytest.mark.parametrize(
    "garbage",
    [
        raw_frame(b"\xc1\xc1\xc1"),
        raw_frame(msgpack.packb({})),
        raw_frame(msgpack.packb(["audio", b"", "later"])),
        raw_frame(b"\xa2\xff\xfe"),
    ],
    ids=["not-msgpack", "map", "sent-at-not-a-number", "bad-utf8"],
)
async def test_garbage_after_the_hello_closes_only_that_connection(garbage, logs):
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    good = MediaClient(endpoint)
    await good.connect()
    reader, writer = await raw_connection(endpoint)
    writer.write(encode_frame("hello", endpoint.token, 0))
    assert (await read_frame(reader))[0] == "welcome"
    writer.write(encode_frame("text", "before", 1.0) + garbage + encode_frame("text", "after", 2.0))
    assert await read_until_closed(reader) == []  # closed, nothing more said
    await good.send("text", "still here", 3.0)
    await received.until(2)
    assert received.frames == [("text", "before", 1.0), ("text", "still here", 3.0)]
    assert good.connected
    await hang_up(writer)
    await good.close()
    await server.close()
    assert "dropped" in logs.text
    assert endpoint.token not in logs.text


async def test_an_oversized_frame_after_the_hello_closes_the_connection():
    server = MediaServer(Recorder())
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(encode_frame("hello", endpoint.token, 0))
    assert (await read_frame(reader))[0] == "welcome"
    writer.write(struct.pack(">I", 4 * 1024 * 1024 + 1))
    assert await read_until_closed(reader) == []
    await hang_up(writer)
    await server.close()


async def test_garbage_before_the_hello_does_not_disturb_another_client():
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    good = MediaClient(endpoint)
    await good.connect()
    reader, writer = await raw_connection(endpoint)
    writer.write(raw_frame(b"\xc1\xc1\xc1"))
    assert [f[:2] for f in await read_until_closed(reader)] == [["refused", "bad hello"]]
    await good.send("text", "fine")
    await received.until(1)
    await hang_up(writer)
    await good.close()
    await server.close()


async def test_the_connection_cap_refuses_one_more_and_keeps_the_others(logs):
    received = Recorder()
    server = MediaServer(received, max_connections=3)
    endpoint = await server.start()
    clients = [MediaClient(endpoint) for _ in range(2)]
    for client in clients:
        await client.connect()
    # A connection still waiting for its hello holds a place too.
    _, pending = await raw_connection(endpoint)
    extra = MediaClient(endpoint)
    with pytest.raises(
        s2s.ProviderConnectionError, match="refused the connection: too many connections"
    ):
        await extra.connect()
    for n, client in enumerate(clients):
        await client.send("text", f"client {n}", float(n))
    await received.until(2)
    assert sorted(f[1] for f in received.frames) == ["client 0", "client 1"]
    assert all(client.connected for client in clients)

    await hang_up(pending)  # the place is given back once the server sees the hang-up
    async with asyncio.timeout(5):
        while True:
            try:
                await extra.connect()
                break
            except s2s.ProviderConnectionError:
                await asyncio.sleep(0.01)
    assert extra.connected
    for client in [*clients, extra]:
        await client.close()
    await server.close()
    assert "too many connections" in logs.text
    assert endpoint.token not in logs.text


async def test_a_failing_handler_closes_its_connection_and_is_logged(logs):
    async def handler(kind, payload, sent_at):
        raise RuntimeError("handler broke")

    server = MediaServer(handler)
    client = MediaClient(await server.start())
    await client.connect()
    await client.send("text", "boom")
    async with asyncio.timeout(5):
        await client.closed.wait()
    await client.close()
    await server.close()
    assert "handler broke" in logs.text


async def test_a_handler_may_close_the_server():
    server: MediaServer

    async def handler(kind, payload, sent_at):
        if kind == "close":
            await server.close()

    server = MediaServer(handler)
    client = MediaClient(await server.start())
    await client.connect()
    await client.send("close")
    async with asyncio.timeout(5):
        await client.closed.wait()
    await client.close()


async def test_the_client_notices_the_actor_going_away():
    server = MediaServer(Recorder())
    client = MediaClient(await server.start())
    await client.connect()
    await server.close()
    async with asyncio.timeout(5):
        await client.closed.wait()
    assert not client.connected
    await client.close()


async def test_a_server_that_never_answers_the_hello_times_out(monkeypatch):
    async def mute(reader, writer):
        await reader.read()  # reads the hello and says nothing
        writer.close()

    mute_server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = mute_server.sockets[0].getsockname()[1]
    client = MediaClient(Endpoint("127.0.0.1", port, "t"))
    monkeypatch.setattr(client, "CONNECT_TIMEOUT", 0.2)
    with pytest.raises(s2s.ProviderConnectionError, match="did not answer the hello"):
        await client.connect()
    assert not client.connected
    mute_server.close()
    await mute_server.wait_closed()


async def test_a_server_that_hangs_up_without_a_welcome_is_a_connection_error():
    async def rude(reader, writer):
        writer.close()

    rude_server = await asyncio.start_server(rude, "127.0.0.1", 0)
    port = rude_server.sockets[0].getsockname()[1]
    client = MediaClient(Endpoint("127.0.0.1", port, "t"))
    with pytest.raises(s2s.ProviderConnectionError, match="closed without a welcome"):
        await client.connect()
    rude_server.close()
    await rude_server.wait_closed()


async def test_nothing_listening_is_a_connection_error():
    client = MediaClient(Endpoint("127.0.0.1", 9, "t"))
    with pytest.raises(s2s.ProviderConnectionError, match="media channel"):
        await client.connect()


# -- acknowledged input (protocol version 2) -------------------------------------------------------


async def test_frames_are_acknowledged_and_the_position_advances():
    received = Recorder()
    server = MediaServer(received)
    client = MediaClient(await server.start())
    await client.connect()
    numbers = [await client.send("audio", bytes([i]) * 4, position=i + 1) for i in range(5)]
    await client.send("text", "no position")
    async with asyncio.timeout(5):
        await client.wait_acked(numbers[-1] + 1)
    assert client.position == 5 and server.position == 5
    assert client.unacked_bytes == 0
    assert [p for _, p, _ in received.frames] == [bytes([i]) * 4 for i in range(5)] + [
        "no position"
    ]
    # handled, but not saved by the actor yet: kept for a replacement (positioned frames only)
    assert [position for position, _ in client.unacked()] == [1, 2, 3, 4, 5]
    await client.close()
    await server.close()


async def test_input_is_kept_until_the_actor_saved_it_then_forgotten():
    server = MediaServer(Recorder(), heartbeat_s=0.05)
    client = MediaClient(await server.start())
    await client.connect()
    for position in range(1, 6):
        number = await client.send("audio", b"\x00\x00", position=position)
    async with asyncio.timeout(5):
        await client.wait_acked(number)
    assert client.durable == 0 and client.retained_bytes > 0
    server.set_durable(3)  # the actor saved its state up to position 3
    async with asyncio.timeout(5):
        while client.durable < 3:
            client._progress.clear()
            await client._progress.wait()
    assert [position for position, _ in client.unacked()] == [4, 5]
    assert client.retained_bytes == 0  # taken
    await client.close()
    await server.close()


async def test_input_kept_for_a_replacement_is_bounded(monkeypatch):
    monkeypatch.setattr(MediaClient, "MAX_RETAINED_BYTES", 200)
    server = MediaServer(Recorder())
    client = MediaClient(await server.start())
    await client.connect()
    for position in range(1, 21):
        number = await client.send("audio", bytes(40), position=position)
    async with asyncio.timeout(5):
        await client.wait_acked(number)
    kept = [position for position, _ in client.unacked()]
    assert kept == list(range(21 - len(kept), 21)) and len(kept) < 20
    assert client.forgotten == 20 - len(kept)
    await client.close()
    await server.close()


async def test_input_resent_on_a_new_channel_is_handled_once():
    """A channel that dies with frames unacknowledged: the next one resends them; the actor
    hands each position over once, in order."""
    received = Recorder()
    server = MediaServer(received)
    endpoint = await server.start()
    first = MediaClient(endpoint)
    await first.connect()
    for position in range(1, 6):
        await first.send("audio", bytes([position]) * 2, position=position)
    await received.until(5)
    # Pretend no ack arrived: take every frame written as unacknowledged and resend it.
    frames = [(p, encode_frame("audio", bytes([p]) * 2, 0.0, p)) for p in range(1, 6)]
    await first.close()
    second = MediaClient(endpoint)
    await second.connect()
    assert second.position == 5  # the welcome says how far the actor got
    await second.adopt(frames)
    number = await second.send("audio", b"\x06\x06", position=6)
    async with asyncio.timeout(5):
        await second.wait_acked(number)
    assert [p for _, p, _ in received.frames] == [bytes([p]) * 2 for p in range(1, 7)]
    assert server.duplicates == 5
    await second.close()
    await server.close()


async def test_a_replacement_actor_takes_positions_above_its_saved_one():
    received = Recorder()
    server = MediaServer(received, position=40)
    client = MediaClient(await server.start())
    await client.connect()
    for position in (39, 40, 44, 45):
        number = await client.send("audio", b"\x00\x00", position=position)
    async with asyncio.timeout(5):
        await client.wait_acked(number)
    assert len(received.frames) == 2 and server.position == 45
    await client.close()
    await server.close()


async def test_an_idle_channel_is_kept_alive_by_heartbeats():
    server = MediaServer(Recorder(), heartbeat_s=0.05)
    lost: list[str] = []
    client = MediaClient(await server.start(), on_lost=lambda c, reason: lost.append(reason))
    await client.connect()
    acks_before = client._progress
    for _ in range(4):  # several heartbeats arrive with no input at all
        acks_before.clear()
        async with asyncio.timeout(5):
            await acks_before.wait()
    assert client.connected and lost == []
    await client.close()
    await server.close()
    assert lost == []  # our own close is not a loss


async def test_a_silent_actor_fails_the_channel_and_keeps_the_input(monkeypatch):
    """A frozen actor (no heartbeat): the channel fails within LIVENESS_S and the frames it
    never acknowledged are there to resend."""
    monkeypatch.setattr("s2s.service.media_client.LIVENESS_S", 0.3)

    async def frozen(reader, writer):
        writer.write(encode_frame("welcome", {"version": 2, "position": 0}, 0.0))
        await reader.read()  # reads everything, acknowledges nothing
        writer.close()

    silent = await asyncio.start_server(frozen, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    lost: list[str] = []
    client = MediaClient(Endpoint("127.0.0.1", port, "t"), on_lost=lambda c, r: lost.append(r))
    await client.connect()
    for position in (1, 2, 3):
        await client.send("audio", b"\x01\x02", position=position)
    async with asyncio.timeout(5):
        await client.closed.wait()
    assert lost and "silent" in lost[0]
    assert len(client.unacked()) == 3
    with pytest.raises(s2s.ProviderConnectionError, match="silent"):
        await client.send("audio", b"\x01\x02", position=4)  # refused: nothing written
    await client.close()
    silent.close()
    await silent.wait_closed()


async def test_a_bye_says_the_actor_closed_on_purpose():
    server = MediaServer(Recorder())
    lost: list[str] = []
    client = MediaClient(await server.start(), on_lost=lambda c, r: lost.append(r))
    await client.connect()
    await server.close("session_ended")
    async with asyncio.timeout(5):
        await client.closed.wait()
    assert client.bye == "session_ended" and "session_ended" in lost[0]
    await client.close()


async def test_malformed_positions_close_the_connection():
    server = MediaServer(Recorder())
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(encode_frame("hello", endpoint.token, 0))
    await read_frame(reader)
    writer.write(raw_frame(msgpack.packb(["audio", b"", 0.0, -3])))
    async with asyncio.timeout(5):
        frames = await read_until_closed(reader)
    assert all(frame[0] == "ack" for frame in frames)
    await hang_up(writer)
    await server.close()


async def test_a_bye_is_not_overtaken_by_a_reset_when_input_is_left_unread():
    """Closing a socket with input still unread makes the kernel reset the connection, and a
    reset that overtakes the bye loses it: the replica would take an ending call for a dead
    actor and start a replacement. The actor reads (and drops) what is left until the replica
    hangs up, so a replica reading late still gets the bye."""

    async def slow_handler(kind, payload, sent_at):
        await asyncio.sleep(0.01)  # the actor is busy: the replica's frames pile up unread

    server = MediaServer(slow_handler)
    endpoint = await server.start()
    reader, writer = await raw_connection(endpoint)
    writer.write(encode_frame("hello", endpoint.token, 0))
    assert (await read_frame(reader))[0] == "welcome"
    frame = encode_frame("audio", bytes(640))
    for _ in range(1500):  # ~1 MB: more than the actor reads ahead
        writer.write(frame)
    await writer.drain()
    closing = asyncio.create_task(server.close("caller_hung_up"))
    await asyncio.sleep(0.3)  # the replica reads only now, while the actor closes
    frames = await read_until_closed(reader)
    assert [f[:2] for f in frames if f[0] == "bye"] == [["bye", "caller_hung_up"]], frames[-3:]
    await hang_up(writer)
    async with asyncio.timeout(5):
        await closing
