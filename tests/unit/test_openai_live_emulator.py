"""Pieces of the GPT-Live emulator without a socket: client-event validation and the voice."""

from __future__ import annotations

import json

import pytest

from s2s.emulators.openai_live.schema import validate
from s2s.emulators.openai_live.speech import Voice, fragments


def check(event: dict) -> tuple[str, str, str | None] | None:
    result = validate(json.dumps(event))
    return result if isinstance(result, tuple) else None


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "session.begin"}, "invalid_value", "type"),
        ({"type": "session.start", "session": {}}, "missing_required_parameter", "session.model"),
        (
            {"type": "session.start", "session": {"model": "gpt-live-1", "voice": "marin"}},
            "unknown_parameter",
            "session.voice",
        ),
        (
            {
                "type": "session.start",
                "session": {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcm"}}},
            },
            "missing_required_parameter",
            "session.audio.format.rate",
        ),
        (
            {"type": "session.commentary.append", "content": "hi"},
            "missing_required_parameter",
            "delegation_id",
        ),
        ({"type": "decision.create"}, "missing_required_parameter", "event_id"),
    ],
)
def test_client_events_are_validated_strictly(event, code, param):
    failure = check(event)
    assert failure is not None and failure[0] == code and failure[2] == param


def test_valid_events_pass():
    assert (
        check({"type": "session.commentary.append", "content": "hi", "delegation_id": None}) is None
    )
    start = {
        "type": "session.start",
        "event_id": "c1",
        "session": {
            "model": "gpt-live-1",
            "input": [{"role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}],
            "delegation": {"type": "responses", "responses": {"model": "m", "tools": []}},
        },
    }
    assert check(start) is None


def test_fragments_cover_the_span_with_their_own_leading_spaces():
    parts = fragments("one two three four five six", 1000, 1600, 200)
    assert [p.text for p in parts] == ["one two", " three four", " five six"]
    assert [(p.start_ms, p.end_ms) for p in parts] == [(1000, 1200), (1200, 1400), (1400, 1600)]
    assert fragments("", 0, 100, 200) == []


def test_the_voice_plays_queued_speech_then_silence_and_can_stop():
    voice = Voice(24000, 200)
    voice.say("Hello there, caller.", 1000)
    total = voice.queued_ms()
    assert voice.speaking and total > 500
    first = voice.take(4800)
    assert any(first) and voice.due(1000 + 100) == []
    done = voice.due(1000 + total)
    assert "".join(f.text for f in done) == "Hello there, caller."
    voice.say("More to say.", 2000)
    voice.stop()
    assert not voice.speaking and voice.take(480) == bytes(480) and voice.due(10_000) == []
