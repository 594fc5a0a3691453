import pickle

import pytest

import s2s
from s2s import Config, ToolCall, ToolDefinition, ToolResult


def test_defaults_match_the_documented_api():
    config = Config()
    assert (config.voice, config.model, config.instructions) == (None, None, None)
    assert list(config.tools) == [] and dict(config.extra) == {}
    assert config.sample_rate == 24000


@pytest.mark.parametrize("rate", [7999, 48001, 0, -16000])
def test_sample_rate_out_of_range_is_refused(rate):
    with pytest.raises(s2s.ConfigurationError, match=f"sample_rate={rate}"):
        Config(sample_rate=rate)


@pytest.mark.parametrize("rate", ["16000", 16000.0, True])
def test_sample_rate_must_be_an_int(rate):
    with pytest.raises(s2s.ConfigurationError, match="sample_rate must be an int"):
        Config(sample_rate=rate)


def test_duplicate_tool_names_are_refused():
    tool = ToolDefinition("lookup", "d")
    with pytest.raises(s2s.ConfigurationError, match="'lookup' twice"):
        Config(tools=[tool, tool])


def test_tools_must_be_tool_definitions():
    with pytest.raises(s2s.ConfigurationError, match="ToolDefinition objects, got dict"):
        Config(tools=[{"name": "x"}])


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dots.not.allowed"])
def test_bad_tool_names_are_refused(name):
    with pytest.raises(s2s.ConfigurationError, match="tool name"):
        ToolDefinition(name)


def test_tool_parameters_must_describe_an_object():
    with pytest.raises(s2s.ConfigurationError, match="type 'object'"):
        ToolDefinition("t", parameters={"type": "string"})
    with pytest.raises(s2s.ConfigurationError, match="JSON Schema object"):
        ToolDefinition("t", parameters=["not", "a", "dict"])
    with pytest.raises(s2s.ConfigurationError, match="not JSON-serialisable"):
        ToolDefinition("t", parameters={"type": "object", "default": object()})


def test_replace_merges_extra_and_names_unknown_fields():
    config = Config(voice="marin", extra={"api_key": "k", "base_url": "ws://x"})
    changed = config.replace(voice="cedar", extra={"base_url": "ws://y"})
    assert changed.voice == "cedar"
    assert dict(changed.extra) == {"api_key": "k", "base_url": "ws://y"}
    with pytest.raises(s2s.ConfigurationError, match="unknown Config field.*vioce"):
        config.replace(vioce="cedar")


def test_config_round_trips_through_plain_data_and_pickle():
    config = Config(
        voice="marin",
        instructions="hi",
        sample_rate=8000,
        tools=[ToolDefinition("t", "d", {"type": "object", "properties": {}})],
        extra={"turn_detection": "none"},
    )
    assert Config.from_dict(config.to_dict()) == config
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(s2s.ConfigurationError, match="unknown Config field"):
        Config.from_dict({"voise": "x"})


def test_tool_call_args_parses_json_objects_only():
    assert ToolCall("c1", "t", '{"a": 1}').args == {"a": 1}
    assert ToolCall("c1", "t", "").args == {}
    with pytest.raises(s2s.InvalidInputError, match="not valid JSON"):
        ToolCall("c1", "t", "{nope").args  # noqa: B018
    with pytest.raises(s2s.InvalidInputError, match="not an object"):
        ToolCall("c1", "t", "[1]").args  # noqa: B018


def test_tool_result_validates_and_encodes_json():
    assert ToolResult.from_value("c1", {"ok": True}).content == '{"ok": true}'
    with pytest.raises(s2s.InvalidInputError, match="content must be a string, got dict"):
        ToolResult("c1", {"ok": True})  # type: ignore[arg-type]
    with pytest.raises(s2s.InvalidInputError, match="call_id"):
        ToolResult("", "x")
