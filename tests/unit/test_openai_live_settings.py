"""GPT-Live settings: what a Config becomes, and the clear errors for what it cannot be."""

from __future__ import annotations

import pytest

import s2s
from s2s.providers.openai_live import resolve


def settings(extra: dict | None = None, **config):
    return resolve(s2s.Config(extra={"api_key": "k", **(extra or {})}, **config), environ={})


def test_defaults_and_url_forms():
    st = settings()
    assert (st.model, st.voice, st.delegation_model) == ("gpt-live-1", "marin", "gpt-5.6-luna")
    assert st.url == "wss://api.openai.com/v1/live/sessions"
    assert (
        settings({"base_url": "http://127.0.0.1:9/v1"}).url == "ws://127.0.0.1:9/v1/live/sessions"
    )
    assert settings({"base_url": "wss://h/v1/live/sessions/"}).url == "wss://h/v1/live/sessions"
    assert st.turn_gap_ms == 800 and st.idle_after_ms == 300 and st.idle_frame_ms == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "gpt-realtime"}, "Realtime model"),
        ({"model": "gpt-live-2"}, "unknown model"),
        ({"voice": "nobody"}, "unknown voice"),
        ({"extra": {"turn_gap_ms": 5}}, "turn_gap_ms"),
        ({"extra": {"store": "yes"}}, "store"),
        ({"extra": {"base_url": "ftp://x"}}, "base_url"),
    ],
)
def test_refusals_name_the_problem(kwargs, message):
    with pytest.raises(s2s.ConfigurationError, match=message):
        settings(**kwargs)


def test_missing_key_and_unknown_extra():
    with pytest.raises(s2s.MissingCredentialsError, match="OPENAI_API_KEY"):
        resolve(s2s.Config(), environ={})
    with pytest.raises(s2s.ConfigurationError, match="unknown Config.extra key"):
        s2s.new("openai_live", s2s.Config(extra={"api_key": "k", "turn_detection": "server_vad"}))


def test_session_config_carries_backend_settings():
    st = settings(
        {"backend_instructions": "Be exact.", "acknowledgement_delay_ms": 300, "store": True},
        model="gpt-live-1.1",
        voice="voice_abc",
    )
    session = st.session_config([])
    assert session["model"] == "gpt-live-1.1" and "input" not in session
    assert session["audio"]["output"] == {"voice": "voice_abc"}
    assert session["delegation"] == {
        "type": "responses",
        "responses": {"model": "gpt-5.6-luna", "tools": [], "instructions": "Be exact."},
        "acknowledgement_delay_ms": 300,
    }
    assert session["store"] is True
