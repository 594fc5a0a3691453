"""Conformance with the official ``openai`` SDK's GPT-Live client (``client.live.connect()``).

The SDK is an independent client of the emulator: a spoken turn, a delegated tool round trip
(Responses delegation) and the caller's transcript, then ``session.close``. Every frame the
emulator sends validates against ``openai.types.live.ServerEvent`` and every frame the SDK sends
against ``ClientEvent``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.live import ClientEvent, ServerEvent
from pydantic import TypeAdapter

import s2s
from s2s import EventType, ToolResult
from s2s.audio.synth import silence
from s2s.emulators.openai_live import LiveEmulator

from ..conftest import OPENAI_KEY, SECOND
from ..helpers import LOOKUP, collect, stream, turn_end, utterance, voiced

pytestmark = pytest.mark.conformance

CLIENT = TypeAdapter(ClientEvent)
SERVER = TypeAdapter(ServerEvent)
RATE = 24000
CHUNK = RATE * 2 // 10  # 100 ms


def assert_frames_valid(emulator: LiveEmulator) -> None:
    for session in emulator.sessions:
        for frame in session.frames_out:
            SERVER.validate_python(frame)
        for raw in session.frames_in:
            CLIENT.validate_python(json.loads(raw))


async def append(conn: Any, pcm: bytes) -> None:
    for i in range(0, len(pcm), CHUNK):
        await conn.session.input_audio.append(audio=base64.b64encode(pcm[i : i + CHUNK]).decode())


async def events_until(conn: Any, done: Any) -> list[Any]:
    events: list[Any] = []
    async with asyncio.timeout(10 * SECOND):
        while True:
            event = await conn.recv()
            events.append(event)
            if done(event, events):
                return events


def text_of(events: list[Any], kind: str) -> str:
    return "".join(e.delta for e in events if e.type == kind)


async def test_sdk_spoken_turn_with_transcripts_and_close():
    async with LiveEmulator(api_key=OPENAI_KEY, record=True) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.live.connect() as conn:
            await conn.session.start(
                session={
                    "model": "gpt-live-1",
                    "audio": {"format": {"type": "audio/pcm", "rate": RATE}},
                    "delegation": {"type": "client"},
                },
                event_id="c1",
            )
            started = await conn.recv()
            assert started.type == "session.started" and started.client_event_id == "c1"
            assert started.session.id.startswith("live_") and started.session.status == "active"
            sent = utterance(1.5, RATE) + silence(4.0, RATE)
            await append(conn, sent)
            expected = f"I heard {voiced(1.5, RATE):.1f} seconds of speech."
            events = await events_until(
                conn,
                lambda _, evs: text_of(evs, "session.output_transcript.delta") == expected,
            )
            await conn.session.close()
            closed = await events_until(conn, lambda e, _: e.type == "session.closed")
    assert closed[-1].reason == "close_requested" and closed[-1].usage.seconds > 0
    heard = text_of(events, "session.input_transcript.delta")
    assert heard == f"[{voiced(1.5, RATE):.1f} seconds of speech]"
    fragments = [e for e in events if e.type == "session.output_transcript.delta"]
    assert len(fragments) > 3 and all(f.end_ms > f.start_ms for f in fragments)
    assert all(f.delta.startswith(" ") for f in fragments[1:])
    audio = b"".join(
        base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta"
    )
    assert 0 < len(audio) <= len(sent) and any(audio)  # speech, paced by the input
    assert_frames_valid(emulator)


async def test_sdk_delegated_tool_round_trip():
    async with LiveEmulator(
        api_key=OPENAI_KEY, record=True, utterances=['call lookup_order {"order_id": "Q7"}']
    ) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.live.connect() as conn:
            await conn.session.start(
                session={
                    "model": "gpt-live-1",
                    "delegation": {
                        "type": "responses",
                        "responses": {
                            "model": "gpt-5.6-luna",
                            "tools": [
                                {
                                    "type": "function",
                                    "name": LOOKUP.name,
                                    "description": LOOKUP.description,
                                    "parameters": dict(LOOKUP.parameters),
                                }
                            ],
                        },
                    },
                }
            )
            assert (await conn.recv()).type == "session.started"
            await append(conn, utterance(1.2, RATE) + silence(0.5, RATE))

            def call_done(event: Any, _: Any) -> bool:
                inner = event.event if event.type == "response.event" else {}
                return inner.get("type") == "response.completed"

            events = await events_until(conn, call_done)
            created = next(e for e in events if e.type == "session.delegation.created")
            assert created.delegation.target == "responses"
            calls = [
                e.event["item"]
                for e in events
                if e.type == "response.event" and e.event["type"] == "response.output_item.done"
            ]
            assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
                ("lookup_order", {"order_id": "Q7"})
            ]
            assert all(
                e.delegation_id == created.delegation.id
                for e in events
                if e.type == "response.event"
            )
            # A response.create before every call has its output is refused.
            await conn.response.create(event_id="early")
            refused = await events_until(conn, lambda e, _: e.type == "error")
            assert refused[-1].error.client_event_id == "early"
            await conn.response.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": calls[0]["call_id"],
                    "output": '{"status": "shipped"}',
                }
            )
            await conn.response.create()
            await append(conn, silence(4.0, RATE))
            expected = 'The lookup_order tool returned {"status": "shipped"}.'
            events = await events_until(
                conn, lambda _, evs: text_of(evs, "session.output_transcript.delta") == expected
            )
            await conn.session.close()
            await events_until(conn, lambda e, _: e.type == "session.closed")
    assert_frames_valid(emulator)


async def test_our_client_frames_are_sdk_client_events():
    async with LiveEmulator(
        api_key=OPENAI_KEY, record=True, utterances=['call lookup_order {"order_id": "B2"}']
    ) as emulator:
        config = s2s.Config(
            instructions="Be brief.",
            tools=[LOOKUP],
            extra={"api_key": OPENAI_KEY, "base_url": emulator.url},
        )
        async with await s2s.new("openai_live", config).start() as session:
            await session.send_text("The caller prefers email.")
            await stream(session, utterance(1.0, RATE) + silence(0.5, RATE), RATE, chunk_ms=100)
            events = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
            await session.send_tool_result(ToolResult(events[-1].tool_call.id, '"shipped"'))
            await stream(session, silence(4.0, RATE), RATE, chunk_ms=100)
            await collect(session, turn_end())
    kinds = {json.loads(f)["type"] for f in emulator.sessions[0].frames_in}
    assert kinds >= {
        "session.start",
        "session.input_audio.append",
        "session.thinking.append",
        "response.item.create",
        "response.create",
        "session.close",
    }
    assert_frames_valid(emulator)
