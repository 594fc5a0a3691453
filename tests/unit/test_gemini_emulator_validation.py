"""The emulator parses client messages as proto3 JSON, refusing what production refuses."""

from __future__ import annotations

import json

import pytest

from s2s.emulators.gemini.validation import Refusal, parse

SDK_SETUP = {  # what google-genai 3.4.0 sends (protocols.md §2.2): keys of both spellings
    "setup": {
        "model": "models/gemini-live-2.5-flash-preview",
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
        },
        "systemInstruction": {"parts": [{"text": "be nice"}], "role": "user"},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "description": "w",
                        "name": "get_weather",
                        "parameters_json_schema": {
                            "type": "object",
                            "properties": {"city_name": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    }
                ]
            }
        ],
        "sessionResumption": {},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "realtimeInputConfig": {"automatic_activity_detection": {"disabled": False}},
        "contextWindowCompression": {"trigger_tokens": 25600, "sliding_window": {}},
    }
}


def refusal(message: object) -> str:
    result = parse(json.dumps(message))
    assert isinstance(result, Refusal), result
    assert result.code == 1007
    return result.reason


def test_the_sdks_mixed_spelling_is_accepted_and_user_data_is_kept():
    message, kind = parse(json.dumps(SDK_SETUP))
    assert kind == "setup"
    setup = message.setup
    assert (
        setup.generation_config.speech_config.voice_config.prebuilt_voice_config.voice_name
        == "Kore"
    )
    declaration = setup.tools[0].function_declarations[0]
    assert declaration.parameters_json_schema["properties"] == {"city_name": {"type": "string"}}
    assert declaration.parameters_json_schema["additionalProperties"] is False
    assert setup.context_window_compression.trigger_tokens == 25600


@pytest.mark.parametrize(
    "message",
    [
        {"realtime_input": {"audio": {"data": "AAAA", "mime_type": "audio/pcm;rate=16000"}}},
        {"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}}},
        {
            "tool_response": {
                "function_responses": [{"id": "a", "name": "f", "response": {"x_y": 1}}]
            }
        },
        {
            "client_content": {
                "turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                "turnComplete": True,
            }
        },
    ],
)
def test_snake_and_camel_case_at_every_level(message):
    parsed, _ = parse(json.dumps(message))
    assert parsed is not None


def test_unknown_fields_are_refused_with_the_production_reason():
    assert refusal({"setup": {"model": "m", "bogus": 1}}) == (
        "Invalid JSON payload received. Unknown name \"bogus\" at 'setup': Cannot find field."
    )
    assert refusal({"realtimeInput": {"audioChunk": {}}}) == (
        "Invalid JSON payload received. Unknown name \"audioChunk\" at 'realtime_input': "
        "Cannot find field."
    )


def test_json_schema_keywords_in_parameters_are_unknown_fields():
    message = {
        "setup": {
            "model": "models/gemini-3.8-live",
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"my_arg": {"type": "STRING", "const": "x"}},
                            },
                        }
                    ]
                }
            ],
        }
    }
    assert refusal(message) == (
        'Invalid JSON payload received. Unknown name "const" at '
        "'setup.tools[0].function_declarations[0].parameters.properties[\"my_arg\"]': "
        "Cannot find field."
    )
    message["setup"]["tools"][0]["functionDeclarations"][0]["parameters"] = {
        "type": "OBJECT",
        "additionalProperties": False,
    }
    assert 'Unknown name "additionalProperties"' in refusal(message)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "Invalid JSON payload received. Unexpected token."),
        ("[1, 2]", "Expected an object"),
        ("{}", "sets none of setup"),
        (
            json.dumps({"setup": {"model": "m"}, "realtimeInput": {"text": "x"}}),
            "Oneof field 'message_type' is already set. Cannot set 'realtime_input'",
        ),
        (
            json.dumps({"setup": {"model": "m", "generationConfig": {"temperature": "hot"}}}),
            "Invalid value at 'setup.generation_config.temperature' (TYPE_FLOAT), \"hot\"",
        ),
        (
            json.dumps({"toolResponse": {"functionResponses": [{"scheduling": "LATER"}]}}),
            "Invalid value at 'tool_response.function_responses[0].scheduling' (TYPE_ENUM)",
        ),
        (json.dumps({"setup": {}}), "Invalid value at 'setup.model': the field is required."),
    ],
)
def test_malformed_messages(raw, reason):
    result = parse(raw)
    assert isinstance(result, Refusal) and reason in result.reason
