"""Stalled clients against a real server: a real uvicorn serving stream sockets from a real
:class:`SubscriptionHub` on a real redis-server, real WebSocket clients, some of which stop
reading. The stalled ones are cut off with 4408 once past the outbound budget and resume with
``last_seq``; the healthy ones lose nothing; the server's queued bytes stay bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import AsyncIterator

import psutil
import pytest
import uvicorn
import websockets
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from deployments.api import parse_audio_frame
from deployments.outbound import send_events
from s2s.service.eventlog import EventLog
from s2s.service.subscribe import SubscriptionHub

pytestmark = [pytest.mark.fault, pytest.mark.timeout(90)]

BUDGET = 256 * 1024
STALL_S = 2.0
SESSIONS = 5
STALLED_PER_SESSION = 2
HEALTHY_PER_SESSION = 8
ENVELOPES = 300
AUDIO = bytes(9600)  # 200 ms of 24 kHz PCM16
PACE_S = 0.02  # 10x real time


@contextlib.asynccontextmanager
async def serving(hub: SubscriptionHub) -> AsyncIterator[str]:
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        sid = websocket.path_params["sid"]
        last = int(websocket.query_params.get("last_seq", "0"))
        if await send_events(websocket, hub, sid, last, max_bytes=BUDGET, stall_s=STALL_S):
            await websocket.close(1000)

    app = Starlette(routes=[WebSocketRoute("/s/{sid}", stream)])
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    # A small send buffer on the listening socket (accepted sockets inherit it): otherwise the
    # kernel's autotuning absorbs up to tcp_wmem's maximum (4 MiB) per stalled socket before
    # the server's writes block, and the test would have to push that much first.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[listener]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def seq_of(message: str | bytes) -> tuple[int, bool]:
    """(seq, whether it is session_closed) of one message from the server."""
    if isinstance(message, bytes):
        return parse_audio_frame(message)[0], False
    event = json.loads(message)
    return int(event["seq"]), event["type"] == "session_closed"


async def read_until_closed(base: str, sid: str, seqs: list[int]) -> int:
    """Read (reconnecting with ``last_seq`` after each cut) until ``session_closed``;
    returns how many times the server cut the client off with 4408."""
    cuts = 0
    while True:
        url = f"{base}/s/{sid}?last_seq={seqs[-1] if seqs else 0}"
        async with websockets.connect(url, max_size=None) as ws:
            try:
                async for message in ws:
                    seq, closed = seq_of(message)
                    seqs.append(seq)
                    if closed:
                        return cuts
            except websockets.ConnectionClosed:
                pass
            if ws.close_code == 4408:
                cuts += 1


class StalledClient:
    """A WebSocket client that, after its handshake, reads nothing until told to (a raw socket
    with a tiny receive buffer, so the server's writes back up at once), then reads everything
    that reached it: the events, and the close code if a close frame got through."""

    def __init__(self, base: str, sid: str) -> None:
        host, port = base.removeprefix("ws://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /s/{sid} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        self.sock.settimeout(10)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1)
        assert self.buffer.startswith(b"HTTP/1.1 101"), self.buffer
        self.buffer = b""

    def read_all(self) -> tuple[list[int], int]:
        """(seqs received, close code or 1006 if the connection just ended)."""
        self.sock.settimeout(10)
        while chunk := self.sock.recv(65536):
            self.buffer += chunk
        self.sock.close()
        seqs, code, data = [], 1006, memoryview(self.buffer)
        while len(data) >= 2:
            opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
            if length == 126:
                length, start = struct.unpack_from("!H", data, 2)[0], 4
            elif length == 127:
                length, start = struct.unpack_from("!Q", data, 2)[0], 10
            if len(data) < start + length:
                break  # cut off mid-frame
            payload = bytes(data[start : start + length])
            if opcode == 8:
                code = struct.unpack_from("!H", payload)[0] if payload else 1005
                break
            seqs.append(seq_of(payload if opcode == 2 else payload.decode())[0])
            data = data[start + length :]
        return seqs, code


async def publish(redis: Redis, sid: str) -> None:
    log = EventLog(redis, sid, max_events=10_000, ttl_s=120)
    for n in range(ENVELOPES):
        log.publish("audio_output", {"audio": AUDIO, "item_id": f"i{n // 25}"})
        await asyncio.sleep(PACE_S)
    log.publish("session_closed", {"reason": "completed"})
    await log.flush()


async def test_stalled_clients_are_cut_off_and_resume_while_healthy_ones_lose_nothing(
    redis: Redis,
) -> None:
    hub = SubscriptionHub(redis)
    process = psutil.Process(os.getpid())
    try:
        async with serving(hub) as base:
            sids = [f"slow{n}" for n in range(SESSIONS)]
            healthy = {(sid, k): list[int]() for sid in sids for k in range(HEALTHY_PER_SESSION)}
            readers = [
                asyncio.create_task(read_until_closed(base, sid, seqs))
                for (sid, _), seqs in healthy.items()
            ]
            stalled = [
                (sid, await asyncio.to_thread(StalledClient, base, sid))
                for sid in sids
                for _ in range(STALLED_PER_SESSION)
            ]
            rss_before = process.memory_info().rss
            most_queued = 0
            publishers = asyncio.gather(*(publish(redis, sid) for sid in sids))
            began = time.monotonic()
            while not publishers.done():
                most_queued = max(most_queued, hub.queued_bytes())
                await asyncio.sleep(0.05)
            await publishers
            took = time.monotonic() - began
            rss_growth = process.memory_info().rss - rss_before
            healthy_cuts = await asyncio.gather(*readers)

            # the stalled clients wake up: what they had is kept, the rest comes on resuming
            stalled_seqs: list[list[int]] = []
            stalled_cuts = 0
            for sid, client in stalled:
                seqs, cut = await asyncio.to_thread(client.read_all)
                stalled_cuts += cut == 4408
                assert cut in (4408, 1006), (
                    f"a stalled client was closed with {cut} after {len(seqs)}"
                )
                assert not seqs or seqs[-1] < ENVELOPES + 1, "a stalled client got everything"
                await read_until_closed(base, sid, seqs)
                stalled_seqs.append(seqs)
    finally:
        await hub.close()

    expected = list(range(1, ENVELOPES + 2))
    for seqs in [*healthy.values(), *stalled_seqs]:
        assert seqs == expected
    assert healthy_cuts == [0] * len(healthy_cuts)
    stalled_count = SESSIONS * STALLED_PER_SESSION
    print(
        f"\n{stalled_count} stalled + {len(healthy)} healthy clients, {ENVELOPES} audio events"
        f" of {len(AUDIO)} B per session over {took:.1f} s: at most {most_queued / 1024:.0f} KiB"
        f" queued in the hub (budget {BUDGET // 1024} KiB per socket), process RSS"
        f" +{rss_growth / 2**20:.1f} MiB; {stalled_cuts} of {stalled_count} stalled clients"
        " got the 4408 close frame (the others' was stuck behind their full buffers)"
    )
    assert most_queued <= stalled_count * BUDGET + len(healthy) * 64 * 1024


async def test_a_quiet_sse_feed_stays_open_with_keep_alive_comments(redis: Redis) -> None:
    from deployments.streams import StreamRelay
    from s2s.service.config import ServiceConfig
    from s2s.service.metrics import Metrics

    config = ServiceConfig.model_validate({"serve": {"sse_keepalive_s": 0.2}})
    hub = SubscriptionHub(redis)
    relay = StreamRelay(config, None, hub, Metrics())  # type: ignore[arg-type]  # SSE: no router
    log = EventLog(redis, "quiet-sse", max_events=100, ttl_s=60)
    lines: list[str] = []
    try:
        feed = relay.sse("quiet-sse", 0, audio=False)
        async with asyncio.timeout(10):
            async for chunk in feed:
                lines.append(chunk)
                if chunk.startswith("id: "):
                    if "event: session_closed" in chunk:
                        break
                    log.publish("session_closed", {"reason": "completed"})
                elif chunk == ": keep-alive\n\n" and lines.count(chunk) == 5:
                    log.publish("transcript", {"text": "after a quiet spell"})
            await feed.aclose()
    finally:
        await hub.close()
    assert lines[0] == ": connected\n\n"
    assert lines.count(": keep-alive\n\n") >= 5
    events = [line for line in lines if line.startswith("id: ")]
    assert [e.split("\n")[1] for e in events] == ["event: transcript", "event: session_closed"]
