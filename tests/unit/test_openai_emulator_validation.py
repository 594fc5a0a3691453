"""The emulator refuses bad client events with the production error codes."""

import json

import pytest
from pydantic import BaseModel

from s2s.emulators.openai.validation import validate


def check(message: dict | str):
    raw = message if isinstance(message, str) else json.dumps(message)
    return validate(raw)


def test_valid_ga_events_parse():
    assert isinstance(
        check(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": 24000},
                            "turn_detection": None,
                        }
                    },
                },
            }
        ),
        BaseModel,
    )
    assert isinstance(check({"type": "response.create"}), BaseModel)


def test_unknown_event_type_lists_the_supported_ones():
    code, message, param = check({"type": "response.audio.delta"})
    assert code == "invalid_value" and param == "type"
    assert "session.update" in message and "response.create" in message


def test_unknown_parameter_names_its_path():
    assert check({"type": "session.update", "session": {"type": "realtime", "bogus": 1}}) == (
        "unknown_parameter",
        "Unknown parameter: 'session.bogus'.",
        "session.bogus",
    )
    code, _, param = check(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "sillence_ms": 3}}},
            },
        }
    )
    assert (code, param) == ("unknown_parameter", "session.audio.input.turn_detection.sillence_ms")


def test_beta_session_shape_is_refused():
    code, _, param = check(
        {
            "type": "session.update",
            "session": {"modalities": ["audio"], "voice": "alloy", "input_audio_format": "pcm16"},
        }
    )
    assert code == "unknown_parameter" and param.startswith("session.")


def test_missing_session_type():
    code, message, param = check({"type": "session.update", "session": {}})
    assert code == "missing_required_parameter" and param == "session.type"


def test_wrong_rate_is_integer_below_min_value():
    code, message, param = check(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
        }
    )
    assert code == "integer_below_min_value"
    assert param == "session.audio.input.format.rate"
    assert "Expected a value >= 24000, but got 16000 instead." in message


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", "invalid_json"),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter"),
        ({"type": "input_audio_buffer.append", "audio": 5}, "invalid_type"),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": -1,
            },
            "integer_below_min_value",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "robot", "content": []},
            },
            "invalid_value",
        ),
        ({"no": "type"}, "missing_required_parameter"),
    ],
)
def test_error_codes(message, code):
    assert check(message)[0] == code
