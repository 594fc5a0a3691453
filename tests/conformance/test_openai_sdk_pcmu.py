"""Conformance of ``audio/pcmu`` sessions with the official ``openai`` SDK.

* The SDK's realtime client asks the emulator for G.711 mu-law both ways, speaks mu-law and gets
  mu-law deltas back, parsed by the SDK's own types.
* Our client's mu-law session (audio turn, barge-in with truncation) sends only valid GA client
  events, and the emulator answers it with valid GA server events and no errors.
"""

from __future__ import annotations

import base64
import json

import pytest
from openai import AsyncOpenAI

import s2s
from s2s import EventType
from s2s.audio import pcm16_to_ulaw
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY, openai_config
from ..helpers import audio_ms, collect, turn_end, utterance
from .test_openai_sdk import CLIENT, PRODUCTION_EXTRAS, SERVER, _sdk_events_until, assert_valid

pytestmark = pytest.mark.conformance

PCMU = {"type": "audio/pcmu"}


async def test_sdk_runs_a_mu_law_audio_turn_against_the_emulator() -> None:
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=8.0) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.session.update(
                session={
                    "type": "realtime",
                    "audio": {"input": {"format": PCMU}, "output": {"format": PCMU}},
                }
            )
            updated = await conn.recv()
            assert updated.type == "session.updated"
            mulaw = pcm16_to_ulaw(utterance(1.5, 8000))
            for i in range(0, len(mulaw), 1600):
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(mulaw[i : i + 1600]).decode()
                )
            events = await _sdk_events_until(conn, "response.done")
    assert "input_audio_buffer.speech_stopped" in [e.type for e in events]
    deltas = [base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"]
    assert sum(map(len, deltas)) > 4000  # more than half a second of 8 kHz mu-law
    done = events[-1]
    assert done.response.status == "completed"
    assert done.response.audio.output.format.type == "audio/pcmu"


async def test_our_mu_law_session_speaks_valid_ga_events_both_ways() -> None:
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=4.0) as emulator:
        config = openai_config(emulator, sample_rate=8000, audio_format="pcmu")
        async with await s2s.new("openai_realtime", config).start() as session:
            mulaw = pcm16_to_ulaw(utterance(1.2, 8000))
            for i in range(0, len(mulaw), 160):
                await session.send_audio(mulaw[i : i + 160])
            await collect(session, turn_end())
            await session.send_text("tell me about the weather")
            received: list[s2s.SessionEvent] = []

            def some_audio(event: s2s.SessionEvent) -> bool:
                received.append(event)
                return audio_ms(received) >= 200

            events = await collect(session, some_audio)
            item = next(e.item_id for e in events if e.type is EventType.AUDIO_OUTPUT)
            assert item is not None
            session.report_playback(item, 100)
            await session.interrupt()
            await session.send_text("thanks")
            await collect(session, turn_end())
    sent = [json.loads(f) for s in emulator.sessions for f in s.frames_in]
    assert {"session.update", "input_audio_buffer.append", "conversation.item.truncate"} <= {
        m["type"] for m in sent
    }
    for message in sent:
        assert_valid(CLIENT, message)
    received_frames = [m for s in emulator.sessions for m in s.frames_out]
    for message in received_frames:
        assert_valid(SERVER, message, frozenset(PRODUCTION_EXTRAS))
    assert [m for m in received_frames if m["type"] == "error"] == []
