"""``audio_format`` through the service's create path (no servers): body -> spec -> the actor's
Config, the 400s, and what the session's public metadata shows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors import SessionSpec
from actors.spec import provider_config
from deployments.api import CreateSession
from deployments.errors import ApiError
from deployments.session_requests import build_spec
from deployments.web import audio_format, parse, public_meta
from s2s.service.config import ServiceConfig, TenantSettings
from s2s.tools.registry import pool_registries

CONFIG = ServiceConfig.model_validate(
    {
        "providers": {
            "openai_realtime": {"api_key_env": [], "extra": {"api_key": "sk-test"}},
            "gemini_live": {"api_key_env": [], "extra": {"api_key": "g-test"}},
        },
        "auth": {"api_keys": ["default-key-0123"]},
    }
)
POOLS, OWNER = pool_registries({n: p.modules for n, p in CONFIG.tool_pools.items()})


def spec_for(body: dict[str, Any]) -> SessionSpec:
    return build_spec(
        parse(CreateSession, json.dumps(body)),
        tenant_name="default",
        tenant=TenantSettings(),
        config=CONFIG,
        tools=POOLS["default"],
        tool_owner=OWNER,
    )


@pytest.mark.parametrize("provider", ["openai_realtime", "gemini_live"])
def test_a_pcmu_session_reaches_the_actors_config(provider: str) -> None:
    spec = spec_for({"provider": provider, "sample_rate": 8000, "audio_format": "pcmu"})
    assert spec.config["audio_format"] == "pcmu"
    config = provider_config(CONFIG, SessionSpec.from_dict(spec.to_dict()), environ={})
    assert (config.audio_format, config.sample_rate) == ("pcmu", 8000)
    meta = {"provider": provider, "spec": spec.to_dict(), "status": "live"}
    assert public_meta(meta)["audio_format"] == "pcmu" and "spec" not in public_meta(meta)


def test_pcm16_stays_the_default_and_old_sessions_read_as_pcm16() -> None:
    spec = spec_for({})
    assert spec.config["audio_format"] == "pcm16"
    old = {"spec": {"config": {"sample_rate": 24000}}}  # stored before the field existed
    assert audio_format(old) == "pcm16" and public_meta(old)["audio_format"] == "pcm16"


def test_pcmu_at_another_rate_is_a_400_naming_both_fields() -> None:
    with pytest.raises(ApiError) as caught:
        spec_for({"sample_rate": 16000, "audio_format": "pcmu"})
    assert caught.value.status == 400
    assert "audio_format" in caught.value.message and "sample_rate" in caught.value.message


def test_an_unknown_audio_format_is_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        spec_for({"sample_rate": 8000, "audio_format": "alaw"})
    assert caught.value.status == 400 and "audio_format" in caught.value.message
