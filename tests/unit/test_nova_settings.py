"""Nova settings resolution and the input-event models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import s2s
from s2s.providers.nova import DEFAULT_MODEL, resolve, wire


def test_defaults():
    settings = resolve(s2s.Config(), {})
    assert settings.model == DEFAULT_MODEL == "amazon.nova-2-sonic-v1:0"
    assert settings.region == "us-east-1"
    assert settings.endpoint == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert settings.voice == "matthew" and settings.credentials is None
    assert settings.rotate_after_s == 360 and settings.rotate_deadline_s == 450


def test_region_from_extra_or_environment_and_endpoint_override():
    assert resolve(s2s.Config(), {"AWS_REGION": "us-west-2"}).endpoint.endswith(
        "us-west-2.amazonaws.com"
    )
    settings = resolve(
        s2s.Config(extra={"region": "eu-north-1", "base_url": "https://localhost:8443/x"}), {}
    )
    assert settings.region == "eu-north-1" and settings.endpoint == "https://localhost:8443"


def test_credentials_never_print_their_secret():
    settings = resolve(
        s2s.Config(extra={"aws_access_key_id": "AKID", "aws_secret_access_key": "s3cr3t"}), {}
    )
    assert "s3cr3t" not in repr(settings)


def test_endpointing_needs_nova_2():
    with pytest.raises(s2s.ConfigurationError, match="Nova 2"):
        resolve(
            s2s.Config(model="amazon.nova-sonic-v1:0", extra={"endpointing_sensitivity": "LOW"}),
            {},
        )


def test_input_models_refuse_unknown_keys_and_bad_values():
    good = {
        "event": {
            "contentStart": {
                "promptName": "p",
                "contentName": "c",
                "type": "AUDIO",
                "interactive": True,
                "role": "USER",
                "audioInputConfiguration": {
                    "mediaType": "audio/lpcm",
                    "sampleRateHertz": 16000,
                    "sampleSizeBits": 16,
                    "channelCount": 1,
                    "audioType": "SPEECH",
                    "encoding": "base64",
                },
            }
        }
    }
    name, body = wire.InputEvent.parse(good)
    assert name == "contentStart" and isinstance(body, wire.ContentStart)
    bad_rate = {"event": {"contentStart": {**good["event"]["contentStart"]}}}
    bad_rate["event"]["contentStart"]["audioInputConfiguration"] = {
        **good["event"]["contentStart"]["audioInputConfiguration"],
        "sampleRateHertz": 44100,
    }
    with pytest.raises(ValidationError, match="sampleRateHertz"):
        wire.InputEvent.parse(bad_rate)
    with pytest.raises(ValidationError, match="inputAudio"):
        wire.InputEvent.parse({"event": {"inputAudio": {}}})  # Beluga's invented event
    with pytest.raises(ValidationError, match="type"):
        wire.InputEvent.parse({"type": "sessionStart"})  # not the Nova envelope
    with pytest.raises(ValueError, match="exactly one"):
        wire.InputEvent.parse({"event": {}})


def test_the_interrupted_marker():
    assert wire.is_interrupted_marker(wire.INTERRUPTED_TEXT)
    assert wire.is_interrupted_marker('{"interrupted":true}')
    assert not wire.is_interrupted_marker("interrupted")
    assert not wire.is_interrupted_marker('{"interrupted": false}')
