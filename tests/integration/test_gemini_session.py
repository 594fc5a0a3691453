"""Our client against the Gemini Live emulator over TLS on loopback, end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.audio.synth import speech_for_text
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.gemini.session import BACKGROUND_REPLY
from s2s.providers.gemini_live import GeminiLiveProvider

from ..conftest import SECOND, gemini_config
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

ASK = 'call lookup_order {"order_id": "A1"}'


def frames_in(emulator: GeminiEmulator, index: int = -1) -> list[dict[str, Any]]:
    return [json.loads(f) for f in emulator.sessions[index].frames_in]


def sent_kinds(emulator: GeminiEmulator, index: int = -1) -> list[str]:
    out = []
    for frame in frames_in(emulator, index):
        (kind,) = frame
        body = frame[kind]
        out.append(f"{kind}.{next(iter(body))}" if kind == "realtimeInput" else kind)
    return out


def answers(events: list[s2s.SessionEvent]) -> list[str]:
    return final_text(events, Role.ASSISTANT)


# -- the basics -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
async def test_audio_turn_at_any_application_rate(gemini_emulator, rate):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, sample_rate=rate))
    async with await engine.start() as session:
        await stream(session, utterance(2.0, rate), rate)
        events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    (answer,) = answers(events)
    assert heard_seconds(user) == pytest.approx(voiced(2.0, rate), abs=0.1)
    assert heard_seconds(answer) == heard_seconds(user)
    audio = [e for e in events if e.type is EventType.AUDIO_OUTPUT]
    assert audio and all(e.sample_rate == rate and len(e.audio) % 2 == 0 for e in audio)
    expected_ms = len(speech_for_text(answer, 24000)) / 48
    assert audio_ms(events) == pytest.approx(expected_ms, abs=25)  # nothing lost resampling
    sent = frames_in(gemini_emulator)
    assert list(sent[0]) == ["setup"]
    audio_frames = [f["realtimeInput"]["audio"] for f in sent[1:]]
    assert {a["mimeType"] for a in audio_frames} == {"audio/pcm;rate=16000"}
    server = gemini_emulator.sessions[-1]
    assert server.audio_received_ms == pytest.approx(
        len(utterance(2.0, rate)) / 2 / rate * 1000, abs=40
    )


async def test_text_turn_uses_realtime_input_text(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("hello there")
        events = await collect(session, turn_end())
    assert answers(events) == ['You said: "hello there".']
    usage = [e.usage for e in events if e.type is EventType.USAGE]
    assert usage and usage[0].total_tokens == usage[0].input_tokens + usage[0].output_tokens
    assert sent_kinds(gemini_emulator) == ["setup", "realtimeInput.text"]
    assert frames_in(gemini_emulator)[1] == {"realtimeInput": {"text": "hello there"}}


async def test_setup_carries_the_config(gemini_emulator):
    engine = s2s.new(
        "gemini_live",
        gemini_config(
            gemini_emulator,
            voice="Kore",
            instructions="Be brief.",
            tools=[LOOKUP],
            extra={
                "language_code": "en-US",
                "start_sensitivity": "low",
                "silence_duration_ms": 400,
            },
        ),
    )
    async with await engine.start():
        pass
    setup = frames_in(gemini_emulator)[0]["setup"]
    assert setup["model"] == "models/gemini-3.8-live"
    assert setup["generationConfig"]["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
        "languageCode": "en-US",
    }
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    (declaration,) = setup["tools"][0]["functionDeclarations"]
    assert declaration["parametersJsonSchema"] == dict(LOOKUP.parameters)
    assert "parameters" not in declaration and declaration["behavior"] == "BLOCKING"
    assert setup["sessionResumption"] == {"transparent": True}
    assert setup["realtimeInputConfig"]["automaticActivityDetection"] == {
        "disabled": False,
        "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
        "silenceDurationMs": 400,
    }
    assert "slidingWindow" in setup["contextWindowCompression"]


async def test_tool_round_trip(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text(ASK)
        events = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
        call = events[-1].tool_call
        assert call.name == "lookup_order" and call.args == {"order_id": "A1"}
        await session.send_tool_result(ToolResult(call.id, '{"status": "shipped"}'))
        events = await collect(session, turn_end())
    assert answers(events) == ['The lookup_order tool returned {"status": "shipped"}.']
    (response,) = [f["toolResponse"] for f in frames_in(gemini_emulator) if "toolResponse" in f]
    assert response == {
        "functionResponses": [
            {"id": call.id, "name": "lookup_order", "response": {"output": {"status": "shipped"}}}
        ]
    }


async def test_parallel_tool_calls_and_an_error_result(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, tools=[LOOKUP, WEATHER]))
    async with await engine.start() as session:
        await session.send_text(f'{ASK} and call get_weather {{"city": "Oslo"}}')
        calls = []
        await collect(
            session,
            lambda e: e.type is EventType.TOOL_CALL and len(calls) == 2,
            on_event=lambda e: calls.append(e.tool_call) if e.tool_call else None,
        )
        assert [c.name for c in calls] == ["lookup_order", "get_weather"]
        await session.send_tool_result(ToolResult(calls[1].id, '"sunny"'))
        await session.send_tool_result(ToolResult(calls[0].id, "database down", is_error=True))
        events = await collect(session, turn_end())
    (answer,) = answers(events)
    assert "get_weather tool returned sunny" in answer
    assert "lookup_order tool returned database down" in answer
    responses = [f["toolResponse"] for f in frames_in(gemini_emulator) if "toolResponse" in f]
    assert responses[1]["functionResponses"][0]["response"] == {"error": "database down"}


@pytest.mark.parametrize("scheduling", ["when_idle", "interrupt", "silent"])
async def test_non_blocking_tools_with_scheduling(gemini_emulator, scheduling):
    engine = s2s.new(
        "gemini_live",
        gemini_config(
            gemini_emulator,
            tools=[LOOKUP],
            extra={"non_blocking_tools": {"lookup_order": scheduling}},
        ),
    )
    async with await engine.start() as session:
        await session.send_text(ASK)
        events = await collect(session, turn_end())  # the model keeps talking
        call = next(e.tool_call for e in events if e.type is EventType.TOOL_CALL)
        assert answers(events) == [BACKGROUND_REPLY]
        await session.send_tool_result(ToolResult(call.id, '"packed"'))
        if scheduling == "silent":
            with pytest.raises(TimeoutError):
                await collect(session, lambda e: e.type is EventType.RESPONSE_STARTED, timeout=0.5)
            await session.send_text("recall")
        events = await collect(session, turn_end())
    if scheduling != "silent":
        assert answers(events) == ["The lookup_order tool returned packed."]
    setup = frames_in(gemini_emulator)[0]["setup"]
    assert setup["tools"][0]["functionDeclarations"][0]["behavior"] == "NON_BLOCKING"
    (response,) = [f["toolResponse"] for f in frames_in(gemini_emulator) if "toolResponse" in f]
    assert response["functionResponses"][0]["scheduling"] == scheduling.upper()


# -- interruption -----------------------------------------------------------------------------


async def _until_audio(session: s2s.Session, ms: float) -> list[s2s.SessionEvent]:
    received: list[s2s.SessionEvent] = []

    def enough(event: s2s.SessionEvent) -> bool:
        received.append(event)
        return audio_ms(received) >= ms

    return await collect(session, enough)


async def test_barge_in_interrupts_and_late_output_is_dropped(gemini_emulator):
    gemini_emulator.options.speed = 1.0  # a real-time answer the caller can talk over
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("please tell me a long story about the weather today")
        first = await _until_audio(session, 400)
        response_id = first[-1].response_id
        await stream(session, utterance(0.8, 24000), 24000)
        events = await collect(session, turn_end("completed"))
    cut = events[: kinds(events).index("turn_end") + 1]
    marks = (EventType.INTERRUPTED, EventType.TURN_END)
    assert [e.type for e in cut if e.type in marks] == list(marks)
    interrupted = next(e for e in cut if e.type is EventType.INTERRUPTED)
    assert interrupted.reason == "barge_in" and interrupted.response_id == response_id
    after = events[events.index(interrupted) :]
    assert not [
        e for e in after if e.type is EventType.AUDIO_OUTPUT and e.response_id == response_id
    ]
    assert cut[-1].reason == "cancelled"
    assert answers(events)[-1] == f"I heard {voiced(0.8, 24000)} seconds of speech."


async def test_interrupt_flushes_and_drops_the_rest_of_the_answer(gemini_emulator):
    gemini_emulator.options.speed = 1.0
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    interrupted = []
    async with await engine.start(
        hooks=s2s.Hooks(on_interrupt=lambda: interrupted.append(1))
    ) as session:
        await session.send_text("say something long enough to be interrupted please")
        await _until_audio(session, 200)
        await session.interrupt()
        gemini_emulator.options.speed = (
            8.0  # the server finishes the answer it does not know is cut
        )
        events = await collect(session, turn_end("cancelled"))
        await session.send_text("still there?")
        after = await collect(session, turn_end())
    assert interrupted == [1] and events[0].type is EventType.INTERRUPTED
    assert events[0].reason == "client"
    assert not [e for e in events if e.type is EventType.AUDIO_OUTPUT]
    assert answers(after) == ['You said: "still there?".']


async def test_manual_turns_send_activity_start_and_end(gemini_emulator):
    engine = s2s.new(
        "gemini_live", gemini_config(gemini_emulator, extra={"turn_detection": "none"})
    )
    async with await engine.start() as session:
        await stream(session, utterance(1.2, 24000, pause=0.2), 24000)
        await session.end_turn()
        events = await collect(session, turn_end())
    assert heard_seconds(answers(events)[0]) == pytest.approx(voiced(1.2, 24000), abs=0.1)
    sent = sent_kinds(gemini_emulator)
    assert sent[1] == "realtimeInput.activityStart" and sent[-1] == "realtimeInput.activityEnd"
    assert frames_in(gemini_emulator)[0]["setup"]["realtimeInputConfig"][
        "automaticActivityDetection"
    ] == {"disabled": True}


async def test_interrupt_with_manual_turns_makes_the_server_stop(gemini_emulator):
    gemini_emulator.options.speed = 1.0
    engine = s2s.new(
        "gemini_live", gemini_config(gemini_emulator, extra={"turn_detection": "none"})
    )
    async with await engine.start() as session:
        await session.send_text("tell me a long story about a very patient lighthouse keeper")
        await _until_audio(session, 200)
        await session.interrupt()
        await collect(session, turn_end("cancelled"))
        await stream(session, utterance(0.6, 24000, pause=0.1), 24000)
        await session.end_turn()
        events = await collect(session, turn_end())
    assert heard_seconds(answers(events)[0]) == pytest.approx(voiced(0.6, 24000), abs=0.1)
    spoken = gemini_emulator.sessions[-1].state.items
    story = next(i for i in spoken if i.role == "model")
    assert len(story.text) < len("Tell me a long story") + 40  # the server stopped early


async def test_barge_in_cancels_pending_tool_calls(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text(ASK)
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        await stream(session, utterance(0.6, 24000, pause=0.0), 24000)
        events = await collect(session, lambda e: e.type is EventType.TOOL_CALL_CANCELLED)
        assert events[-1].call_ids == (call.id,)
        with pytest.raises(s2s.InvalidInputError, match="cancelled by the provider"):
            await session.send_tool_result(ToolResult(call.id, "late"))
        await stream(session, utterance(0.1, 24000, pause=0.8), 24000)
        events = await collect(session, turn_end())
    assert answers(events)[-1].startswith("I heard ")


# -- seamless continuation ----------------------------------------------------------------------


async def _speak_through(
    session: s2s.Session, pcm: bytes, rate: int, at_chunk: int | None, fault: Any
) -> tuple[float, list[s2s.SessionEvent]]:
    """Stream ``pcm`` in real time (20 ms chunks), running ``fault`` at ``at_chunk``."""
    step = rate // 50 * 2
    for n, i in enumerate(range(0, len(pcm), step)):
        if n == at_chunk:
            result = fault()
            if asyncio.iscoroutine(result):
                await result
        await session.send_audio(pcm[i : i + step], sample_rate=rate)
        await asyncio.sleep(0.02)
    events = await collect(session, turn_end())
    (user,) = final_text(events, Role.USER)
    return heard_seconds(user), events


async def test_go_away_handover_loses_no_caller_audio(gemini_emulator):
    pcm = utterance(2.4, 16000, seed=5)
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, sample_rate=16000))
    async with await engine.start() as session:
        control, _ = await _speak_through(session, pcm, 16000, None, None)

    async def go_away() -> None:
        gemini_emulator.options.message_delay_s = 0.03  # a slower setup: audio waits meanwhile
        await gemini_emulator.go_away(30.0)

    async with await engine.start() as session:
        heard, events = await _speak_through(session, pcm, 16000, 60, go_away)  # mid-sentence
    (resumed,) = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert resumed.reason == "go_away"
    assert resumed.data["buffered_audio_ms"] > 0
    assert heard == control  # every chunk of the utterance reached the model
    assert "interrupted" not in kinds(events)
    old, new = gemini_emulator.sessions[-2:]
    assert new.resumed and old.close_code is None  # the client left before the deadline
    assert gemini_emulator.close_codes[-2] == 1000  # ... and said goodbye
    print(
        f"goAway handover gap: {resumed.data['gap_ms']} ms "
        f"(audio sent again: {resumed.data['replayed_audio_ms']} ms, "
        f"buffered: {resumed.data['buffered_audio_ms']} ms)"
    )


async def test_go_away_waits_until_the_answer_is_over(gemini_emulator):
    gemini_emulator.options.speed = 2.0
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("my account number is 778")
        await _until_audio(session, 200)
        await gemini_emulator.go_away(30.0)
        events = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("recall")
        after = await collect(session, turn_end())
    assert kinds(events).index("turn_end") < kinds(events).index("session_resumed")
    assert "interrupted" not in kinds(events)
    assert answers(after) == ['Earlier you said: "my account number is 778".']


async def test_go_away_deadline_moves_a_long_answer_and_says_it_again(gemini_emulator):
    gemini_emulator.options.speed = 1.0
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, extra={"go_away_margin_s": 0.5}))
    question = "tell me about the history of the lighthouse on the northern cape"
    async with await engine.start() as session:
        await session.send_text(question)
        await _until_audio(session, 200)
        gemini_emulator.options.speed = 8.0
        await gemini_emulator.go_away(0.6)
        events = await collect(session, turn_end("completed"))
    cut = kinds(events)
    assert cut.index("interrupted") < cut.index("session_resumed")
    assert next(e for e in events if e.type is EventType.INTERRUPTED).reason == "go_away"
    assert answers(events) == [f'You said: "{question}".']  # said again in full


async def test_go_away_handover_loses_no_tool_result(gemini_emulator):
    engine = s2s.new(
        "gemini_live",
        gemini_config(gemini_emulator, tools=[LOOKUP], extra={"go_away_margin_s": 0.5}),
    )
    calls = []
    async with await engine.start() as session:
        await session.send_text(ASK)
        first = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
        calls.append(first[-1].tool_call)
        gemini_emulator.options.message_delay_s = 0.05  # a slow setup: the switch takes a while
        await gemini_emulator.go_away(0.6)
        ended = await collect(session, turn_end("tool_calls"))
        assert ended[-1].data["cause"] == "go_away"
        await asyncio.sleep(0.05)  # the switch is under way: the result waits in the buffer
        await session.send_tool_result(ToolResult(calls[0].id, '{"status": "delayed"}'))
        events = await collect(session, turn_end(), timeout=15)
        calls += [e.tool_call for e in events if e.type is EventType.TOOL_CALL]
    (resumed,) = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert len(calls) == 1  # the model did not call the tool again
    assert answers(events) == ['The lookup_order tool returned {"status": "delayed"}.']
    assert "toolResponse" not in json.dumps(frames_in(gemini_emulator, -2))
    replayed = [f["clientContent"] for f in frames_in(gemini_emulator) if "clientContent" in f]
    assert replayed[-1]["turns"][-1]["parts"][0]["functionResponse"]["id"] == calls[0].id
    print(f"goAway handover with a tool call pending: gap {resumed.data['gap_ms']} ms")


async def test_a_dropped_connection_loses_no_caller_audio(gemini_emulator):
    pcm = utterance(2.4, 16000, seed=5)
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, sample_rate=16000))
    async with await engine.start() as session:
        control, _ = await _speak_through(session, pcm, 16000, None, None)
    async with await engine.start() as session:
        heard, events = await _speak_through(
            session, pcm, 16000, 60, gemini_emulator.drop_connections
        )
    (resumed,) = [e for e in events if e.type is EventType.SESSION_RESUMED]
    assert resumed.reason == "connection_lost"
    assert heard == control
    print(f"dropped-connection gap: {resumed.data['gap_ms']} ms")


async def test_a_drop_with_a_tool_call_pending_loses_no_result(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text(ASK)
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        gemini_emulator.drop_connections()
        events = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_tool_result(ToolResult(call.id, '"on the truck"'))
        events += await collect(session, turn_end())
        await session.send_text("recall")
        recall = await collect(session, turn_end())
    assert [e.type for e in events].count(EventType.TOOL_CALL) == 0
    assert answers(events) == ["The lookup_order tool returned on the truck."]
    assert answers(recall) == [f'Earlier you said: "{ASK}".']


async def test_a_drop_right_after_the_tool_result_loses_nothing(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text(ASK)
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        await session.send_tool_result(ToolResult(call.id, '"in the depot"'))
        gemini_emulator.drop_connections()
        events = await collect(session, turn_end("completed"))
    assert EventType.SESSION_RESUMED in [e.type for e in events]
    assert EventType.TOOL_CALL not in [e.type for e in events]
    assert answers(events)[-1] == "The lookup_order tool returned in the depot."


async def test_a_1011_close_continues_the_call(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("remember the word pineapple")
        await collect(session, turn_end())
        await gemini_emulator.close_connections(1011, "Internal error occurred.")
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert resumed[-1].reason == "connection_lost"
    assert answers(events) == ['Earlier you said: "remember the word pineapple".']


async def test_without_resumption_the_history_is_replayed(gemini_emulator):
    engine = s2s.new(
        "gemini_live",
        gemini_config(gemini_emulator, tools=[LOOKUP], extra={"session_resumption": False}),
    )
    async with await engine.start() as session:
        await session.send_text("my name is Ada")
        await collect(session, turn_end())
        await session.send_text(ASK)
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        await session.send_tool_result(ToolResult(call.id, '"ok"'))
        await collect(session, turn_end())
        gemini_emulator.drop_connections()
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert answers(events) == [f'Earlier you said: "my name is Ada"; "{ASK}".']
    setup, history = frames_in(gemini_emulator)[:2]
    assert "sessionResumption" not in setup["setup"]
    turns = history["clientContent"]["turns"]
    assert [t["role"] for t in turns] == ["user", "model", "user", "model", "user", "model"]
    assert history["clientContent"]["turnComplete"] is False  # nothing is owed an answer


async def test_a_refused_handle_falls_back_to_replaying_the_history(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("the code word is heron")
        await collect(session, turn_end())
        gemini_emulator.handles.expired_chains.add(gemini_emulator.sessions[-1].state.chain)
        gemini_emulator.drop_connections()
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED, timeout=15)
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert answers(events) == ['Earlier you said: "the code word is heron".']
    refused, fresh = gemini_emulator.sessions[-2:]
    assert refused.close_code == 1007 and not fresh.resumed


async def test_the_session_limit_without_compression_is_survived(gemini_emulator):
    gemini_emulator.options.session_limit_s = 1.0
    engine = s2s.new(
        "gemini_live",
        gemini_config(gemini_emulator, extra={"context_window_compression": False}),
    )
    async with await engine.start() as session:
        await session.send_text("remember the number 31")
        await collect(session, turn_end())
        resumed = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED, timeout=15)
        await session.send_text("recall")
        events = await collect(session, turn_end())
    assert resumed[-1].reason == "session_expired"
    assert answers(events) == ['Earlier you said: "remember the number 31".']


async def test_a_server_without_the_transparent_index_still_loses_no_audio():
    async with GeminiEmulator(
        api_key="k", speed=8.0, resumption_interval_s=0.2, transparent_index=False
    ) as emulator:
        pcm = utterance(2.4, 16000, seed=5)
        config = gemini_config(emulator, sample_rate=16000, extra={"api_key": "k"})
        async with await s2s.new("gemini_live", config).start() as session:
            heard, events = await _speak_through(
                session, pcm, 16000, 60, lambda: emulator.go_away(30.0)
            )
    assert EventType.SESSION_RESUMED in [e.type for e in events]
    assert heard == pytest.approx(voiced(2.4, 16000, seed=5), abs=0.1)


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (1007, "Request contains an invalid argument.", s2s.InvalidRequestError),
        (1008, "Requested entity was not found.", s2s.InvalidRequestError),
        (1007, "API key expired. Please renew the API key.", s2s.AuthenticationError),
    ],
)
async def test_a_fatal_close_ends_recv_with_the_servers_reason(
    gemini_emulator, code, reason, error
):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    session = await engine.start()
    await gemini_emulator.close_connections(code, reason)
    with pytest.raises(error, match=reason) as info:
        await collect(session, lambda e: False)
    assert info.value.code == str(code) and not info.value.retryable
    with pytest.raises(s2s.SessionClosedError, match="closed session"):
        await session.send_text("hello?")
    await session.close()


async def test_gives_up_when_the_provider_stays_unreachable(gemini_emulator, monkeypatch):
    monkeypatch.setattr(
        GeminiLiveProvider, "reconnect", s2s.ReconnectPolicy(attempts=3, base_delay=0.05)
    )
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    session = await engine.start()
    gemini_emulator.refuse_next(10, close_code=1011, reason="The service is currently unavailable.")
    gemini_emulator.drop_connections()
    with pytest.raises(s2s.ProviderConnectionError, match="gave up after 3 attempts"):
        await collect(session, lambda e: False)
    await session.close()


async def test_closing_during_a_reconnect_leaves_nothing_behind(gemini_emulator):
    gemini_emulator.options.message_delay_s = 0.3  # slow the new connection's setup
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    session = await engine.start()
    gemini_emulator.drop_connections()
    await asyncio.sleep(0.2)
    await session.close()
    await asyncio.sleep(0.6 * SECOND)
    assert gemini_emulator.live_sessions == []
    assert [e.type for e in [e async for e in session.recv()]] == []


async def test_a_snapshot_continues_the_call_in_another_session(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as first:
        await first.send_text("my order is Z9")
        await collect(first, turn_end())
        snapshot = first.snapshot().to_dict()  # plain data: another process can take it over
    async with await engine.start(resume=snapshot) as second:
        await second.send_text("recall")
        events = await collect(second, turn_end())
    assert answers(events) == ['Earlier you said: "my order is Z9".']
    assert gemini_emulator.sessions[-1].resumed


@pytest.mark.parametrize("resumption", [True, False])
async def test_manual_turns_survive_a_drop_mid_turn(gemini_emulator, resumption):
    pcm = utterance(1.6, 16000, pause=0.2, seed=3)
    config = gemini_config(
        gemini_emulator,
        sample_rate=16000,
        extra={"turn_detection": "none", "session_resumption": resumption},
    )

    async def heard(drop_at: int | None) -> tuple[float, list[s2s.SessionEvent]]:
        async with await s2s.new("gemini_live", config).start() as session:
            for n, i in enumerate(range(0, len(pcm), 640)):
                if n == drop_at:
                    gemini_emulator.drop_connections()
                await session.send_audio(pcm[i : i + 640])
                await asyncio.sleep(0.01)
            await session.end_turn()
            events = await collect(session, turn_end("completed"))
        return heard_seconds(answers(events)[-1]), events

    control, _ = await heard(None)
    got, events = await heard(40)
    assert EventType.SESSION_RESUMED in [e.type for e in events]
    assert got == control


async def test_a_provider_that_refuses_overlap_still_gets_a_handover(gemini_emulator, monkeypatch):
    """If the new connection is refused while the old one is open, close the old one first."""
    monkeypatch.setattr(
        GeminiLiveProvider, "reconnect", s2s.ReconnectPolicy(attempts=2, base_delay=0.05)
    )
    gemini_emulator.options.refuse_resume_while_open = True
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        await session.send_text("my account number is 778")
        await collect(session, turn_end())
        await gemini_emulator.go_away(30.0)
        events = await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("recall")
        after = await collect(session, turn_end())
    assert events[-1].reason == "go_away"
    assert 1011 in gemini_emulator.close_codes  # the overlapping attempts were refused
    assert gemini_emulator.sessions[-1].resumed  # the sequential one resumed the state
    assert answers(after) == ['Earlier you said: "my account number is 778".']
