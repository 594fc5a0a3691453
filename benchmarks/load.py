"""The load for the session benchmark: the emulator in its own process, and the callers.

Every caller streams 20 ms PCM16 frames (phone calls: 8 kHz μ-law) in real time (2 s of speech,
1.5 s of silence, over and over, each at its own phase); a :class:`Pacer` sends every caller's
next frame on one tick. Each caller's session gets instructions that name it
(:func:`caller_name`), which is how the emulator's per-session records (the
``time.monotonic()`` of every append received and every audio delta sent) are matched to the
caller's own stamps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
import websockets

from s2s.audio import pcm16_to_ulaw
from s2s.audio.synth import silence, speech_like
from s2s.config import Config
from s2s.providers.openai_realtime import resolve
from s2s.providers.openai_realtime.wire import audio_append, dumps

NATIVE_RATE = 24000  # the provider's rate: what the floor's callers send
KEY = "sk-bench-0000"

#: What the emulator recorded for one session: (instructions, append times, delta times by item).
Record = tuple[str, list[float], dict[str, list[float]]]
#: The audio the emulator sent one session (record mode): (instructions, delta payloads by item).
AudioRecord = tuple[str, dict[str, list[bytes]]]


def caller_name(index: int) -> str:
    """The instructions each caller's session gets: how the emulator's records name it."""
    return f"bench caller {index}"


# -- the emulator, in its own process ------------------------------------------------------------


def _sent_audio(frames_out: list[dict[str, Any]]) -> dict[str, list[bytes]]:
    """Each item's audio deltas (decoded), in the order they were sent."""
    by_item: dict[str, list[bytes]] = {}
    for event in frames_out:
        if event.get("type") == "response.output_audio.delta":
            by_item.setdefault(event["item_id"], []).append(base64.b64decode(event["delta"]))
    return by_item


def _emulator_process(conn: Connection, speed: float, record: bool) -> None:
    from s2s.emulators.openai import OpenAIEmulator

    async def main() -> None:
        async with OpenAIEmulator(api_key=KEY, speed=speed, timing=True, record=record) as emulator:
            conn.send(emulator.url)
            while True:
                command = await asyncio.to_thread(conn.recv)
                if command == "dump":
                    conn.send(
                        [
                            (str(s.session.get("instructions")), s.append_times, s.delta_times)
                            for s in emulator.sessions
                        ]
                    )
                elif command == "names":  # whose sessions are configured so far
                    conn.send([str(s.session.get("instructions")) for s in emulator.sessions])
                elif command == "audio":
                    conn.send(
                        [
                            (str(s.session.get("instructions")), _sent_audio(s.frames_out))
                            for s in emulator.sessions
                        ]
                    )
                elif command == "reset":
                    emulator.sessions.clear()
                    conn.send("ok")
                else:
                    return

    asyncio.run(main())


class EmulatorProcess:
    """The OpenAI emulator in its own process. ``record``: keep every frame, so that
    :meth:`audio` can return the audio each session was sent."""

    def __init__(self, speed: float, *, record: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_emulator_process, args=(child, speed, record), daemon=True
        )

    @property
    def pid(self) -> int:
        assert self.process.pid is not None, "the emulator process is not started"
        return self.process.pid

    def start(self) -> str:
        self.process.start()
        url: str = self.conn.recv()
        return url

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def dump(self) -> list[Record]:
        self.conn.send("dump")
        records: list[Record] = self.conn.recv()
        return records

    def names(self) -> list[str]:
        """The instructions of every session so far (set once its ``session.update`` came)."""
        self.conn.send("names")
        names: list[str] = self.conn.recv()
        return names

    def audio(self) -> list[AudioRecord]:
        """Every session's audio deltas by item (only with ``record``)."""
        self.conn.send("audio")
        records: list[AudioRecord] = self.conn.recv()
        return records

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(10)


# -- callers ---------------------------------------------------------------------------------------


@dataclass
class Caller:
    index: int
    sent: list[float] = field(default_factory=list)  # monotonic time of each frame sent
    received: list[tuple[str, float]] = field(default_factory=list)  # (item id, time)
    errors: list[str] = field(default_factory=list)


def caller_audio(rate: int) -> bytes:
    return speech_like(2.0, rate, seed=11) + silence(1.5, rate)


class Pacer:
    """Sends every caller's next 20 ms frame on one tick (one wakeup per tick for all callers).

    On this kind of VM a process wakeup costs ~0.2 ms of CPU; N callers each sleeping 20 ms
    would cost the load generator as much CPU as the system under test. A telephony gateway
    batches its media the same way.
    """

    def __init__(self, seconds: float, expected: int, rate: int, *, ulaw: bool = False) -> None:
        """``ulaw``: frames are G.711 μ-law (``rate`` must be 8000), not PCM16."""
        if ulaw and rate != 8000:
            raise ValueError(f"Pacer: μ-law frames are 8000 Hz, not {rate}")
        self.seconds = seconds
        self.rate = rate
        self.ulaw = ulaw
        self.expected = expected
        self.start = 0.0
        self.members: list[tuple[Caller, Any, list[bytes]]] = []
        self.joined = asyncio.Event()
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    def join(self, caller: Caller, send: Any) -> None:
        pattern = caller_audio(self.rate)
        size = self.rate // 50 * 2  # 20 ms of PCM16
        if self.ulaw:
            pattern, size = pcm16_to_ulaw(pattern), self.rate // 50
        frames = [pattern[i : i + size] for i in range(0, len(pattern) - size + 1, size)]
        phase = (caller.index * 37) % len(frames)  # independent calls do not speak in lockstep
        self.members.append((caller, send, frames[phase:] + frames[:phase]))
        if len(self.members) + self.failed >= self.expected:
            self.joined.set()

    failed = 0

    def give_up(self) -> None:
        """A caller could not connect; do not wait for it."""
        self.failed += 1
        if len(self.members) + self.failed >= self.expected:
            self.joined.set()

    async def run(self) -> None:
        await asyncio.wait_for(self.joined.wait(), 300)
        self.start = time.monotonic() + 0.5  # every caller streams for the same time
        self.started.set()
        for k in range(int(self.seconds * 50)):
            delay = self.start + k * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for caller, send, frames in list(self.members):
                frame = frames[k % len(frames)]
                caller.sent.append(time.monotonic())
                try:
                    await send(frame)
                except Exception as exc:
                    caller.errors.append(f"send: {exc!r}")
                    self.members.remove((caller, send, frames))
        self.done.set()


async def direct_caller(url: str, caller: Caller, pacer: Pacer) -> None:
    """The floor: our protocol's messages, sent straight to the emulator (``audio/pcmu`` both
    ways when the pacer sends μ-law, as a phone call's session does)."""
    config = Config(
        extra={"api_key": KEY},
        instructions=caller_name(caller.index),
        sample_rate=8000 if pacer.ulaw else NATIVE_RATE,
        audio_format="pcmu" if pacer.ulaw else "pcm16",
    )
    settings = resolve(config)
    session = settings.session_config()
    async with websockets.connect(
        url + "?model=gpt-realtime",
        max_size=None,
        compression=None,
        additional_headers={"Authorization": f"Bearer {KEY}"},
    ) as ws:
        await ws.recv()
        await ws.send(dumps({"type": "session.update", "session": session}))
        while json.loads(await ws.recv())["type"] != "session.updated":
            pass

        async def receive() -> None:
            async for message in ws:
                if '"response.output_audio.delta"' in message[:60]:
                    event = json.loads(message)
                    caller.received.append((event["item_id"], time.monotonic()))

        reader = asyncio.create_task(receive())

        async def send(frame: bytes) -> None:
            await ws.send(audio_append(frame))

        pacer.join(caller, send)
        await pacer.done.wait()
        await asyncio.sleep(1.5)
        reader.cancel()


async def service_caller(base: str, api_key: str, caller: Caller, pacer: Pacer) -> None:
    """Through the service: REST create, WebSocket stream, close."""
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"sample_rate": pacer.rate, "tools": [], "instructions": caller_name(caller.index)}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        reply = await http.post("/v1/sessions", json=body)
        if reply.status_code != 201:
            caller.errors.append(f"create: HTTP {reply.status_code} {reply.text[:200]}")
            pacer.give_up()
            return
        session = reply.json()
        async with websockets.connect(
            session["stream_url"], additional_headers=headers, max_size=None, compression=None
        ) as ws:

            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, bytes):
                        length = message[8]
                        item = message[9 : 9 + length].decode()
                        caller.received.append((item, time.monotonic()))

            reader = asyncio.create_task(receive())
            pacer.join(caller, ws.send)
            await pacer.done.wait()
            await asyncio.sleep(1.5)
            reader.cancel()
        await http.delete(f"/v1/sessions/{session['session_id']}")
