import pickle

import pytest

import s2s
from s2s import EventType, Role, SessionEvent, ToolCall, Usage


def test_every_error_is_an_s2s_error():
    for name in s2s.errors.__all__:
        assert issubclass(getattr(s2s.errors, name), s2s.S2SError)


def test_retryable_defaults_follow_the_tree():
    assert s2s.ProviderConnectionError("x").retryable
    assert s2s.SessionExpiredError("x").retryable
    assert s2s.RateLimitError("x").retryable
    assert not s2s.AuthenticationError("x").retryable
    assert not s2s.InvalidRequestError("x").retryable
    assert not s2s.ProviderError("x", retryable=False).retryable
    assert s2s.ProviderError("x", retryable=True).retryable


def test_invalid_input_is_also_a_value_and_type_error():
    with pytest.raises(ValueError, match="bad"):
        raise s2s.InvalidInputError("bad")
    with pytest.raises(TypeError, match="bad"):
        raise s2s.InvalidInputError("bad")


def test_errors_keep_code_provider_and_retryable_through_pickle():
    err = s2s.AuthenticationError("refused", code="invalid_api_key", provider="openai_realtime")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is s2s.AuthenticationError
    assert (copy.code, copy.provider, copy.retryable) == (
        "invalid_api_key",
        "openai_realtime",
        False,
    )
    assert "invalid_api_key" in str(copy)


def test_event_round_trips_through_plain_data():
    events = [
        SessionEvent(
            EventType.AUDIO_OUTPUT,
            audio=b"\x01\x00" * 10,
            sample_rate=16000,
            item_id="i1",
            response_id="r1",
        ),
        SessionEvent(EventType.TRANSCRIPT, text="hi", role=Role.USER, final=True),
        SessionEvent(EventType.TOOL_CALL, tool_call=ToolCall("c", "n", "{}")),
        SessionEvent(EventType.TOOL_CALL_CANCELLED, call_ids=("a", "b")),
        SessionEvent(EventType.USAGE, usage=Usage(input_tokens=3, total_tokens=3)),
        SessionEvent(EventType.SESSION_RESUMED, reason="go_away", data={"gap_ms": 12.5}),
    ]
    for event in events:
        back = SessionEvent.from_dict(event.to_dict())
        assert back == event
    err = SessionEvent(EventType.ERROR, error=s2s.RateLimitError("slow", code="429"))
    back = SessionEvent.from_dict(err.to_dict())
    assert isinstance(back.error, s2s.RateLimitError) and back.error.code == "429"


def test_audio_duration():
    event = SessionEvent(EventType.AUDIO_OUTPUT, audio=bytes(3200), sample_rate=16000)
    assert event.duration_ms == pytest.approx(100.0)


def test_event_type_has_the_documented_values():
    assert EventType.AUDIO_OUTPUT == "audio_output"
    assert EventType.TEXT_OUTPUT == "text_output"
    assert EventType.TRANSCRIPT == "transcript"
    assert EventType.TOOL_CALL == "tool_call"
    assert EventType.TURN_END == "turn_end"
    assert EventType.ERROR == "error"
