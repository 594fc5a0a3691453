"""mu-law (``audio_format="pcmu"``) sessions against the real emulators over loopback: OpenAI
takes and answers ``audio/pcmu`` itself (nothing converted), Gemini gets PCM16 16 kHz and its
answers come back as mu-law."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import s2s
from s2s import EventType, Role
from s2s.audio import pcm16_to_ulaw, rms_dbfs, ulaw_to_pcm16
from s2s.audio.synth import speech_for_text
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import gemini_config, openai_config
from ..helpers import audio_ms, collect, final_text, heard_seconds, turn_end, utterance, voiced

#: 20 ms of 8 kHz mu-law, as a phone bridge forwards it.
FRAME = 160


def caller_mulaw(seconds: float) -> bytes:
    return pcm16_to_ulaw(utterance(seconds, 8000))


async def send_mulaw(session: s2s.Session, mulaw: bytes) -> None:
    for start in range(0, len(mulaw), FRAME):
        await session.send_audio(mulaw[start : start + FRAME])


def openai_frames_in(emulator: OpenAIEmulator) -> list[dict[str, Any]]:
    return [json.loads(f) for f in emulator.sessions[-1].frames_in if isinstance(f, str)]


def audio_events(events: list[s2s.SessionEvent]) -> list[s2s.SessionEvent]:
    return [e for e in events if e.type is EventType.AUDIO_OUTPUT]


async def test_openai_takes_and_answers_mu_law_with_nothing_converted(
    openai_emulator: OpenAIEmulator,
) -> None:
    config = openai_config(openai_emulator, sample_rate=8000, audio_format="pcmu")
    mulaw = caller_mulaw(1.5)
    async with await s2s.new("openai_realtime", config).start() as session:
        await send_mulaw(session, mulaw)
        events = await collect(session, turn_end())
        assert session._audio_in.resampler is None and session._audio_out.resampler is None
    server = openai_emulator.sessions[-1].session["audio"]
    assert server["input"]["format"] == {"type": "audio/pcmu"}
    assert server["output"]["format"] == {"type": "audio/pcmu"}
    appends = [f for f in openai_frames_in(openai_emulator) if f["type"].endswith(".append")]
    assert b"".join(base64.b64decode(f["audio"]) for f in appends) == mulaw  # untouched
    (user,) = final_text(events, Role.USER)
    (answer,) = final_text(events, Role.ASSISTANT)
    assert heard_seconds(user) == pytest.approx(voiced(1.5, 8000), abs=0.1)
    audio = audio_events(events)
    assert audio and all(e.encoding == "pcmu" and e.sample_rate == 8000 for e in audio)
    expected_ms = len(speech_for_text(answer, 24000)) / 48
    assert audio_ms(events) == pytest.approx(expected_ms, abs=25)
    reply = b"".join(e.audio or b"" for e in audio)
    assert len(reply) == pytest.approx(expected_ms * 8, abs=200)  # one byte a sample
    assert rms_dbfs(ulaw_to_pcm16(reply)) > -40  # speech, decodable as mu-law


async def test_openai_mu_law_truncation_cuts_where_the_caller_stopped_hearing(
    openai_emulator: OpenAIEmulator,
) -> None:
    """The emulator refuses an ``audio_end_ms`` past the item's audio, and the protocol clamps
    it to what it counted as received: both only agree if mu-law is counted at 8 bytes/ms."""
    config = openai_config(openai_emulator, sample_rate=8000, audio_format="pcmu")
    async with await s2s.new("openai_realtime", config).start() as session:
        await session.send_text("hello there, tell me a long story about the weather today")
        received: list[s2s.SessionEvent] = []

        def heard_enough(event: s2s.SessionEvent) -> bool:
            received.append(event)
            return audio_ms(received) >= 250

        events = await collect(session, heard_enough)
        item_id = audio_events(events)[-1].item_id
        assert item_id is not None
        session.report_playback(item_id, 200)
        await session.interrupt()
        await collect(session, lambda e: e.type is EventType.INTERRUPTED)
        await session.send_text("and now?")
        await collect(session, turn_end())
    truncates = [
        f for f in openai_frames_in(openai_emulator) if f["type"] == "conversation.item.truncate"
    ]
    assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [(item_id, 200)]
    out = openai_emulator.sessions[-1].frames_out
    assert [e["audio_end_ms"] for e in out if e["type"] == "conversation.item.truncated"] == [200]
    assert not [e for e in out if e["type"] == "error" and "audio_end_ms" in json.dumps(e)]


async def test_gemini_gets_pcm16_and_answers_in_mu_law(gemini_emulator: GeminiEmulator) -> None:
    config = gemini_config(gemini_emulator, sample_rate=8000, audio_format="pcmu")
    async with await s2s.new("gemini_live", config).start() as session:
        await send_mulaw(session, caller_mulaw(2.0))
        events = await collect(session, turn_end())
        assert session._audio_in.resampler is not None  # transcoded: 8 kHz -> 16 kHz
    sent = [json.loads(f) for f in gemini_emulator.sessions[-1].frames_in]
    audio_in = [f["realtimeInput"]["audio"] for f in sent if "realtimeInput" in f]
    assert {a["mimeType"] for a in audio_in} == {"audio/pcm;rate=16000"}
    assert gemini_emulator.sessions[-1].audio_received_ms == pytest.approx(2800, abs=40)
    (user,) = final_text(events, Role.USER)
    (answer,) = final_text(events, Role.ASSISTANT)
    assert heard_seconds(user) == pytest.approx(voiced(2.0, 8000), abs=0.1)
    audio = audio_events(events)
    assert audio and all(e.encoding == "pcmu" and e.sample_rate == 8000 for e in audio)
    expected_ms = len(speech_for_text(answer, 24000)) / 48
    assert audio_ms(events) == pytest.approx(expected_ms, abs=25)  # nothing lost transcoding
    reply = b"".join(e.audio or b"" for e in audio)
    assert len(reply) == pytest.approx(expected_ms * 8, abs=200)  # one byte a sample
    assert rms_dbfs(ulaw_to_pcm16(reply)) > -40
