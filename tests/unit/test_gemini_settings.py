"""Gemini Live settings: defaults, credentials, URLs, the setup message and every bad value."""

from __future__ import annotations

import pytest

import s2s
from s2s.providers.gemini_live import DEFAULT_MODEL, resolve

LOOKUP = s2s.ToolDefinition("lookup_order", "status", {"type": "object", "properties": {}})


def cfg(tools: list[s2s.ToolDefinition] | None = None, **extra: object) -> s2s.Config:
    return s2s.Config(extra={"api_key": "k", **extra}, tools=tools or [])


def test_key_from_extra_or_either_environment_variable_else_a_clear_error(monkeypatch):
    assert resolve(cfg()).headers == {"x-goog-api-key": "k"}
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    assert resolve(s2s.Config()).api_key == "gemini"
    monkeypatch.setenv("GOOGLE_API_KEY", "google")  # GOOGLE_API_KEY wins, as in the SDK
    assert resolve(s2s.Config()).api_key == "google"
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(s2s.MissingCredentialsError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        resolve(s2s.Config())


def test_defaults():
    settings = resolve(cfg())
    assert settings.model == DEFAULT_MODEL == "gemini-3.8-live"
    assert settings.url == (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    setup = settings.setup()["setup"]
    assert setup["model"] == "models/gemini-3.8-live"
    assert setup["generationConfig"] == {"responseModalities": ["AUDIO"]}  # no voice: omitted
    assert setup["sessionResumption"] == {"transparent": True}
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}
    assert "tools" not in setup and "systemInstruction" not in setup and "proactivity" not in setup


@pytest.mark.parametrize(
    ("base", "version", "url"),
    [
        ("https://127.0.0.1:9", "v1", "wss://127.0.0.1:9/ws/google.ai.generativelanguage.v1."),
        (
            "http://127.0.0.1:9/",
            "v1alpha",
            "ws://127.0.0.1:9/ws/google.ai.generativelanguage.v1alpha.",
        ),
        (
            "wss://proxy.example/ws/google.ai.generativelanguage.v1beta.GenerativeService."
            "BidiGenerateContent",
            "v1",
            "wss://proxy.example/ws/google.ai.generativelanguage.v1beta.",  # a full path is kept
        ),
    ],
)
def test_base_url_and_api_version(base, version, url):
    assert resolve(cfg(base_url=base, api_version=version)).url.startswith(url)


def test_ephemeral_tokens_use_the_constrained_method():
    settings = resolve(cfg(api_key="auth_tokens/abc", api_version="v1alpha"))
    assert settings.headers == {"Authorization": "Token auth_tokens/abc"}
    assert settings.url.endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")
    with pytest.raises(s2s.ConfigurationError, match="v1alpha"):
        resolve(cfg(api_key="auth_tokens/abc"))


def test_tools_are_declared_with_json_schema_and_behavior():
    settings = resolve(cfg([LOOKUP], non_blocking_tools=["lookup_order"]))
    (declaration,) = settings.setup()["setup"]["tools"][0]["functionDeclarations"]
    assert declaration == {
        "name": "lookup_order",
        "description": "status",
        "parametersJsonSchema": {"type": "object", "properties": {}},
        "behavior": "NON_BLOCKING",
    }
    assert settings.scheduling("lookup_order") == "WHEN_IDLE"


def test_voice_vad_and_generation_knobs():
    settings = resolve(
        s2s.Config(
            voice="Aoede",
            model="models/gemini-3.1-flash-live-preview",
            extra={
                "api_key": "k",
                "turn_detection": "none",
                "end_sensitivity": "high",
                "activity_handling": "no_interruption",
                "turn_coverage": "all_input",
                "temperature": 0.4,
                "proactive_audio": True,
                "api_version": "v1alpha",
                "transparent_resumption": False,
                "compression_trigger_tokens": 20000,
            },
        )
    )
    setup = settings.setup(handle="h")["setup"]
    assert setup["model"] == "models/gemini-3.1-flash-live-preview"
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"] == {
        "prebuiltVoiceConfig": {"voiceName": "Aoede"}
    }
    assert setup["generationConfig"]["temperature"] == 0.4
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {
            "disabled": True,
            "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
        },
        "activityHandling": "NO_INTERRUPTION",
        "turnCoverage": "TURN_INCLUDES_ALL_INPUT",
    }
    assert setup["sessionResumption"] == {"handle": "h"}
    assert setup["proactivity"] == {"proactiveAudio": True}
    assert setup["contextWindowCompression"]["triggerTokens"] == 20000
    assert settings.manual_turns and not settings.interrupts


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (cfg(api_version="v2"), "api_version 'v2'"),
        (cfg(base_url="ftp://x"), "base_url"),
        (
            cfg(base_url="wss://x/ws/google.ai.generativelanguage.v9.Other"),
            "not a BidiGenerateContent",
        ),
        (cfg(ca_file="/nonexistent/ca.pem"), "ca_file"),
        (cfg(turn_detection="semantic_vad"), "turn_detection"),
        (cfg(start_sensitivity="medium"), "start_sensitivity"),
        (cfg(activity_handling="sometimes"), "activity_handling"),
        (cfg(silence_duration_ms=-1), "silence_duration_ms"),
        (cfg(temperature="hot"), "temperature"),
        (cfg(input_transcription="yes"), "input_transcription"),
        (cfg(language_code=""), "language_code"),
        (cfg(non_blocking_tools=["nope"]), "'nope', which is not a declared tool"),
        (cfg([LOOKUP], non_blocking_tools={"lookup_order": "later"}), "later"),
        (cfg(non_blocking_tools="lookup_order"), "non_blocking_tools"),
        (s2s.Config(voice="Bob", extra={"api_key": "k"}), "unknown voice 'Bob'"),
        (cfg(api_key=42), "api_key must be a string"),
    ],
)
def test_bad_settings_are_named(config, message):
    with pytest.raises(s2s.ConfigurationError, match=message):
        resolve(config)


def test_unknown_extra_keys_are_refused_by_the_provider():
    with pytest.raises(s2s.ConfigurationError, match="unknown Config.extra key\\(s\\) vad"):
        s2s.new("gemini_live", cfg(vad="on"))


def test_the_registry_lists_gemini_live():
    assert "gemini_live" in s2s.list_providers()
