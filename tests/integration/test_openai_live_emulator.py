"""The GPT-Live emulator as a raw WebSocket client sees it: validation, timeline, delegation,
faults. Every frame it sends validates against ``openai.types.live.ServerEvent``."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets
from openai.types.live import ServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect

from s2s.audio import pcm16_to_ulaw
from s2s.audio.synth import silence, speech_like
from s2s.emulators.openai_live import LiveEmulator

from ..conftest import OPENAI_KEY, SECOND
from ..helpers import utterance, voiced

SERVER = TypeAdapter(ServerEvent)
HEADERS = {"Authorization": f"Bearer {OPENAI_KEY}"}
RATE = 24000


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5 * SECOND):
        event = json.loads(await ws.recv())
    SERVER.validate_python(event)
    return event


async def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await recv(ws))
        if events[-1]["type"] == kind:
            return events


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def start(ws: ClientConnection, **session: Any) -> dict[str, Any]:
    await send(ws, {"type": "session.start", "session": {"model": "gpt-live-1", **session}})
    return await recv(ws)


async def append(ws: ClientConnection, pcm: bytes, chunk: int = 4800) -> int:
    for i in range(0, len(pcm), chunk):
        audio = base64.b64encode(pcm[i : i + chunk]).decode()
        await send(ws, {"type": "session.input_audio.append", "audio": audio})
    return -(-len(pcm) // chunk)


async def exchange(ws: ClientConnection, pcm: bytes, chunk: int = 4800) -> list[dict[str, Any]]:
    """Append ``pcm``, then read until the timeline has caught up with it (one output delta per
    input chunk) and the events that chunk caused."""
    chunks = await append(ws, pcm, chunk)
    events: list[dict[str, Any]] = []
    deltas = 0
    while deltas < chunks:
        events.append(await recv(ws))
        deltas += events[-1]["type"] == "session.output_audio.delta"
    await send(ws, {"type": "session.input_audio.mute", "event_id": "sync"})
    events += await until(ws, "session.input_audio.muted")
    await send(ws, {"type": "session.input_audio.unmute"})
    await until(ws, "session.input_audio.unmuted")
    return events


def said(events: list[dict[str, Any]], kind: str = "session.output_transcript.delta") -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


@pytest.fixture
async def emulator():
    async with LiveEmulator(api_key=OPENAI_KEY, record=True) as em:
        yield em


async def test_start_is_strict_and_first(emulator):
    async with connect(emulator.url, additional_headers=HEADERS) as ws:
        await send(ws, {"type": "session.input_audio.append", "audio": ""})
        assert (await recv(ws))["error"]["code"] == "session_not_started"
        refused = await start(ws, temperature=0.7)
        assert refused["error"]["code"] == "unknown_parameter"
        assert refused["error"]["param"] == "session.temperature"
        assert (await start(ws, model="gpt-realtime"))["error"]["code"] == "invalid_model"
        assert (await start(ws, model="gpt-live-9"))["error"]["code"] == "model_not_found"
        await send(
            ws, {"type": "session.start", "event_id": "c1", "session": {"model": "gpt-live-1.1"}}
        )
        started = await recv(ws)
        assert started["type"] == "session.started" and started["client_event_id"] == "c1"
        session = started["session"]
        assert session["id"].startswith("live_") and session["status"] == "active"
        assert session["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["delegation"] == {"type": "client"}
        await send(ws, {"type": "session.thinking.append", "content": "x"})
        missing = await recv(ws)
        assert missing["error"]["code"] == "missing_required_parameter"
        assert missing["error"]["param"] == "delegation_id"


async def test_wrong_path_and_key():
    async with LiveEmulator(api_key=OPENAI_KEY) as em:
        base = f"ws://{em.host}:{em.port}"
        with pytest.raises(websockets.InvalidStatus):
            async with connect(base + "/v1/realtime", additional_headers=HEADERS):
                pass
        async with connect(em.url, additional_headers={"Authorization": "Bearer nope"}) as ws:
            assert (await recv(ws))["error"]["code"] == "invalid_api_key"
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 3000


async def test_output_follows_input_and_commentary_is_spoken(emulator):
    async with connect(emulator.url, additional_headers=HEADERS) as ws:
        await start(ws)
        await send(
            ws,
            {
                "type": "session.commentary.append",
                "content": "Welcome back.",
                "delegation_id": None,
            },
        )
        ack = await recv(ws)
        assert ack["type"] == "session.commentary.appended" and ack["start_ms"] == 0
        events = await exchange(ws, silence(2.0, RATE))
    audio = [base64.b64decode(e["delta"]) for e in events if "delta" in e and "start_ms" not in e]
    assert [len(a) for a in audio] == [4800] * 20  # each input chunk's duration, no more
    assert said(events) == "Welcome back."
    usage = [e["usage"]["seconds"] for e in events if e["type"] == "session.usage.updated"]
    assert usage == [1.0, 2.0]  # cumulative


async def test_pcmu_session_answers_in_kind(emulator):
    async with connect(emulator.url, additional_headers=HEADERS) as ws:
        await start(ws, audio={"format": {"type": "audio/pcmu", "rate": 8000}})
        events = await exchange(
            ws, pcm16_to_ulaw(utterance(1.0, 8000) + silence(3.0, 8000)), chunk=800
        )
    sizes = {len(base64.b64decode(e["delta"])) for e in events if e["type"].endswith("audio.delta")}
    assert sizes == {800}
    assert said(events, "session.input_transcript.delta").endswith("seconds of speech]")


async def test_client_delegation_is_answered_with_commentary():
    async with (
        LiveEmulator(api_key=OPENAI_KEY, utterances=['call lookup_order {"order_id": "Z"}']) as em,
        connect(em.url, additional_headers=HEADERS) as ws,
    ):
        await start(ws, delegation={"type": "client"})
        events = await exchange(ws, utterance(1.0, RATE) + silence(0.3, RATE))
        created = next(e for e in events if e["type"] == "session.delegation.created")
        assert created["delegation"]["target"] == "client" and "response_id" not in created
        delegation_id = created["delegation"]["id"]
        await send(
            ws,
            {"type": "session.commentary.append", "content": "bad", "delegation_id": "del_x"},
        )
        assert (await until(ws, "error"))[-1]["error"]["param"] == "delegation_id"
        await send(
            ws,
            {
                "type": "session.commentary.append",
                "content": "Order Z shipped.",
                "delegation_id": delegation_id,
            },
        )
        events = await exchange(ws, silence(2.0, RATE))
        assert said(events) == "Order Z shipped."


async def test_responses_delegation_refusals(emulator):
    tools = [{"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}]
    async with connect(emulator.url, additional_headers=HEADERS) as ws:
        await start(
            ws, delegation={"type": "responses", "responses": {"model": "m", "tools": tools}}
        )
        await send(
            ws, {"type": "session.thinking.append", "content": "hi", "delegation_id": "del_1"}
        )
        assert "Responses delegation" in (await recv(ws))["error"]["message"]
        output = {"type": "function_call_output", "call_id": "call_nope", "output": "x"}
        await send(ws, {"type": "response.item.create", "item": output})
        assert "call_nope" in (await recv(ws))["error"]["message"]
        await send(
            ws,
            {
                "type": "session.thinking.append",
                "content": 'call lookup_order {"order_id": "1"}',
                "delegation_id": None,
            },
        )
        events = await exchange(ws, silence(0.1, RATE))
        nested = [e["event"]["type"] for e in events if e["type"] == "response.event"]
        assert nested == [
            "response.created",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed",
        ]
        await send(ws, {"type": "response.create"})
        assert "awaiting output" in (await recv(ws))["error"]["message"]


async def test_long_caller_speech_stops_the_model_short_speech_does_not():
    async with (
        LiveEmulator(api_key=OPENAI_KEY, record=True, barge_in_ms=1000) as em,
        connect(em.url, additional_headers=HEADERS) as ws,
    ):
        await start(ws)
        line = "This is a long answer that takes the model several seconds to say out loud."
        await send(
            ws, {"type": "session.commentary.append", "content": line, "delegation_id": None}
        )
        events = await exchange(
            ws,
            speech_like(0.5, RATE, seed=3)  # short: the model keeps talking
            + silence(0.8, RATE)
            + speech_like(1.5, RATE, seed=4)  # long: the model gives way
            + silence(3.0, RATE),
        )
    spoken = said(events)
    # Cut after the short speech (it ended at 0.5 s), before the line's end; then the answer.
    assert spoken.startswith("This is a long answer that") and "out loud" not in spoken
    assert spoken.endswith(f"I heard {voiced(1.5, RATE, seed=4):.1f} seconds of speech.")


async def test_faults_expiry_content_and_failures():
    async with LiveEmulator(api_key=OPENAI_KEY, session_limit_s=0.2) as em:
        async with connect(em.url, additional_headers=HEADERS) as ws:
            await start(ws)
            closed = (await until(ws, "session.closed"))[-1]
            assert closed["reason"] == "expired"
        em.options.session_limit_s = 3600
        async with connect(em.url, additional_headers=HEADERS) as ws:
            await start(ws)
            await em.end_sessions("content")
            assert (await until(ws, "session.closed"))[-1]["reason"] == "content"
        async with connect(em.url, additional_headers=HEADERS) as ws:
            await start(ws)
            await em.inject_failure("rate_limit_exceeded")
            assert (await recv(ws))["error"]["code"] == "rate_limit_exceeded"
            await em.inject_failure("credit_balance_exhausted")
            err = await recv(ws)
            assert err["error"] == {
                "type": "insufficient_quota",
                "code": "credit_balance_exhausted",
                "message": err["error"]["message"],
            }
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1011
