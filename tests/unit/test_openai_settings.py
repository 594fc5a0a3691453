import pytest

import s2s
from s2s.providers.openai_realtime import resolve


def cfg(**extra):
    return s2s.Config(extra={"api_key": "k", **extra})


def test_key_from_extra_or_environment_else_a_clear_error(monkeypatch):
    assert resolve(cfg()).api_key == "k"
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert resolve(s2s.Config()).api_key == "from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(s2s.MissingCredentialsError, match="OPENAI_API_KEY"):
        resolve(s2s.Config())


def test_defaults_are_the_ga_ones():
    settings = resolve(cfg())
    assert settings.model == "gpt-realtime" and settings.voice == "marin"
    assert settings.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("ws://127.0.0.1:9/v1/realtime", "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"),
        ("http://127.0.0.1:9/v1", "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"),
        ("https://proxy.example/v1/", "wss://proxy.example/v1/realtime?model=gpt-realtime"),
    ],
)
def test_base_url_forms(base, url):
    assert resolve(cfg(base_url=base)).url == url


def test_bad_base_url():
    with pytest.raises(s2s.ConfigurationError, match="base_url"):
        resolve(cfg(base_url="ftp://x"))


def test_turn_detection_modes():
    assert resolve(cfg(turn_detection="none")).turn_detection is None
    semantic = resolve(cfg(turn_detection="semantic_vad", eagerness="high")).turn_detection
    assert semantic == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    server = resolve(cfg(silence_duration_ms=800, vad_threshold=0.7)).turn_detection
    assert server["silence_duration_ms"] == 800 and server["threshold"] == 0.7
    with pytest.raises(s2s.ConfigurationError, match="turn_detection 'push_to_talk'"):
        resolve(cfg(turn_detection="push_to_talk"))
    with pytest.raises(s2s.ConfigurationError, match="vad_threshold"):
        resolve(cfg(vad_threshold=2))


def test_transcription_can_be_turned_off_or_tuned():
    assert resolve(cfg(transcription_model=None)).transcription is None
    tr = resolve(cfg(transcription_model="whisper-1", transcription_language="de")).transcription
    assert tr == {"model": "whisper-1", "language": "de"}


def test_retired_models_and_unknown_voices_are_refused():
    with pytest.raises(s2s.ConfigurationError, match="retired"):
        resolve(s2s.Config(model="gpt-4o-realtime-preview", extra={"api_key": "k"}))
    with pytest.raises(s2s.ConfigurationError, match="unknown voice 'robot'"):
        resolve(s2s.Config(voice="robot", extra={"api_key": "k"}))


def test_unknown_extra_keys_are_named():
    with pytest.raises(s2s.ConfigurationError, match="unknown Config.extra key.*turn_detecton"):
        s2s.new("openai_realtime", cfg(turn_detecton="none"))


def test_tool_choice_by_name_must_be_declared():
    tools = [s2s.ToolDefinition("lookup")]
    conf = s2s.Config(tools=tools, extra={"api_key": "k", "tool_choice": "lookup"})
    assert resolve(conf).tool_choice == {"type": "function", "name": "lookup"}
    with pytest.raises(s2s.ConfigurationError, match="not a declared tool"):
        resolve(cfg(tool_choice="other"))
