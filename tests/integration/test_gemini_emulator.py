"""The Gemini emulator over a raw TLS WebSocket: production close codes, frames and behaviour."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.tls import self_signed

from ..conftest import GEMINI_KEY, SECOND
from ..helpers import utterance

SETUP = {"setup": {"model": "models/gemini-3.8-live"}}


def client_ssl(emulator: GeminiEmulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(emulator.ca_file))


async def connect(
    emulator: GeminiEmulator,
    *,
    key: str | None = GEMINI_KEY,
    query: str = "",
    version: str = "v1beta",
) -> Any:
    headers = {"x-goog-api-key": key} if key else {}
    return await websockets.connect(
        emulator.ws_url(version) + query, additional_headers=headers, ssl=client_ssl(emulator)
    )


async def recv(ws: Any, key: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout * SECOND):
        while True:
            frame = await ws.recv()
            assert isinstance(frame, bytes)  # server JSON comes in binary frames
            message = json.loads(frame)
            if key is None or key in message:
                return message


async def _drain(ws: Any) -> None:
    async with asyncio.timeout(5 * SECOND):
        while True:
            await ws.recv()


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await _drain(ws)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def setup(ws: Any, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"setup": {**SETUP["setup"], **fields}}))
    return await recv(ws)


async def test_setup_complete_then_an_answer_in_camel_case_binary_frames(gemini_emulator):
    async with await connect(gemini_emulator) as ws:
        assert "setupComplete" in await setup(ws, outputAudioTranscription={})
        await ws.send(json.dumps({"realtime_input": {"text": "hi"}}))  # snake_case accepted
        messages = []
        while "turnComplete" not in (message := await recv(ws)).get("serverContent", {}):
            messages.append(message)
    text = "".join(
        m["serverContent"].get("outputTranscription", {}).get("text", "")
        for m in messages
        if "serverContent" in m
    )
    assert text == 'You said: "hi".'
    audio = [m for m in messages if "modelTurn" in m.get("serverContent", {})]
    blob = audio[0]["serverContent"]["modelTurn"]["parts"][0]["inlineData"]
    assert blob["mimeType"] == "audio/pcm;rate=24000" and base64.b64decode(blob["data"])
    assert "usageMetadata" in message and message["serverContent"]["turnComplete"] is True


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
async def test_every_api_version_is_served_and_the_key_may_be_a_query_parameter(
    gemini_emulator, version
):
    async with await connect(
        gemini_emulator, key=None, query=f"?key={GEMINI_KEY}", version=version
    ) as ws:
        assert "setupComplete" in await setup(ws)


async def test_other_paths_are_404(gemini_emulator):
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(
            f"wss://127.0.0.1:{gemini_emulator.port}/ws/google.ai.generativelanguage.v2."
            "GenerativeService.BidiGenerateContent",
            ssl=client_ssl(gemini_emulator),
        )
    assert info.value.response.status_code == 404


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ({"realtimeInput": {"text": "hi"}}, 1007, "The first message must be a setup message"),
        (
            {"setup": {"model": "models/gemini-9"}},
            1008,
            "Publisher Model `models/gemini-9` was not found or is not supported for "
            "bidiGenerateContent",
        ),
        ({"setup": {"model": "gemini-3.8-live"}}, 1008, "was not found"),
        (
            {"setup": {"model": "models/gemini-3.8-live", "x": 1}},
            1007,
            "Unknown name \"x\" at 'setup'",
        ),
        (
            {
                "setup": {
                    "model": "models/gemini-3.8-live",
                    "generationConfig": {"responseModalities": ["TEXT"]},
                }
            },
            1007,
            "The requested combination of response modalities (TEXT) is not supported by the model",
        ),
        (
            {
                "setup": {
                    "model": "models/gemini-3.8-live",
                    "generationConfig": {
                        "speechConfig": {
                            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Bob"}}
                        }
                    },
                }
            },
            1007,
            "Voice name 'Bob' is not supported",
        ),
        (
            {
                "setup": {
                    "model": "models/gemini-3.8-live",
                    "tools": [
                        {
                            "functionDeclarations": [
                                {"name": "f", "parameters": {"type": "OBJECT", "$schema": "x"}}
                            ]
                        }
                    ],
                }
            },
            1007,
            "Unknown name \"$schema\" at 'setup.tools[0].function_declarations[0].parameters'",
        ),
        (
            {
                "setup": {
                    "model": "models/gemini-3.8-live",
                    "sessionResumption": {"handle": "made-up"},
                }
            },
            1007,
            "resumption handle is invalid",
        ),
    ],
)
async def test_bad_setups_close_with_the_production_code_and_reason(
    gemini_emulator, first, code, reason
):
    async with await connect(gemini_emulator) as ws:
        await ws.send(json.dumps(first))
        got = await closed_with(ws)
    assert got[0] == code and reason in got[1]


@pytest.mark.parametrize(
    ("key", "code", "reason"),
    [
        (None, 1008, "unregistered callers"),
        ("wrong-key", 1007, "API key not valid"),
    ],
)
async def test_keys_are_checked_when_setup_arrives(gemini_emulator, key, code, reason):
    async with await connect(gemini_emulator, key=key) as ws:
        await ws.send(json.dumps(SETUP))
        got_code, got_reason = await closed_with(ws)
    assert got_code == code and reason in got_reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"setup": SETUP["setup"]}, "setup may only be sent once"),
        (
            {"realtimeInput": {"activityStart": {}}},
            "require automatic activity detection to be disabled",
        ),
        (
            {"toolResponse": {"functionResponses": [{"id": "nope", "response": {}}]}},
            'id "nope" does not match',
        ),
        (
            {"realtimeInput": {"audio": {"mimeType": "audio/wav", "data": "AAAA"}}},
            "Unsupported mime type",
        ),
        (
            {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": "!!!"}}},
            "Base64 decoding failed",
        ),
    ],
)
async def test_bad_messages_after_setup_close_with_1007(gemini_emulator, message, reason):
    async with await connect(gemini_emulator) as ws:
        await setup(ws)
        await ws.send(json.dumps(message))
        code, got = await closed_with(ws)
    assert code == 1007 and reason in got


async def test_resumption_handles_restore_the_conversation(gemini_emulator):
    async with await connect(gemini_emulator) as ws:
        await setup(ws, sessionResumption={"transparent": True}, outputAudioTranscription={})
        first = await recv(ws, "sessionResumptionUpdate")
        assert first["sessionResumptionUpdate"]["lastConsumedClientMessageIndex"] == "0"
        await ws.send(json.dumps({"realtimeInput": {"text": "remember 42"}}))
        await ws.send(
            json.dumps(
                {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "and 43"}]}]}}
            )
        )
        update = await recv(ws, "sessionResumptionUpdate")
        while not update["sessionResumptionUpdate"].get("resumable"):
            update = await recv(ws, "sessionResumptionUpdate")  # not resumable while answering
        assert update["sessionResumptionUpdate"]["lastConsumedClientMessageIndex"] == "2"
        handle = update["sessionResumptionUpdate"]["newHandle"]
    async with await connect(gemini_emulator) as ws:
        await setup(ws, sessionResumption={"handle": handle}, outputAudioTranscription={})
        await ws.send(json.dumps({"realtimeInput": {"text": "recall"}}))
        text = ""
        while "turnComplete" not in (message := await recv(ws)).get("serverContent", {}):
            text += message.get("serverContent", {}).get("outputTranscription", {}).get("text", "")
    assert text == 'Earlier you said: "remember 42"; "and 43".'
    assert gemini_emulator.sessions[-1].resumed


async def test_go_away_comes_before_the_connection_limit_then_a_1011():
    async with (
        GeminiEmulator(
            api_key=GEMINI_KEY, connection_limit_s=0.6, go_away_before_s=0.4
        ) as emulator,
        await connect(emulator) as ws,
    ):
        await setup(ws)
        go_away = await recv(ws, "goAway")
        assert go_away == {"goAway": {"timeLeft": "0.4s"}}
        assert await closed_with(ws) == (
            1011,
            "Deadline expired before operation could complete.",
        )


async def test_caller_speech_interrupts_the_answer(gemini_emulator):
    gemini_emulator.options.speed = 1.0
    async with await connect(gemini_emulator) as ws:
        await setup(ws)
        await ws.send(json.dumps({"realtimeInput": {"text": "tell me a long story please"}}))
        await recv(ws, "serverContent")
        data = base64.b64encode(utterance(0.5, 16000, pause=0.0)).decode()
        audio = {"mimeType": "audio/pcm;rate=16000", "data": data}
        await ws.send(json.dumps({"realtimeInput": {"audio": audio}}))
        while True:
            content = (await recv(ws, "serverContent"))["serverContent"]
            if content.get("interrupted"):
                break
            assert not content.get("turnComplete")
        assert (await recv(ws, "serverContent"))["serverContent"] == {"turnComplete": True}


async def test_fault_injection(gemini_emulator):
    gemini_emulator.refuse_next(1, close_code=1013, reason="Try again later.")
    async with await connect(gemini_emulator) as ws:
        assert await closed_with(ws) == (1013, "Try again later.")
    async with await connect(gemini_emulator) as ws:
        await setup(ws)
        assert gemini_emulator.drop_connections() == 1
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is None  # no close frame: a reset
    async with await connect(gemini_emulator) as ws:
        await setup(ws)
        assert await gemini_emulator.close_connections(1011, "Internal error occurred.") == 1
        assert await closed_with(ws) == (1011, "Internal error occurred.")
    gemini_emulator.options.message_delay_s = 0.2
    async with await connect(gemini_emulator) as ws:
        started = asyncio.get_running_loop().time()
        await setup(ws)
        assert asyncio.get_running_loop().time() - started >= 0.2


async def test_a_given_certificate_is_used(tmp_path):
    files = self_signed(tmp_path)
    async with GeminiEmulator(
        api_key=GEMINI_KEY, certfile=files.certfile, keyfile=files.keyfile
    ) as emulator:
        assert emulator.ca_file is None and emulator.certfile == files.certfile
        context = ssl.create_default_context(cafile=str(files.cafile))
        async with websockets.connect(
            emulator.ws_url(), additional_headers={"x-goog-api-key": GEMINI_KEY}, ssl=context
        ) as ws:
            await ws.send(json.dumps(SETUP))
            assert "setupComplete" in await recv(ws)
    with pytest.raises(ValueError, match="both certfile and keyfile"):
        GeminiEmulator(certfile=files.certfile)
