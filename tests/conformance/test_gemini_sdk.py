"""Conformance with the official ``google-genai`` SDK (the independent oracle for Gemini Live).

* The SDK's live client (``client.aio.live.connect``) runs an audio turn, a tool round trip and
  a session resumption against the emulator, over TLS.
* Every frame our client sends validates against ``google.genai.types.LiveClientMessage``
  (strict: unknown fields are errors), with ``realtimeInputConfig`` checked by
  ``types.RealtimeInputConfig`` (``LiveClientSetup`` lacks it, though the SDK sends it).
* Every message the emulator sends validates against ``types.LiveServerMessage``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import types

import s2s
from s2s import EventType, ToolResult
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.gemini.session import THINKING_FILLER

from ..conftest import GEMINI_KEY, gemini_config
from ..helpers import LOOKUP, collect, heard_seconds, stream, turn_end, utterance, voiced

pytestmark = pytest.mark.conformance


def sdk_client(emulator: GeminiEmulator, api_version: str | None = "v1beta") -> genai.Client:
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    options = types.HttpOptions(base_url=emulator.url, async_client_args={"ssl": context})
    if api_version is not None:
        options.api_version = api_version
    return genai.Client(api_key=GEMINI_KEY, http_options=options)


async def until(session: Any, stop: Any, timeout: float = 10.0) -> list[types.LiveServerMessage]:
    """Messages up to and including the first ``stop`` accepts (across turn boundaries)."""
    out: list[types.LiveServerMessage] = []
    async with asyncio.timeout(timeout):
        while True:
            async for message in session.receive():
                out.append(message)
                if stop(message):
                    return out


def spoken(messages: list[types.LiveServerMessage], kind: str = "output") -> str:
    parts = []
    for m in messages:
        content = m.server_content
        transcription = content and getattr(content, f"{kind}_transcription")
        if transcription and transcription.text:
            parts.append(transcription.text)
    return "".join(parts)


def turn_complete(m: types.LiveServerMessage) -> bool:
    return bool(m.server_content and m.server_content.turn_complete)


@pytest.fixture
async def emulator() -> AsyncIterator[GeminiEmulator]:
    async with GeminiEmulator(api_key=GEMINI_KEY, record=True, speed=8.0) as emulator:
        yield emulator


@pytest.mark.parametrize("api_version", [None, "v1beta"])  # None: the SDK's default, v1
async def test_sdk_runs_an_audio_turn(emulator, api_version):
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        system_instruction="be brief",
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            )
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=False)
        ),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    client = sdk_client(emulator, api_version)
    async with client.aio.live.connect(model="gemini-3.8-live", config=config) as session:
        assert session.setup_complete is not None
        pcm = utterance(1.5, 16000)
        for i in range(0, len(pcm), 3200):
            await session.send_realtime_input(
                audio=types.Blob(data=pcm[i : i + 3200], mime_type="audio/pcm;rate=16000")
            )
        messages = await until(session, turn_complete)
    heard = heard_seconds(spoken(messages, "input"))
    assert heard == pytest.approx(voiced(1.5, 16000), abs=0.1)
    assert spoken(messages) == f"I heard {heard} seconds of speech."
    audio = b"".join(
        part.inline_data.data
        for m in messages
        if m.server_content and m.server_content.model_turn
        for part in m.server_content.model_turn.parts or []
        if part.inline_data and part.inline_data.data
    )
    assert len(audio) > 24000  # more than half a second of 24 kHz speech
    assert messages[-1].usage_metadata.total_token_count > 0
    version = api_version or "v1"
    assert emulator.sessions[-1].api_version == version


async def test_sdk_runs_a_tool_round_trip(emulator):
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather",
                        description="weather",
                        behavior=types.Behavior.BLOCKING,
                        parameters_json_schema={
                            "type": "object",
                            "properties": {"city_name": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    )
                ]
            )
        ],
    )
    async with sdk_client(emulator).aio.live.connect(model="gemini-3.8-live", config=config) as s:
        await s.send_client_content(
            turns=types.Content(
                role="user", parts=[types.Part(text='call get_weather {"city_name": "Paris"}')]
            ),
            turn_complete=True,
        )
        messages = await until(s, lambda m: m.tool_call is not None)
        (call,) = messages[-1].tool_call.function_calls
        assert call.name == "get_weather" and call.args == {"city_name": "Paris"}  # user data kept
        await s.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"output": {"t": 21}})
            ]
        )
        messages = await until(s, turn_complete)
    assert spoken(messages) == 'The get_weather tool returned {"t": 21}.'


async def test_sdk_receive_runs_an_extended_thinking_task_until_idle(emulator):
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW),
    )
    model = "gemini-3.8-live-extended-thinking"
    async with sdk_client(emulator).aio.live.connect(model=model, config=config) as s:
        await s.send_realtime_input(text="what is the plan")
        async with asyncio.timeout(10):
            messages = [m async for m in s.receive()]  # the SDK stops at IDLE, not turnComplete
    ends = [
        m.server_content for m in messages if m.server_content and m.server_content.turn_complete
    ]
    assert [c.interaction_status for c in ends] == [
        types.InteractionStatus.IN_PROGRESS,
        types.InteractionStatus.IDLE,
    ]
    assert spoken(messages) == f'{THINKING_FILLER}You said: "what is the plan".'


async def test_sdk_resumes_a_session_with_its_handle(emulator):
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        # google-genai refuses ``transparent`` outside Vertex, so no index is asked for.
        session_resumption=types.SessionResumptionConfig(),
    )
    client = sdk_client(emulator)
    async with client.aio.live.connect(model="gemini-3.8-live", config=config) as s:
        await s.send_realtime_input(text="the code word is heron")
        await until(s, turn_complete)
        messages = await until(s, lambda m: m.session_resumption_update is not None)
        update = messages[-1].session_resumption_update
        assert update.resumable and update.new_handle
        assert update.last_consumed_client_message_index is None
    config.session_resumption = types.SessionResumptionConfig(handle=update.new_handle)
    async with client.aio.live.connect(model="gemini-3.8-live", config=config) as s:
        await s.send_realtime_input(text="recall")
        messages = await until(s, turn_complete)
    assert spoken(messages) == 'Earlier you said: "the code word is heron".'
    assert emulator.sessions[-1].resumed


# -- typed validation of every frame, both ways --------------------------------------------------


async def _exercise_our_client(emulator: GeminiEmulator) -> None:
    """Make our client send (and the emulator answer) every kind of message there is."""
    engine = s2s.new(
        "gemini_live",
        gemini_config(
            emulator,
            tools=[LOOKUP],
            voice="Puck",
            instructions="help",
            sample_rate=16000,
            extra={
                "language_code": "en-US",
                "start_sensitivity": "high",
                "end_sensitivity": "low",
                "prefix_padding_ms": 20,
                "silence_duration_ms": 500,
                "activity_handling": "interrupt",
                "turn_coverage": "only_activity",
                "temperature": 0.7,
                "max_output_tokens": 512,
                "compression_trigger_tokens": 25600,
                "compression_target_tokens": 12800,
                "proactive_audio": True,
                "api_version": "v1alpha",
            },
        ),
    )
    async with await engine.start() as session:
        await stream(session, utterance(1.0, 16000), 16000)
        await collect(session, turn_end())
        await stream(session, utterance(0.4, 16000, pause=0.1), 16000)
        await session.end_turn()  # audioStreamEnd
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "A1"}')
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        await session.send_tool_result(ToolResult(call.id, "lost", is_error=True))
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "B2"}')
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        await stream(session, utterance(0.5, 16000, pause=0.0), 16000)  # cancels the call
        await collect(session, lambda e: e.type is EventType.TOOL_CALL_CANCELLED)
        await stream(session, utterance(0.1, 16000, pause=0.8), 16000)
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "C3"}')
        call = (await collect(session, lambda e: e.type is EventType.TOOL_CALL))[-1].tool_call
        emulator.drop_connections()  # the history replay after a reconnect
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_tool_result(ToolResult(call.id, '{"eta": "today"}'))
        await collect(session, turn_end())
        await emulator.go_away(30.0)
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
    manual = s2s.new(
        "gemini_live",
        gemini_config(
            emulator,
            tools=[LOOKUP],
            extra={
                "turn_detection": "none",
                "activity_handling": "no_interruption",
                "session_resumption": False,
                "context_window_compression": False,
                "input_transcription": False,
                "non_blocking_tools": {"lookup_order": "interrupt"},
            },
        ),
    )
    async with await manual.start() as session:
        await stream(session, utterance(0.5, 24000, pause=0.1), 24000)
        await session.end_turn()  # activityStart .. activityEnd
        await collect(session, turn_end())
        await session.send_text('call lookup_order {"order_id": "D4"}')
        events = await collect(session, turn_end())
        call = next(e.tool_call for e in events if e.type is EventType.TOOL_CALL)
        await session.send_tool_result(ToolResult(call.id, "[1, 2]"))
        await collect(session, turn_end())
        emulator.drop_connections()
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)


def _validate_client_frame(raw: str | bytes) -> str:
    message = json.loads(raw)
    setup = message.get("setup") or {}
    realtime_config = setup.pop("realtimeInputConfig", None) or setup.pop(
        "realtime_input_config", None
    )
    types.LiveClientMessage.model_validate_json(json.dumps(message))
    if realtime_config is not None:
        types.RealtimeInputConfig.model_validate_json(json.dumps(realtime_config))
    (kind,) = message
    body = message[kind]
    return f"{kind}.{next(iter(body))}" if kind == "realtimeInput" else kind


async def test_every_message_our_client_sends_is_a_valid_live_client_message(emulator):
    await _exercise_our_client(emulator)
    kinds = {_validate_client_frame(f) for s in emulator.sessions for f in s.frames_in}
    assert kinds >= {
        "setup",
        "realtimeInput.audio",
        "realtimeInput.text",
        "realtimeInput.audioStreamEnd",
        "realtimeInput.activityStart",
        "realtimeInput.activityEnd",
        "toolResponse",
        "clientContent",
    }, sorted(kinds)
    assert all(s.close_code is None for s in emulator.sessions)  # the emulator refused nothing


async def test_every_message_the_emulator_sends_is_a_valid_live_server_message(emulator):
    await _exercise_our_client(emulator)
    await test_sdk_runs_a_tool_round_trip(emulator)
    kinds: set[str] = set()
    for session in emulator.sessions:
        for message in session.frames_out:
            parsed = types.LiveServerMessage.model_validate_json(json.dumps(message))
            for name, value in parsed:
                if value is None:
                    continue
                kinds.add(name)
                if name == "server_content":
                    kinds |= {f"server_content.{k}" for k, v in value if v is not None}
    assert kinds >= {
        "setup_complete",
        "server_content.model_turn",
        "server_content.input_transcription",
        "server_content.output_transcription",
        "server_content.generation_complete",
        "server_content.turn_complete",
        "server_content.interrupted",
        "usage_metadata",
        "tool_call",
        "tool_call_cancellation",
        "go_away",
        "session_resumption_update",
    }, sorted(kinds)
