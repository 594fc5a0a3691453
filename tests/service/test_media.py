import asyncio

import pytest

import s2s
from s2s.service.media import Endpoint, MediaClient, MediaServer


async def test_frames_arrive_in_order_with_their_timestamps():
    received: list[tuple[str, object, float]] = []

    async def handler(kind, payload, sent_at):
        received.append((kind, payload, sent_at))

    server = MediaServer(handler)
    endpoint = await server.start()
    client = MediaClient(endpoint)
    await client.connect()
    for n in range(200):
        await client.send("audio", bytes([n % 256]) * 640, 1000.0 + n)
    await client.send("text", "hello")
    await client.send("playback", {"item_id": "i", "played_ms": 120})
    await asyncio.sleep(0.3)
    await client.close()
    await server.close()
    assert len(received) == 202
    assert [r[2] for r in received[:200]] == [1000.0 + n for n in range(200)]
    assert received[-2][:2] == ("text", "hello")
    assert received[-1][1] == {"item_id": "i", "played_ms": 120}


async def test_a_wrong_token_is_refused():
    received = []

    async def handler(kind, payload, sent_at):
        received.append(kind)

    server = MediaServer(handler)
    endpoint = await server.start()
    client = MediaClient(Endpoint(endpoint.host, endpoint.port, "not-the-token"))
    await client.connect()
    await client.send("text", "let me in")
    await asyncio.wait_for(client.closed.wait(), 5)  # the server hung up
    with pytest.raises(s2s.ProviderConnectionError):
        await client.send("text", "again")
    assert received == []
    await client.close()
    await server.close()


async def test_the_client_notices_the_actor_going_away():
    async def handler(kind, payload, sent_at):
        return None

    server = MediaServer(handler)
    client = MediaClient(await server.start())
    await client.connect()
    await asyncio.sleep(0.1)
    await server.close()
    await asyncio.wait_for(client.closed.wait(), 5)
    assert not client.connected
    await client.close()


async def test_nothing_listening_is_a_connection_error():
    client = MediaClient(Endpoint("127.0.0.1", 9, "t"))
    with pytest.raises(s2s.ProviderConnectionError, match="media channel"):
        await client.connect()
