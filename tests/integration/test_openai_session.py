"""Our client against the OpenAI emulator over loopback: the whole session API, end to end."""

from __future__ import annotations

import asyncio
import json

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.audio import pcm16_to_ulaw, ulaw_to_pcm16
from s2s.audio.synth import speech_for_text
from s2s.emulators.openai import OpenAIEmulator
from s2s.providers.openai_realtime import OpenAIRealtimeProvider

from ..conftest import openai_config
from ..helpers import (
    LOOKUP,
    WEATHER,
    audio_ms,
    collect,
    final_text,
    heard_seconds,
    kinds,
    stream,
    turn_end,
    utterance,
    voiced,
)


def frames_in(emulator: OpenAIEmulator, index: int = -1) -> list[dict]:
    return [json.loads(f) for f in emulator.sessions[index].frames_in if isinstance(f, str)]


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
async def test_audio_turn_at_any_application_rate(openai_emulator, rate):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, sample_rate=rate))
    async with await engine.start() as session:
        await stream(session, utterance(2.0, rate), rate)
        events = await collect(session, turn_end())
    assert kinds(events)[:2] == ["speech_started", "speech_stopped"]
    (user,) = final_text(events, Role.USER)
    (answer,) = final_text(events, Role.ASSISTANT)
    assert heard_seconds(user) == pytest.approx(voiced(2.0, rate), abs=0.1)
    assert heard_seconds(answer) == heard_seconds(user)
    audio = [e for e in events if e.type is EventType.AUDIO_OUTPUT]
    assert audio and all(e.sample_rate == rate and len(e.audio) % 2 == 0 for e in audio)
    expected_ms = len(speech_for_text(answer, 24000)) / 48
    assert audio_ms(events) == pytest.approx(expected_ms, abs=25)  # nothing lost resampling


async def test_text_turn(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    async with await engine.start() as session:
        await session.send_text("hello there")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "hello there".']
    assert [e.type for e in events if e.type is EventType.USAGE]
    sent = frames_in(openai_emulator)
    assert [f["type"] for f in sent] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]


async def test_tool_round_trip(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text('call lookup_order {"order_id": "A1"}')
        events = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
        call = events[-1].tool_call
        assert call.name == "lookup_order" and call.args == {"order_id": "A1"}
        await collect(session, turn_end("tool_calls"))
        await session.send_tool_result(ToolResult(call.id, '{"status": "shipped"}'))
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == [
        'The lookup_order tool returned {"status": "shipped"}.'
    ]
    sent = [f["type"] for f in frames_in(openai_emulator)]
    assert sent.count("response.create") == 2  # the text, then once after the output


async def test_parallel_tool_calls_get_one_response_create(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, tools=[LOOKUP, WEATHER]))
    async with await engine.start() as session:
        await session.send_text(
            'call lookup_order {"order_id": "B2"} and call get_weather {"city": "Oslo"}'
        )
        events = await collect(session, turn_end("tool_calls"))
        calls = [e.tool_call for e in events if e.type is EventType.TOOL_CALL]
        assert [c.name for c in calls] == ["lookup_order", "get_weather"]
        await session.send_tool_result(ToolResult(calls[1].id, '"sunny"'))
        await asyncio.sleep(0.2)
        await session.send_tool_result(ToolResult(calls[0].id, '"delivered"'))
        events = await collect(session, turn_end())
    (answer,) = final_text(events, Role.ASSISTANT)
    assert "get_weather tool returned" in answer and "lookup_order tool returned" in answer
    sent = [f["type"] for f in frames_in(openai_emulator)]
    after_outputs = sent[sent.index("response.create") + 1 :]
    assert after_outputs == [
        "conversation.item.create",
        "conversation.item.create",
        "response.create",
    ]
    errors = [f for f in openai_emulator.sessions[-1].frames_out if f["type"] == "error"]
    assert errors == []  # never conversation_already_has_active_response


async def test_barge_in_truncates_the_answer_to_what_was_heard(openai_emulator):
    openai_emulator.options.speed = 1.0  # a real-time answer the caller can talk over
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    async with await engine.start() as session:
        await session.send_text("please tell me a long story about the weather today")
        received: list[s2s.SessionEvent] = []

        def enough_audio(event: s2s.SessionEvent) -> bool:
            received.append(event)
            return audio_ms(received) >= 500

        first = await collect(session, enough_audio)
        item_id = first[-1].item_id
        session.report_playback(item_id, 300)  # the caller's phone has played 300 of 500 ms
        await stream(session, utterance(0.6, 24000, pause=0.0), 24000)
        events = await collect(session, lambda e: e.type is EventType.INTERRUPTED)
        assert kinds(events)[-2:] == ["speech_started", "interrupted"]
        events = await collect(session, turn_end("cancelled"))
    truncates = [f for f in frames_in(openai_emulator) if f["type"] == "conversation.item.truncate"]
    assert truncates == [
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 300,
        }
    ]
    assert "response.cancel" not in [f["type"] for f in frames_in(openai_emulator)]
    server_item = next(i for i in openai_emulator.sessions[-1].items if i.id == item_id)
    assert server_item.audio_ms == 300
    # no audio of the cut answer reaches the application after the interruption
    assert not [e for e in events if e.type is EventType.AUDIO_OUTPUT and e.item_id == item_id]


async def test_interrupt_cancels_and_truncates(openai_emulator):
    openai_emulator.options.speed = 1.0
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    interrupted = []
    hooks = s2s.Hooks(on_interrupt=lambda: interrupted.append(True))
    async with await engine.start(hooks=hooks) as session:
        await session.send_text("say something long enough to be interrupted please")
        await collect(session, lambda e: e.type is EventType.AUDIO_OUTPUT)
        await asyncio.sleep(0.2)
        await session.interrupt()
        events = await collect(session, turn_end("cancelled"))
    assert interrupted == [True]
    after = events[kinds(events).index("interrupted") + 1 :]
    assert not [e for e in after if e.type is EventType.AUDIO_OUTPUT]
    sent = [f["type"] for f in frames_in(openai_emulator)]
    assert "response.cancel" in sent and "conversation.item.truncate" in sent
    truncate = next(
        f for f in frames_in(openai_emulator) if f["type"] == "conversation.item.truncate"
    )
    assert 150 <= truncate["audio_end_ms"] <= 600  # about the 0.2 s the caller heard


async def test_resumes_after_the_provider_session_limit(openai_emulator):
    openai_emulator.options.session_limit_s = 1.5
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    async with await engine.start() as session:
        await session.send_text("my account number is 778")
        await collect(session, turn_end())
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        assert resumed[-1].reason == "session_expired"
        assert resumed[-1].data["history_items"] == 2
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['Earlier you said: "my account number is 778".']
    assert 1001 in openai_emulator.close_codes and len(openai_emulator.sessions) == 2


async def test_rotates_proactively_between_answers(openai_emulator):
    engine = s2s.new(
        "openai_realtime",
        openai_config(openai_emulator, extra={"rotate_after_s": 1.0, "max_session_s": 3600}),
    )
    async with await engine.start() as session:
        await session.send_text("remember the word pineapple")
        await collect(session, turn_end())
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        assert resumed[-1].reason == "session_limit"
        assert resumed[-1].data["gap_ms"] < 2000
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == [
        'Earlier you said: "remember the word pineapple".'
    ]
    assert openai_emulator.close_codes[0] == 1000  # the old connection was closed politely


async def _heard(
    session: s2s.Session, pcm: bytes, rate: int, drop_at: int | None, emulator: OpenAIEmulator
) -> tuple[float, list[s2s.SessionEvent]]:
    step = rate // 50 * 2
    for n, i in enumerate(range(0, len(pcm), step)):
        if n == drop_at:
            emulator.drop_connections()
        await session.send_audio(pcm[i : i + step], sample_rate=rate)
        await asyncio.sleep(0.004)
    events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    return heard_seconds(user), events


async def test_a_dropped_connection_loses_no_caller_audio(openai_emulator):
    pcm = utterance(3.0, 16000, seed=5)
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, sample_rate=16000))
    async with await engine.start() as session:
        control, _ = await _heard(session, pcm, 16000, None, openai_emulator)
    async with await engine.start() as session:
        heard, events = await _heard(session, pcm, 16000, 75, openai_emulator)  # at 1.5 s
    resumed = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert resumed and resumed[0].reason == "connection_lost"
    assert resumed[0].data["replayed_audio_ms"] >= 1400
    assert heard == control  # the whole utterance reached the model despite the drop
    print(f"dropped-connection gap: {resumed[0].data['gap_ms']} ms")


async def test_g711_telephony_audio(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, sample_rate=8000))
    mulaw = pcm16_to_ulaw(utterance(1.5, 8000))  # what a Twilio media stream carries
    async with await engine.start() as session:
        await stream(session, ulaw_to_pcm16(mulaw), 8000)
        events = await collect(session, turn_end())
    assert heard_seconds(final_text(events, Role.USER)[0]) == pytest.approx(
        voiced(1.5, 8000), abs=0.1
    )
    reply = b"".join(e.audio for e in events if e.type is EventType.AUDIO_OUTPUT)
    assert len(pcm16_to_ulaw(reply)) == len(reply) // 2  # ready to send back as mu-law


async def test_manual_turn_detection(openai_emulator):
    engine = s2s.new(
        "openai_realtime", openai_config(openai_emulator, extra={"turn_detection": "none"})
    )
    async with await engine.start() as session:
        await stream(session, utterance(1.2, 24000, pause=0.2), 24000)
        await session.end_turn()
        events = await collect(session, turn_end())
    assert "speech_started" not in kinds(events)
    assert heard_seconds(final_text(events, Role.ASSISTANT)[0]) == pytest.approx(
        voiced(1.2, 24000), abs=0.1
    )


async def test_hooks_see_turns_tool_calls_and_errors(openai_emulator):
    turns, calls, errors = [], [], []
    engine = s2s.new(
        "openai_realtime",
        openai_config(openai_emulator, tools=[LOOKUP]),
        hooks=s2s.Hooks(on_turn=lambda u, a: turns.append((u, a))),
    )
    session_hooks = s2s.Hooks(
        on_tool_call=calls.append, on_error=lambda e: errors.append(e.code)
    )  # returns None: suppress
    async with await engine.start(hooks=session_hooks) as session:
        await stream(session, utterance(1.0, 24000), 24000)
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "Z"}')
        await collect(session, turn_end("tool_calls"))
        await openai_emulator.inject_error("server_error", "transient hiccup")
        await session.send_tool_result(ToolResult(calls[0].id, "ok"))
        events = await collect(session, turn_end())
    seconds = voiced(1.0, 24000)
    assert turns[0] == (f"[{seconds} seconds of speech]", f"I heard {seconds} seconds of speech.")
    assert [c.name for c in calls] == ["lookup_order"]
    assert errors == ["server_error"] and "error" not in kinds(events)  # suppressed


async def test_a_non_fatal_error_is_an_event_and_the_call_goes_on(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    async with await engine.start() as session:
        await openai_emulator.inject_error("server_error", "transient hiccup")
        events = await collect(session, lambda e: e.type is EventType.ERROR)
        assert isinstance(events[-1].error, s2s.ProviderServerError)
        await session.send_text("still there?")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "still there?".']


async def test_a_fatal_close_ends_recv_with_the_error(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    session = await engine.start()
    await openai_emulator.inject_error(
        "invalid_model", "model withdrawn", type="invalid_request_error", close_code=4000
    )
    with pytest.raises(s2s.InvalidRequestError, match="model withdrawn"):
        await collect(session, lambda e: False)
    with pytest.raises(s2s.SessionClosedError, match="model withdrawn"):
        await session.send_text("hello?")
    await session.close()


async def test_gives_up_when_the_provider_stays_unreachable(openai_emulator, monkeypatch):
    monkeypatch.setattr(
        OpenAIRealtimeProvider, "reconnect", s2s.ReconnectPolicy(attempts=3, base_delay=0.05)
    )
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    session = await engine.start()
    openai_emulator.refuse_next(10)
    openai_emulator.drop_connections()
    with pytest.raises(s2s.ProviderConnectionError, match="gave up after 3 attempts"):
        await collect(session, lambda e: False)
    await session.close()


async def test_frame_processor(openai_emulator):
    from s2s.frames import AudioFrame, ControlFrame, Signal, TranscriptFrame

    engine = s2s.new("openai_realtime", openai_config(openai_emulator, sample_rate=16000))
    pcm = utterance(1.0, 16000)

    async def frames():
        yield "not-a-session-frame"
        for i in range(0, len(pcm), 640):
            yield AudioFrame(pcm[i : i + 640], 16000)

    out = [f async for f in s2s.as_frame_processor(engine, linger=0.3)(frames())]
    assert out[0] == "not-a-session-frame"  # passed through, in order
    assert any(isinstance(f, AudioFrame) and f.sample_rate == 16000 for f in out)
    transcripts = [f.text for f in out if isinstance(f, TranscriptFrame) and f.final]
    assert f"I heard {voiced(1.0, 16000)} seconds of speech." in transcripts
    assert ControlFrame(Signal.TURN_END) in out


async def test_frame_processor_ends_with_a_fatal_error(openai_emulator):
    from s2s.frames import TextFrame

    engine = s2s.new("openai_realtime", openai_config(openai_emulator))

    async def frames():
        yield TextFrame("hello")
        await asyncio.sleep(0.3)
        await openai_emulator.inject_error(
            "invalid_model", "gone", type="invalid_request_error", close_code=4000
        )
        await asyncio.sleep(5)
        yield TextFrame("never sent")

    with pytest.raises(s2s.InvalidRequestError, match="gone"):
        async for _ in s2s.as_frame_processor(engine)(frames()):
            pass


async def test_closing_during_a_reconnect_leaves_nothing_behind(openai_emulator):
    openai_emulator.options.event_delay_s = 0.3  # slow the new connection's setup
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    session = await engine.start()
    openai_emulator.drop_connections()
    await asyncio.sleep(0.2)  # the session is reconnecting
    await session.close()
    await asyncio.sleep(1.0)
    assert openai_emulator.live_sessions == []
    assert [e.type for e in [e async for e in session.recv()]] == []
