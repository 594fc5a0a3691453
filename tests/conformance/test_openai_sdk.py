"""Conformance with the official ``openai`` SDK (the independent oracle for the GA protocol).

* The SDK's realtime client runs an audio turn and a tool round trip against the emulator.
* Every frame our client sends validates against ``openai.types.realtime.RealtimeClientEvent``
  with no unknown keys; every frame the emulator sends validates against ``RealtimeServerEvent``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

import s2s
from s2s import EventType, ToolResult
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY, openai_config
from ..helpers import LOOKUP, collect, stream, turn_end, utterance

pytestmark = pytest.mark.conformance

CLIENT = TypeAdapter(RealtimeClientEvent)
SERVER = TypeAdapter(RealtimeServerEvent)


def unknown_keys(model: Any, path: str = "$") -> list[str]:
    """Keys the SDK models do not declare (they allow extras, so we look ourselves)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{key}" for key in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += unknown_keys(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            found += unknown_keys(item, f"{path}[{i}]")
    return found


#: Keys production sends that the SDK's types do not declare (protocols.md §1.2 capture:
#: ``session.created``/``updated`` carry the response-shaped session with id, object, expiry).
PRODUCTION_EXTRAS = {"$.session.id", "$.session.object", "$.session.expires_at"}


def assert_valid(
    adapter: TypeAdapter[Any], message: dict[str, Any], allowed: frozenset[str] = frozenset()
) -> None:
    parsed = adapter.validate_python(message)
    extra = set(unknown_keys(parsed)) - allowed
    assert not extra, (message["type"], sorted(extra))


async def _sdk_events_until(conn: Any, kind: str) -> list[Any]:
    events = []
    async with asyncio.timeout(10):
        async for event in conn:
            events.append(event)
            if event.type == kind:
                return events
    raise AssertionError(f"no {kind}")


async def test_sdk_runs_an_audio_turn_against_the_emulator():
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=8.0) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            await conn.session.update(
                session={
                    "type": "realtime",
                    "instructions": "be brief",
                    "audio": {
                        "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
                        "output": {"voice": "marin"},
                    },
                }
            )
            assert (await conn.recv()).type == "session.updated"
            pcm = utterance(1.5, 24000)
            for i in range(0, len(pcm), 9600):
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(pcm[i : i + 9600]).decode()
                )
            events = await _sdk_events_until(conn, "response.done")
    kinds = [e.type for e in events]
    for expected in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
        "response.output_audio.delta",
        "response.output_audio_transcript.done",
    ):
        assert expected in kinds
    transcript = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert transcript.transcript.startswith("I heard ")
    audio = b"".join(
        base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
    )
    assert len(audio) > 24000  # more than half a second of 24 kHz speech
    assert events[-1].response.status == "completed"
    assert events[-1].response.usage.total_tokens > 0


async def test_sdk_runs_a_tool_round_trip_against_the_emulator():
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=8.0) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.session.update(
                session={
                    "type": "realtime",
                    "tools": [
                        {
                            "type": "function",
                            "name": "lookup_order",
                            "description": "status",
                            "parameters": dict(LOOKUP.parameters),
                        }
                    ],
                }
            )
            await conn.recv()
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": 'call lookup_order {"order_id": "Q7"}'}
                    ],
                }
            )
            await conn.response.create()
            events = await _sdk_events_until(conn, "response.done")
            call = next(e for e in events if e.type == "response.function_call_arguments.done")
            assert call.name == "lookup_order" and json.loads(call.arguments) == {"order_id": "Q7"}
            await conn.conversation.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": '{"status": "packed"}',
                }
            )
            await conn.response.create()
            events = await _sdk_events_until(conn, "response.done")
    done = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert done.transcript == 'The lookup_order tool returned {"status": "packed"}.'


async def _exercise_our_client(emulator: OpenAIEmulator) -> None:
    """Make our client send every kind of message it can send."""
    engine = s2s.new(
        "openai_realtime",
        openai_config(
            emulator,
            tools=[LOOKUP],
            instructions="help",
            voice="cedar",
            extra={"noise_reduction": "near_field", "max_output_tokens": 512, "speed": 1.1},
        ),
    )
    async with await engine.start() as session:
        await stream(session, utterance(1.0, 16000), 16000)
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "A1"}')
        events = await collect(session, turn_end("tool_calls"))
        call = next(e.tool_call for e in events if e.type is EventType.TOOL_CALL)
        await session.send_tool_result(ToolResult(call.id, "lost", is_error=True))
        await collect(session, lambda e: e.type is EventType.AUDIO_OUTPUT)
        await asyncio.sleep(0.05)
        await session.interrupt()  # response.cancel + truncate
        await collect(session, turn_end("cancelled"))
        await session.send_text("hello")
        first = await collect(session, lambda e: e.type is EventType.AUDIO_OUTPUT)
        session.report_playback(first[-1].item_id, 0)
        await session.interrupt()  # delete
        await collect(session, turn_end("cancelled"))
        emulator.drop_connections()  # the replay after a reconnect
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("recall")
        await collect(session, turn_end())
    manual = s2s.new(
        "openai_realtime",
        openai_config(
            emulator,
            extra={
                "turn_detection": "none",
                "transcription_model": None,
                "output_modalities": "text",
            },
        ),
    )
    async with await manual.start() as session:
        await stream(session, utterance(0.5, 24000, pause=0.1), 24000)
        await session.end_turn()
        await collect(session, turn_end())
    semantic = s2s.new(
        "openai_realtime",
        openai_config(emulator, extra={"turn_detection": "semantic_vad", "eagerness": "high"}),
    )
    async with await semantic.start() as session:
        await session.send_text("hi")
        await collect(session, turn_end())


async def test_every_message_our_client_sends_is_a_valid_ga_client_event():
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=4.0) as emulator:
        await _exercise_our_client(emulator)
    sent = [json.loads(f) for s in emulator.sessions for f in s.frames_in]
    kinds = {m["type"] for m in sent}
    assert kinds >= {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "conversation.item.create",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
    }
    for message in sent:
        assert_valid(CLIENT, message)
    errors = [m for s in emulator.sessions for m in s.frames_out if m["type"] == "error"]
    assert errors == []  # and the emulator found nothing to refuse


async def test_every_message_the_emulator_sends_is_a_valid_ga_server_event():
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=4.0) as emulator:
        await _exercise_our_client(emulator)
        await _provoke_server_errors(emulator)
        handshake = await _handshake_errors(emulator)
    received = [m for s in emulator.sessions for m in s.frames_out] + handshake
    kinds = {m["type"] for m in received}
    assert len(kinds) >= 25, sorted(kinds)
    for message in received:
        assert_valid(SERVER, message, frozenset(PRODUCTION_EXTRAS))


async def _provoke_server_errors(emulator: OpenAIEmulator) -> None:
    async with websockets.connect(
        emulator.url + "?model=gpt-realtime",
        additional_headers={"Authorization": f"Bearer {OPENAI_KEY}"},
    ) as ws:
        await ws.recv()
        for message in (
            {"type": "nope"},
            {"type": "response.cancel"},
            {"type": "session.update", "session": {"type": "realtime", "x": 1}},
            {"type": "input_audio_buffer.commit"},
            {"type": "conversation.item.retrieve", "item_id": "missing"},
            {"type": "input_audio_buffer.clear"},
        ):
            await ws.send(json.dumps(message))
            await ws.recv()
        await ws.send(b"binary")
        await ws.recv()


async def _handshake_errors(emulator: OpenAIEmulator) -> list[dict[str, Any]]:
    out = []
    for headers, query in (
        ({}, "?model=gpt-realtime"),
        ({"Authorization": "Bearer wrong"}, "?model=gpt-realtime"),
        (
            {"Authorization": f"Bearer {OPENAI_KEY}", "OpenAI-Beta": "realtime=v1"},
            "?model=gpt-realtime",
        ),
        ({"Authorization": f"Bearer {OPENAI_KEY}"}, ""),
        ({"Authorization": f"Bearer {OPENAI_KEY}"}, "?model=gpt-5-voice"),
    ):
        async with websockets.connect(emulator.url + query, additional_headers=headers) as ws:
            out.append(json.loads(await ws.recv()))
    return out
