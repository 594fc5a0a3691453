"""Conformance: the official aws-sdk-bedrock-runtime client against the Nova emulator.

The SDK is an independent client: if the emulator's HTTP/2, SigV4, event-stream framing or
exceptions were off, the SDK would fail to talk to it the same way it would fail against AWS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from aws_sdk_bedrock_runtime.models import (
    AccessDeniedException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)
from smithy_aws_event_stream.exceptions import UnmodeledEventError
from smithy_core.exceptions import CallError

from s2s.audio.synth import silence, speech_like
from s2s.emulators.nova import NovaEmulator
from s2s.emulators.vad import voiced_seconds

from ..conftest import SECOND
from ..nova_sdk import (
    MODEL,
    audio_input,
    audio_start,
    close_events,
    open_sdk_stream,
    prompt_start,
    session_start,
    text_block,
    tool_result,
)

pytestmark = pytest.mark.conformance

WEATHER = {
    "toolSpec": {
        "name": "getWeather",
        "description": "Weather for a city",
        "inputSchema": {
            "json": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})
        },
    }
}


def _content(events: list[dict], kind: str) -> list[str]:
    return [e[kind]["content"] for e in events if kind in e]


async def _open(emulator: NovaEmulator, tools: list | None = None):
    sdk = await open_sdk_stream(emulator)
    await sdk.send(session_start())
    await sdk.send(prompt_start(sdk.prompt, tools))
    for event in text_block(sdk.prompt, "SYSTEM", "You are a friendly assistant."):
        await sdk.send(event)
    audio = str(uuid.uuid4())
    await sdk.send(audio_start(sdk.prompt, audio))
    return sdk, audio


@pytest.fixture
async def emulator():
    async with NovaEmulator(speed=16.0) as emulator:
        yield emulator


async def test_sdk_completes_an_audio_turn(emulator):
    sdk, audio = await _open(emulator)
    try:
        pcm = speech_like(1.5, 16000, seed=3) + silence(1.0, 16000)
        for i in range(0, len(pcm), 1024):  # 32 ms frames, as AWS recommends
            await sdk.send(audio_input(sdk.prompt, audio, pcm[i : i + 1024]))

        def final_end(event: dict) -> bool:
            end = event.get("contentEnd") or {}
            return (
                end.get("type") == "TEXT"
                and end.get("stopReason") == "END_TURN"
                and (final_seen[-1] if final_seen else False)
            )

        final_seen: list[bool] = []

        def watch(event: dict) -> bool:
            start = event.get("contentStart") or {}
            if start.get("type") == "TEXT":
                stage = json.loads(start["additionalModelFields"])["generationStage"]
                final_seen.append(start["role"] == "ASSISTANT" and stage == "FINAL")
            return final_end(event)

        events = await asyncio.wait_for(sdk.receive_until(watch), 20 * SECOND)
        seconds = round(voiced_seconds(speech_like(1.5, 16000, seed=3), 16000), 1)
        texts = _content(events, "textOutput")
        assert texts[0] == f"[{seconds} seconds of speech]"  # USER FINAL transcript
        assert texts[-1] == f"I heard {seconds} seconds of speech."  # ASSISTANT FINAL
        audio_out = b"".join(base64.b64decode(c) for c in _content(events, "audioOutput"))
        assert len(audio_out) > 24000  # at least half a second at 24 kHz
        names = [next(iter(e)) for e in events]
        assert names[0] == "completionStart" and "usageEvent" in names
        for event in close_events(sdk.prompt, audio):
            await sdk.send(event)
        await sdk.stream.input_stream.close()
        rest = []
        while (event := await asyncio.wait_for(sdk.receive(), 5 * SECOND)) is not None:
            rest.append(event)
        assert "completionEnd" in [next(iter(e)) for e in rest]
    finally:
        await sdk.close()
    await asyncio.sleep(0.1)
    assert emulator.endings == ["client"]


async def test_sdk_tool_round_trip(emulator):
    sdk, audio = await _open(emulator, [WEATHER])
    try:
        for event in text_block(
            sdk.prompt, "USER", 'call getWeather {"city": "Paris"}', interactive=True
        ):
            await sdk.send(event)
        events = await asyncio.wait_for(
            sdk.receive_until(lambda e: e.get("contentEnd", {}).get("stopReason") == "TOOL_USE"),
            10 * SECOND,
        )
        (use,) = [e["toolUse"] for e in events if "toolUse" in e]
        assert use["toolName"] == "getWeather" and json.loads(use["content"]) == {"city": "Paris"}
        for event in tool_result(sdk.prompt, use["toolUseId"], json.dumps({"temp_c": 21})):
            await sdk.send(event)
        events = await asyncio.wait_for(
            sdk.receive_until(
                lambda e: (
                    e.get("contentEnd", {}).get("stopReason") == "END_TURN"
                    and e["contentEnd"].get("type") == "TEXT"
                )
            ),
            10 * SECOND,
        )
        assert _content(events, "textOutput")[-1] == 'The getWeather tool returned {"temp_c": 21}.'
    finally:
        await sdk.close()


async def test_sdk_raises_the_typed_validation_exception(emulator):
    sdk = await open_sdk_stream(emulator)
    try:
        await sdk.send(session_start())
        await sdk.send(prompt_start(sdk.prompt))
        for event in text_block(sdk.prompt, "USER", "hello"):  # not the SYSTEM block
            await sdk.send(event)
        with pytest.raises(ValidationException, match="First content must have SYSTEM role"):
            await asyncio.wait_for(sdk.receive(), 5 * SECOND)
    finally:
        await sdk.close()


async def test_sdk_sees_pre_stream_errors_as_typed_exceptions(emulator):
    emulator.refuse_next(1, error_type="ThrottlingException", message="Too many requests")
    emulator.refuse_next(1, error_type="AccessDeniedException", message="not allowed")
    for expected, message in ((ThrottlingException, "Too many"), (AccessDeniedException, "not")):
        sdk = await open_sdk_stream(emulator)
        try:
            await sdk.send(session_start())
            with pytest.raises(expected, match=message):
                await asyncio.wait_for(sdk.receive(), 5 * SECOND)
        finally:
            await sdk.close()
    bad = await open_sdk_stream(emulator, secret_access_key="wrong")
    try:
        with pytest.raises(CallError, match="403.*InvalidSignatureException"):
            await asyncio.wait_for(bad.receive(), 5 * SECOND)
    finally:
        await bad.close()


async def test_sdk_sees_the_model_lifecycle_and_quota_failures(emulator):
    assert MODEL == "amazon.nova-2-5-sonic"  # every test above runs Nova 2.5 Sonic
    emulator.refuse_next(1, error_type="ServiceQuotaExceededException")
    for model, expected, message in (
        ("amazon.nova-sonic-v1:0", ResourceNotFoundException, "reached the end of its life"),
        (MODEL, ServiceQuotaExceededException, "exceeds the service quota"),
    ):
        sdk = await open_sdk_stream(emulator, model=model)
        try:
            await sdk.send(session_start())
            with pytest.raises(expected, match=message):
                await asyncio.wait_for(sdk.receive(), 5 * SECOND)
        finally:
            await sdk.close()
    assert emulator.refusals == [(404, "ResourceNotFoundException"), (400, expected.__name__)]
    # Nova 2 Sonic is still served; a quota exhausted mid-stream is an unmodelled error.
    sdk = await open_sdk_stream(emulator, model="amazon.nova-2-sonic-v1:0")
    try:
        await sdk.send(session_start())
        _, sdk.output = await asyncio.wait_for(sdk.stream.await_output(), 5 * SECOND)  # HTTP 200
        assert emulator.live_streams[0].model == "amazon.nova-2-sonic-v1:0"
        await emulator.inject_exception("serviceQuotaExceededException")
        with pytest.raises(UnmodeledEventError) as info:
            await asyncio.wait_for(sdk.receive(), 5 * SECOND)
        assert info.value.code == "ServiceQuotaExceededException"
    finally:
        await sdk.close()
