"""The OpenAI emulator's audio formats over a raw WebSocket: ``audio/pcmu`` in and out, and
unknown formats refused as the GA server does (the whole ``session.update`` discarded)."""

from __future__ import annotations

import base64
import json
from typing import Any

import websockets

from s2s.audio import pcm16_to_ulaw
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY
from ..helpers import utterance
from .test_openai_emulator import recv

AUTH = {"Authorization": f"Bearer {OPENAI_KEY}"}
PCMU = {"type": "audio/pcmu"}


async def update(ws: Any, session: dict[str, Any], event_id: str = "ev1") -> None:
    message = {"type": "session.update", "event_id": event_id, "session": session}
    await ws.send(json.dumps(message))


async def test_an_unknown_format_is_an_invalid_value_and_discards_the_update(
    openai_emulator: OpenAIEmulator,
) -> None:
    url = openai_emulator.url + "?model=gpt-realtime"
    async with websockets.connect(url, additional_headers=AUTH) as ws:
        await recv(ws, "session.created")
        audio = {"input": {"format": {"type": "audio/opus"}}, "output": {"voice": "cedar"}}
        await update(ws, {"type": "realtime", "audio": audio})
        error = (await recv(ws, "error"))["error"]
        assert (error["code"], error["param"], error["event_id"]) == (
            "invalid_value",
            "session.audio.input.format.type",
            "ev1",
        )
        assert "'audio/opus'" in error["message"] and "'audio/pcmu'" in error["message"]
        await update(ws, {"type": "realtime", "audio": {"output": {"format": {**PCMU, "rate": 1}}}})
        error = (await recv(ws, "error"))["error"]
        assert (error["code"], error["param"]) == (
            "unknown_parameter",
            "session.audio.output.format.rate",
        )
        await update(ws, {"type": "realtime"})
        session = (await recv(ws, "session.updated"))["session"]
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["output"]["voice"] == "alloy"  # nothing of the refused updates


async def test_pcmu_in_drives_vad_and_the_answer_comes_out_as_pcmu(
    openai_emulator: OpenAIEmulator,
) -> None:
    url = openai_emulator.url + "?model=gpt-realtime"
    async with websockets.connect(url, additional_headers=AUTH) as ws:
        await recv(ws, "session.created")
        await update(ws, {"type": "realtime", "audio": {"input": {"format": PCMU}}})
        updated = (await recv(ws, "session.updated"))["session"]["audio"]
        assert updated["input"]["format"] == PCMU  # a new type replaces the object, rate and all
        await update(ws, {"type": "realtime", "audio": {"output": {"format": PCMU}}})
        await recv(ws, "session.updated")
        mulaw = pcm16_to_ulaw(utterance(1.0, 8000))
        for start in range(0, len(mulaw), 1600):
            chunk = base64.b64encode(mulaw[start : start + 1600]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        stopped = await recv(ws, "input_audio_buffer.speech_stopped")
        assert 900 <= stopped["audio_end_ms"] <= 1300  # counted at 8 kHz, one byte a sample
        created = await recv(ws, "response.created")
        assert created["response"]["audio"]["output"]["format"] == PCMU
        delta = await recv(ws, "response.output_audio.delta")
        chunk_ms = openai_emulator.options.chunk_ms
        assert len(base64.b64decode(delta["delta"])) == 8 * chunk_ms  # 8 kHz mu-law
        done = await recv(ws, "response.done")
        assert done["response"]["audio"]["output"]["format"] == PCMU
