"""Failover configuration: the library's Fallback, the service's lists, the carried audio."""

from __future__ import annotations

import pickle

import pytest

import s2s
from actors.spec import SessionSpec, provider_config
from deployments.api import CreateSession
from deployments.errors import ApiError
from deployments.session_requests import build_spec
from s2s.audio.formats import LinkAudio
from s2s.conversation import Conversation, FunctionCall
from s2s.errors import ConfigurationError
from s2s.failover import AudioCarrier, carry_over
from s2s.protocol import Continuation
from s2s.service.config import ServiceConfig
from s2s.tools.registry import pool_registries


def test_a_fallback_round_trips_and_takes_nothing_from_the_primary_extra() -> None:
    config = s2s.Config(
        model="gpt-realtime",
        extra={"api_key": "sk-x", "turn_detection": "server_vad"},
        failover=[s2s.Fallback("gemini_live", extra={"api_key": "g-key"}), s2s.Fallback("nova")],
    )
    again = s2s.Config.from_dict(config.to_dict())
    assert again == config == pickle.loads(pickle.dumps(config))
    moved = config.for_fallback(config.failover[0])
    assert moved.extra == {"api_key": "g-key"} and moved.model is None and moved.failover == []
    assert s2s.Fallback.from_dict("nova") == s2s.Fallback("nova")
    with pytest.raises(ConfigurationError, match="Fallback objects"):
        s2s.Config(failover=["nova"])  # type: ignore[list-item]


def test_an_unknown_fallback_provider_fails_when_the_engine_is_made() -> None:
    with pytest.raises(s2s.UnknownProviderError, match="no_such"):
        s2s.new(
            "openai_realtime",
            s2s.Config(extra={"api_key": "sk-x"}, failover=[s2s.Fallback("no_such")]),
        )


def _service(**changes: object) -> ServiceConfig:
    data: dict[str, object] = {
        "providers": {
            "openai_realtime": {"api_key_env": [], "extra": {"api_key": "sk-x"}},
            "gemini_live": {"api_key_env": [], "model": "gemini-3.8-live", "extra": {}},
        },
        "auth": {"api_keys": ["default-key-01"]},
        "failover": ["gemini_live", "nova"],
        "tenants": {
            "acme": {
                "keys_env": ["ACME_KEYS"],
                "provider_credentials": {"gemini_live": {"api_key": "ACME_GEMINI"}},
            },
            "globex": {"keys_env": ["GLOBEX_KEYS"], "providers": ["openai_realtime"]},
        },
    }
    data.update(changes)
    return ServiceConfig.model_validate(data)


def _spec(tenant: str, cfg: ServiceConfig | None = None, **body: object) -> SessionSpec:
    cfg = cfg or _service()
    pools, owner = pool_registries({n: p.modules for n, p in cfg.tool_pools.items()})
    return build_spec(
        CreateSession.model_validate({"tools": [], **body}),
        tenant_name=tenant,
        tenant=cfg.tenants[tenant],
        config=cfg,
        tools=pools["default"],
        tool_owner=owner,
    )


def test_the_service_list_is_the_default_and_skips_what_the_call_cannot_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_GEMINI", "acme-gemini-key")
    spec = _spec("acme")
    assert spec.failover == ["gemini_live"]  # nova is not offered here
    assert spec.failover_credentials == {"gemini_live": {"api_key": "ACME_GEMINI"}}
    config = provider_config(_service(), spec)
    (fallback,) = config.failover
    assert fallback.provider == "gemini_live" and fallback.model == "gemini-3.8-live"
    assert fallback.extra["api_key"] == "acme-gemini-key"  # read by the actor, never stored
    assert _spec("globex").failover == []  # globex may not use gemini_live


def test_a_request_list_is_checked_and_replaces_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_GEMINI", "acme-gemini-key")
    assert _spec("acme", failover=[]).failover == []
    for body, status, match in (
        ({"failover": ["nova"]}, 400, "not offered here"),
        ({"failover": ["gemini_live", "gemini_live"]}, 400, "each provider once"),
        ({"failover": ["openai_realtime"]}, 400, "not the session's own provider"),
    ):
        with pytest.raises(ApiError, match=match) as refused:
            _spec("acme", **body)
        assert refused.value.status == status
    with pytest.raises(ApiError, match="may not use provider") as forbidden:
        _spec("globex", failover=["gemini_live"])
    assert forbidden.value.status == 403


def test_a_missing_fallback_credential_names_that_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACME_GEMINI", raising=False)
    with pytest.raises(ApiError, match="'gemini_live' has no credentials") as refused:
        _spec("acme")
    assert refused.value.status == 503


def test_carried_audio_is_converted_to_the_next_providers_format() -> None:
    pcm_24k = b"\x10\x00" * 24000  # one second
    carrier = AudioCarrier(LinkAudio("pcm16", 24000, 24000), LinkAudio("pcm16", 16000, 24000))
    call = FunctionCall("call_1", "lookup_order", "{}", "item_1")
    moved = carry_over(
        Continuation(Conversation([call]), pcm_24k, {"handle": "h"}, "snapshot"), carrier
    )
    tail = carrier.flush()
    assert abs(len(moved.pending_audio) + len(tail) - 32000) <= 4  # one second at 16 kHz
    assert moved.state == {} and moved.reason == "failover"  # never the old provider's state
    assert [c.id for c in moved.conversation.pending_calls()] == ["call_1"]
    mulaw = AudioCarrier(LinkAudio("pcmu", 8000, 8000), LinkAudio("pcm16", 16000, 24000))
    decoded = mulaw.convert(b"\xff" * 8000) + mulaw.flush()
    assert abs(len(decoded) - 32000) <= 4  # mu-law decoded and resampled to 16 kHz PCM16
