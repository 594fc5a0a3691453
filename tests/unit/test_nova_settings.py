"""Nova settings resolution and the input-event models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import s2s
from s2s.providers.nova import DEFAULT_MODEL, resolve, wire


def test_defaults():
    settings = resolve(s2s.Config(), {})
    assert settings.model == DEFAULT_MODEL == "amazon.nova-2-5-sonic"
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


def test_nova_sonic_v1_is_refused_naming_its_end_of_life_and_replacement():
    with pytest.raises(s2s.ConfigurationError, match="2026-09-14") as info:
        resolve(s2s.Config(model="amazon.nova-sonic-v1:0"), {})
    assert "'amazon.nova-2-5-sonic'" in str(info.value)


@pytest.mark.parametrize("model", ["amazon.nova-2-5-sonic", "amazon.nova-2-sonic-v1:0"])
def test_every_served_model_takes_endpointing_sensitivity(model):
    settings = resolve(s2s.Config(model=model, extra={"endpointing_sensitivity": "HIGH"}), {})
    assert settings.model == model and settings.endpointing == "HIGH"


def test_nova_2_5_only_in_its_regions():
    for region in ("us-east-1", "us-west-2", "eu-north-1", "ap-northeast-1"):
        assert resolve(s2s.Config(extra={"region": region}), {}).region == region
    with pytest.raises(s2s.ConfigurationError, match="ap-southeast-2") as info:
        resolve(s2s.Config(), {"AWS_REGION": "ap-southeast-2"})
    assert "ap-northeast-1, eu-north-1, us-east-1, us-west-2" in str(info.value)
    # Nova 2 Sonic's regions are not checked (only 2.5's are documented).
    assert resolve(s2s.Config(model="amazon.nova-2-sonic-v1:0", extra={"region": "eu-west-1"}), {})


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
