"""The OpenAI emulator over a raw WebSocket: production close codes, errors and behaviour."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY
from ..helpers import utterance

AUTH = {"Authorization": f"Bearer {OPENAI_KEY}"}


async def recv(ws: Any, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if kind is None or event["type"] == kind:
                return event


async def connect(
    emulator: OpenAIEmulator,
    query: str = "?model=gpt-realtime",
    headers: dict[str, str] | None = None,
) -> Any:
    return await websockets.connect(emulator.url + query, additional_headers=headers or AUTH)


@pytest.mark.parametrize(
    ("headers", "query", "close", "code"),
    [
        ({}, "?model=gpt-realtime", 3000, "missing_api_key"),
        (
            {"Authorization": "Bearer sk-wrong-key-123"},
            "?model=gpt-realtime",
            3000,
            "invalid_api_key",
        ),
        (
            {**AUTH, "OpenAI-Beta": "realtime=v1"},
            "?model=gpt-realtime",
            4000,
            "beta_api_shape_disabled",
        ),
        (AUTH, "", 4000, "missing_model"),
        (AUTH, "?model=gpt-4o-realtime-preview", 4000, "invalid_model"),
    ],
)
async def test_handshake_failures_are_an_error_event_then_a_close(
    openai_emulator, headers, query, close, code
):
    async with websockets.connect(openai_emulator.url + query, additional_headers=headers) as ws:
        event = await recv(ws)
        assert event["type"] == "error" and event["error"]["code"] == code
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == close
    assert info.value.rcvd.reason == f"invalid_request_error.{code}"


async def test_other_paths_are_404(openai_emulator):
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(
            f"ws://127.0.0.1:{openai_emulator.port}/v1/other", additional_headers=AUTH
        )
    assert info.value.response.status_code == 404


async def test_bad_events_get_errors_and_the_socket_stays_open(openai_emulator):
    async with await connect(openai_emulator) as ws:
        created = await recv(ws, "session.created")
        assert created["session"]["type"] == "realtime"
        await ws.send(b"\x00\x01")
        assert (await recv(ws, "error"))["error"]["code"] == "invalid_event"
        await ws.send(json.dumps({"type": "response.audio.delta"}))
        assert (await recv(ws, "error"))["error"]["code"] == "invalid_value"
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "event_id": "ev1",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {"format": {"type": "audio/pcm", "rate": 16000}},
                            "output": {"voice": "cedar"},
                        },
                    },
                }
            )
        )
        error = await recv(ws, "error")
        assert error["error"]["code"] == "integer_below_min_value"
        assert error["error"]["event_id"] == "ev1"
        # the whole update was discarded: the voice did not change either
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        updated = await recv(ws, "session.updated")
        assert updated["session"]["audio"]["output"]["voice"] == "alloy"


async def test_response_races_get_the_production_errors(openai_emulator):
    openai_emulator.options.speed = 1.0
    async with await connect(openai_emulator) as ws:
        await recv(ws, "session.created")
        await ws.send(json.dumps({"type": "response.cancel"}))
        assert (await recv(ws, "error"))["error"]["code"] == "response_cancel_not_active"
        await ws.send(json.dumps({"type": "response.create"}))
        await recv(ws, "response.created")
        await ws.send(json.dumps({"type": "response.create"}))
        error = await recv(ws, "error")
        assert error["error"]["code"] == "conversation_already_has_active_response"
        delta = await recv(ws, "response.output_audio.delta")
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.truncate",
                    "item_id": delta["item_id"],
                    "content_index": 0,
                    "audio_end_ms": 60_000,
                }
            )
        )
        error = await recv(ws, "error")
        assert "is already shorter than 60000ms" in error["error"]["message"]
        await ws.send(json.dumps({"type": "response.cancel"}))
        done = await recv(ws, "response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"


async def test_caller_speech_cancels_the_answer_in_progress(openai_emulator):
    openai_emulator.options.speed = 1.0
    async with await connect(openai_emulator) as ws:
        await recv(ws, "session.created")
        await ws.send(json.dumps({"type": "response.create"}))
        await recv(ws, "response.output_audio.delta")
        pcm = utterance(0.5, 24000, pause=0.0)
        await ws.send(
            json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
            )
        )
        started = await recv(ws, "input_audio_buffer.speech_started")
        assert started["audio_start_ms"] == 0
        done = await recv(ws, "response.done")
        assert done["response"]["status_details"]["reason"] == "turn_detected"


async def test_session_limit_sends_session_expired_and_closes():
    async with OpenAIEmulator(api_key=OPENAI_KEY, session_limit_s=0.3) as emulator:
        async with await connect(emulator) as ws:
            await recv(ws, "session.created")
            error = await recv(ws, "error")
            assert error["error"]["code"] == "session_expired"
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1001


async def test_dropped_connections_see_no_close_frame(openai_emulator):
    async with await connect(openai_emulator) as ws:
        await recv(ws, "session.created")
        assert openai_emulator.drop_connections() == 1
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is None
