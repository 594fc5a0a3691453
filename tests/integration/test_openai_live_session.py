"""Our ``openai_live`` client against the GPT-Live emulator over loopback."""

from __future__ import annotations

import json

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.audio.synth import silence
from s2s.emulators.openai_live import LiveEmulator

from ..conftest import OPENAI_KEY, live_config
from ..helpers import LOOKUP, collect, final_text, kinds, stream, turn_end, utterance, voiced

RATE = 24000


def frames_in(emulator: LiveEmulator, index: int = -1) -> list[dict]:
    return [json.loads(f) for f in emulator.sessions[index].frames_in if isinstance(f, str)]


async def test_spoken_turn(live_emulator):
    engine = s2s.new("openai_live", live_config(live_emulator))
    async with await engine.start() as session:
        await stream(session, utterance(1.5, RATE) + silence(4.0, RATE), RATE, chunk_ms=100)
        events = await collect(session, turn_end())
    heard = f"{voiced(1.5, RATE):.1f}"
    assert final_text(events, Role.USER) == [f"[{heard} seconds of speech]"]
    assert final_text(events, Role.ASSISTANT) == [f"I heard {heard} seconds of speech."]
    order = kinds(events)
    assert order.index("response_started") < order.index("audio_output") < order.index("turn_end")
    audio = [e for e in events if e.type is EventType.AUDIO_OUTPUT]
    assert audio and all(e.item_id == "live_item_2" for e in audio)
    assert any(e.audio.strip(b"\0") for e in audio)
    sent = frames_in(live_emulator)
    assert sent[0]["type"] == "session.start"
    assert sent[0]["session"]["delegation"]["type"] == "responses"


async def test_tool_call_answered_through_send_tool_result():
    async with LiveEmulator(
        api_key=OPENAI_KEY, record=True, utterances=['call lookup_order {"order_id": "A1"}']
    ) as emulator:
        engine = s2s.new("openai_live", live_config(emulator, tools=[LOOKUP]))
        async with await engine.start() as session:
            await stream(session, utterance(1.0, RATE) + silence(0.5, RATE), RATE, chunk_ms=100)
            events = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
            call = events[-1].tool_call
            assert call.name == "lookup_order" and call.args == {"order_id": "A1"}
            await session.send_tool_result(ToolResult(call.id, '{"status": "shipped"}'))
            await stream(session, silence(4.0, RATE), RATE, chunk_ms=100)
            events = await collect(session, turn_end())
        assert final_text(events, Role.ASSISTANT) == [
            'The lookup_order tool returned {"status": "shipped"}.'
        ]
        sent = [f["type"] for f in frames_in(emulator)]
        assert sent.count("response.item.create") == 1 and sent.count("response.create") == 1
        assert sent.index("response.item.create") < sent.index("response.create")


async def test_quota_error_ends_the_session_at_once_without_reconnecting():
    async with LiveEmulator(api_key=OPENAI_KEY, failure="insufficient_quota") as emulator:
        engine = s2s.new("openai_live", live_config(emulator))

        async def call() -> None:  # the error may end the start itself, or the call just after
            async with await engine.start() as session:
                await collect(session, lambda e: False, timeout=5)

        with pytest.raises(s2s.QuotaExceededError) as info:
            await call()
        assert info.value.code == "insufficient_quota" and not info.value.retryable
        assert info.value.provider == "openai_live"
        assert emulator.connections == 1


async def test_start_refused_for_a_bad_key_is_not_retried():
    async with LiveEmulator(api_key="sk-the-right-one") as emulator:
        engine = s2s.new("openai_live", live_config(emulator))
        with pytest.raises(s2s.AuthenticationError) as info:
            await engine.start()
        assert info.value.code == "invalid_api_key"
        assert emulator.connections == 1


async def test_expiry_continues_the_call_on_a_new_session_seeded_with_history():
    async with LiveEmulator(api_key=OPENAI_KEY, record=True) as emulator:
        engine = s2s.new("openai_live", live_config(emulator))
        async with await engine.start() as session:
            await stream(session, utterance(1.0, RATE) + silence(4.0, RATE), RATE, chunk_ms=100)
            first = await collect(session, turn_end())
            await emulator.end_sessions("expired")
            events = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
            assert events[-1].reason == "session_expired"
            await stream(session, utterance(1.0, RATE) + silence(4.0, RATE), RATE, chunk_ms=100)
            await collect(session, turn_end())
        assert emulator.connections == 2
        start = frames_in(emulator, 1)[0]
        history = [(m["role"], m["content"][0]["text"]) for m in start["session"]["input"]]
        answer = final_text(first, Role.ASSISTANT)[0]
        assert history == [("user", final_text(first, Role.USER)[0]), ("assistant", answer)]


async def test_idle_silence_lets_the_model_answer_when_the_application_stops_sending(
    live_emulator,
):
    engine = s2s.new("openai_live", live_config(live_emulator, extra={"turn_gap_ms": 300}))
    async with await engine.start() as session:
        await stream(session, utterance(0.6, RATE, pause=0.0), RATE, chunk_ms=100)
        events = await collect(session, turn_end())  # only the protocol's silence moves time on
    assert final_text(events, Role.ASSISTANT) == [
        f"I heard {voiced(0.6, RATE):.1f} seconds of speech."
    ]
    appends = [f for f in frames_in(live_emulator) if f["type"] == "session.input_audio.append"]
    assert len(appends) - 6 >= 20  # after the utterance, >= 2 s of 100 ms silence frames
