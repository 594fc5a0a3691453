"""Our Nova client against the Nova emulator over loopback (HTTP/2, TLS, SigV4), end to end."""

from __future__ import annotations

import asyncio
import json

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.audio.synth import speech_for_text
from s2s.emulators.nova import NovaEmulator
from s2s.providers.nova import wire

from ..conftest import SECOND, nova_config
from ..helpers import (
    LOOKUP,
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


def sent(emulator: NovaEmulator, index: int = -1) -> list[tuple[str, dict]]:
    """The client events one stream received, as (name, body), each checked against the models."""
    out = []
    for event in emulator.streams[index].events_in:
        name, _ = wire.InputEvent.parse(event)  # every event our client sends is well-formed
        out.append((name, event["event"][name]))
    return out


def opening(events: list[tuple[str, dict]]) -> list[str]:
    """Event names up to the AUDIO contentStart, with content roles spelled out."""
    names = []
    for name, body in events:
        names.append(f"{name}:{body['role']}" if name == "contentStart" else name)
        if name == "contentStart" and body["type"] == "AUDIO":
            break
    return names


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_audio_turn_at_any_application_rate(nova_emulator, rate):
    engine = s2s.new("nova", nova_config(nova_emulator, sample_rate=rate))
    async with await engine.start() as session:
        await stream(session, utterance(2.0, rate), rate)
        events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    (answer,) = final_text(events, Role.ASSISTANT)
    assert heard_seconds(user) == pytest.approx(voiced(2.0, rate), abs=0.1)
    assert heard_seconds(answer) == heard_seconds(user)
    previews = [e for e in events if e.type is EventType.TRANSCRIPT and not e.final]
    assert [e.text for e in previews] == [answer]  # SPECULATIVE text is only a preview
    audio = [e for e in events if e.type is EventType.AUDIO_OUTPUT]
    assert audio and all(e.sample_rate == rate and len(e.audio) % 2 == 0 for e in audio)
    expected_ms = len(speech_for_text(answer, 24000)) / 48
    assert audio_ms(events) == pytest.approx(expected_ms, abs=25)
    assert kinds(events).index("response_started") < kinds(events).index("audio_output")


async def test_the_opening_and_the_orderly_close(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator, instructions="Be brief.", tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text("hello there")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "hello there".']
    assert [e for e in events if e.type is EventType.USAGE]
    await asyncio.sleep(0.2 * SECOND)
    events_in = sent(nova_emulator)
    assert opening(events_in) == [
        "sessionStart",
        "promptStart",
        "contentStart:SYSTEM",
        "textInput",
        "contentEnd",
        "contentStart:USER",
    ]
    prompt = events_in[1][1]
    schema = prompt["toolConfiguration"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert isinstance(schema, str) and json.loads(schema) == dict(LOOKUP.parameters)
    assert prompt["audioOutputConfiguration"]["sampleRateHertz"] == 24000
    assert events_in[3][1]["content"] == "Be brief."
    text_block = [n for n, b in events_in if n != "audioInput"][6:9]
    assert text_block == ["contentStart", "textInput", "contentEnd"]
    assert [n for n, _ in events_in[-3:]] == ["contentEnd", "promptEnd", "sessionEnd"]
    assert events_in[-3][1]["contentName"] == events_in[5][1]["contentName"]  # the audio block
    assert nova_emulator.endings == ["client"]


async def ask_for_a_lookup(session: s2s.Session, order_id: str) -> s2s.ToolCall:
    await session.send_text(f'call lookup_order {{"order_id": "{order_id}"}}')
    events = await collect(session, turn_end("tool_calls"))
    (call,) = [e.tool_call for e in events if e.type is EventType.TOOL_CALL]
    assert call.name == "lookup_order" and call.args == {"order_id": order_id}
    return call


async def test_tool_round_trip(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        call = await ask_for_a_lookup(session, "A1")
        await session.send_tool_result(ToolResult(call.id, '{"status": "shipped"}'))
        events = await collect(session, turn_end())
        with pytest.raises(s2s.InvalidInputError, match="already answered"):
            await session.send_tool_result(ToolResult(call.id, "again"))
    assert final_text(events, Role.ASSISTANT) == [
        'The lookup_order tool returned {"status": "shipped"}.'
    ]
    tool_start = next(
        body
        for name, body in sent(nova_emulator)
        if name == "contentStart" and body["type"] == "TOOL"
    )
    assert tool_start["toolResultInputConfiguration"]["toolUseId"] == call.id


async def test_barge_in_stops_the_answer(nova_emulator):
    nova_emulator.options.speed = 1.0  # a real-time answer the caller can talk over
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await session.send_text("please tell me a long story about the weather today")
        received: list[s2s.SessionEvent] = []

        def enough_audio(event: s2s.SessionEvent) -> bool:
            received.append(event)
            return audio_ms(received) >= 500

        await collect(session, enough_audio)
        await stream(session, utterance(0.6, 16000, pause=0.0), 16000, realtime=True)
        events = await collect(session, turn_end("cancelled"))
        assert "interrupted" in kinds(events)
        after = events[kinds(events).index("interrupted") + 1 :]
        assert not [e for e in after if e.type is EventType.AUDIO_OUTPUT]
        await stream(session, utterance(0.1, 16000, pause=0.8), 16000)
        await collect(session, turn_end())
    out = [e["event"] for e in nova_emulator.streams[-1].events_out]
    assert {"contentEnd": "INTERRUPTED"} in [
        {"contentEnd": e["contentEnd"].get("stopReason")} for e in out if "contentEnd" in e
    ]
    assert any(e.get("textOutput", {}).get("content") == wire.INTERRUPTED_TEXT for e in out)


async def test_interrupt_drops_the_rest_of_the_answer(nova_emulator):
    nova_emulator.options.speed = 1.0
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await session.send_text("say something long enough to be interrupted please")
        await collect(session, lambda e: e.type is EventType.AUDIO_OUTPUT)
        await session.interrupt()
        events = await collect(session, turn_end("cancelled"), timeout=20)
    assert kinds(events)[0] == "interrupted" and events[0].reason == "client"
    assert not [e for e in events if e.type in (EventType.AUDIO_OUTPUT, EventType.TRANSCRIPT)]


async def test_rotation_at_the_deadline_loses_no_caller_audio(nova_emulator):
    """The call moves to a new stream mid-utterance; the model still hears all of it."""
    pcm = utterance(3.0, 16000, seed=5)
    extra = {"rotate_after_s": 1.0, "rotate_deadline_s": 1.0}
    engine = s2s.new("nova", nova_config(nova_emulator, sample_rate=16000, extra=extra))
    async with await engine.start() as session:
        await stream(session, pcm, 16000, realtime=True)
        events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    resumed = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert resumed and resumed[0].reason == "session_limit"
    assert heard_seconds(user) == voiced(3.0, 16000, seed=5)  # nothing lost in the switch
    carried = resumed[0].data["replayed_audio_ms"] + resumed[0].data["buffered_audio_ms"]
    assert carried > 0
    assert nova_emulator.endings[0] == "client"  # the old stream was closed politely
    print(
        f"\nNova rotation gap: {resumed[0].data['gap_ms']} ms "
        f"(replayed {resumed[0].data['replayed_audio_ms']} ms, "
        f"buffered {resumed[0].data['buffered_audio_ms']} ms)"
    )


async def test_repeated_rotations_in_one_utterance_lose_nothing(nova_emulator):
    """Several streams in a row, each cut mid-sentence: the last one still hears it all."""
    pcm = utterance(4.0, 16000, seed=9)
    extra = {"rotate_after_s": 0.7, "rotate_deadline_s": 0.7}
    engine = s2s.new("nova", nova_config(nova_emulator, sample_rate=16000, extra=extra))
    async with await engine.start() as session:
        await stream(session, pcm, 16000, realtime=True)
        events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    gaps = sorted(e.data["gap_ms"] for e in events if e.type is EventType.SESSION_RESUMED)
    assert len(gaps) >= 3 and len(nova_emulator.streams) == len(gaps) + 1
    assert heard_seconds(user) == voiced(4.0, 16000, seed=9)
    print(
        f"\n{len(gaps)} rotations, gap ms: min {gaps[0]}, median {gaps[len(gaps) // 2]}, "
        f"max {gaps[-1]}"
    )


async def test_rotation_waits_for_the_answer_and_carries_the_history(nova_emulator):
    nova_emulator.options.speed = 2.0
    extra = {"rotate_after_s": 0.5, "rotate_deadline_s": 60}
    engine = s2s.new("nova", nova_config(nova_emulator, extra=extra))
    async with await engine.start() as session:
        await session.send_text("remember the word pineapple and then tell me a long story")
        events = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        assert kinds(events).index("turn_end") < kinds(events).index("session_resumed")
        assert events[-1].data["history_items"] == 2
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == [
        'Earlier you said: "remember the word pineapple and then tell me a long story".'
    ]
    history = opening(sent(nova_emulator, 1))
    assert history[4:] == [
        "contentEnd",
        "contentStart:USER",
        "textInput",
        "contentEnd",
        "contentStart:ASSISTANT",
        "textInput",
        "contentEnd",
        "contentStart:USER",
    ]
    history_block = sent(nova_emulator, 1)[5][1]
    assert history_block["interactive"] is False


async def test_a_dropped_connection_loses_no_caller_audio(nova_emulator):
    pcm = utterance(3.0, 16000, seed=5)
    engine = s2s.new("nova", nova_config(nova_emulator, sample_rate=16000))
    async with await engine.start() as session:
        step = 640
        for n, i in enumerate(range(0, len(pcm), step)):
            if n == 75:  # 1.5 s in
                nova_emulator.drop_connections()
            await session.send_audio(pcm[i : i + step])
            await asyncio.sleep(0.004)
        events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    resumed = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert resumed and resumed[0].reason == "connection_lost"
    assert heard_seconds(user) == voiced(3.0, 16000, seed=5)
    print(f"\nNova dropped-connection gap: {resumed[0].data['gap_ms']} ms")


@pytest.mark.parametrize(
    ("limit", "ending"),
    [("silence_limit_s", "validationException"), ("connection_limit_s", "modelTimeoutException")],
)
async def test_recovers_from_the_stream_limits(nova_emulator, limit, ending):
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await session.send_text("my account number is 778")
        await collect(session, turn_end())
        setattr(nova_emulator.options, limit, 0.5)
        await session.send_text("and my name is Ada")
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        setattr(nova_emulator.options, limit, 600.0)
        assert resumed[-1].reason == "session_expired"
        await session.send_text("recall")
        events = await collect(
            session,
            lambda e: (
                e.type is EventType.TRANSCRIPT
                and e.final
                and (e.text or "").startswith("Earlier you said")
            ),
        )
    answer = events[-1].text or ""
    assert '"my account number is 778"' in answer and '"and my name is Ada"' in answer
    assert ending in nova_emulator.endings


async def test_a_pending_tool_call_survives_a_lost_connection(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        call = await ask_for_a_lookup(session, "B7")
        nova_emulator.drop_connections()
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_tool_result(ToolResult(call.id, '{"status": "delayed"}'))
        events = await collect(session, turn_end())
    (answer,) = final_text(events, Role.ASSISTANT)
    assert 'returned {"status": "delayed"}' in answer
    texts = [b["content"] for n, b in sent(nova_emulator, -1) if n == "textInput"]
    assert any("lookup_order tool" in t for t in texts[1:])  # history or the live result


async def test_throttling_in_the_stream_continues_the_call(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await nova_emulator.inject_exception("throttlingException", "Too many requests")
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        assert resumed[-1].reason == "connection_lost"
        await session.send_text("still there?")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "still there?".']


async def test_a_validation_exception_ends_the_session_with_a_typed_error(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator))
    session = await engine.start()
    await nova_emulator.inject_exception("validationException", "Invalid voiceId 'nobody'")
    with pytest.raises(s2s.InvalidRequestError, match="Invalid voiceId") as info:
        await collect(session, lambda e: False)
    assert info.value.code == "ValidationException" and not info.value.retryable
    with pytest.raises(s2s.SessionClosedError):
        await session.send_text("hello?")
    await session.close()


async def test_a_refused_request_is_retried(nova_emulator):
    nova_emulator.refuse_next(2, error_type="ServiceUnavailableException", message="busy")
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await session.send_text("hello")
        await collect(session, turn_end())
    assert nova_emulator.refusals == [(503, "ServiceUnavailableException")] * 2


@pytest.mark.parametrize("model", ["amazon.nova-2-5-sonic", "amazon.nova-2-sonic-v1:0"])
async def test_both_served_models_take_endpointing_sensitivity(nova_emulator, model):
    config = nova_config(nova_emulator, model=model, extra={"endpointing_sensitivity": "HIGH"})
    async with await s2s.new("nova", config).start() as session:
        await session.send_text("hello")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "hello".']
    assert nova_emulator.streams[0].model == model
    name, body = sent(nova_emulator, 0)[0]
    assert name == "sessionStart"
    assert body["turnDetectionConfiguration"] == {"endpointingSensitivity": "HIGH"}
