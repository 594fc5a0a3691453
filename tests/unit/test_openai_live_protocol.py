"""The GPT-Live protocol object, driven by scripted server frames (no sockets, no clock)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openai.types.live import ClientEvent
from pydantic import TypeAdapter

import s2s
from s2s import EventType, Role, ToolResult
from s2s.conversation import FunctionCall, FunctionOutput, Message
from s2s.providers.openai_live import OpenAILiveProtocol, resolve
from s2s.providers.openai_live.protocol import State, history_input

CLIENT = TypeAdapter(ClientEvent)
VOICED = b"\x10\x00" * 2400  # 100 ms of non-silent 24 kHz PCM16
QUIET = bytes(4800)  # 100 ms of digital silence


def make(
    extra: dict[str, Any] | None = None, continuation: s2s.Continuation | None = None, **config: Any
) -> OpenAILiveProtocol:
    cfg = s2s.Config(extra={"api_key": "k", **(extra or {})}, **config)
    return OpenAILiveProtocol(cfg, resolve(cfg), continuation)


def sent(proto: OpenAILiveProtocol) -> list[dict[str, Any]]:
    frames = [json.loads(frame) for frame in proto.data_to_send()]
    for frame in frames:
        CLIENT.validate_python(frame)  # every frame is a valid SDK ClientEvent
    return frames


def types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] for f in frames]


def feed(proto: OpenAILiveProtocol, event: dict[str, Any], now: float = 0.0) -> None:
    proto.receive_data(json.dumps(event), now)


def started(proto: OpenAILiveProtocol, now: float = 0.0) -> list[dict[str, Any]]:
    proto.connection_made(now)
    feed(
        proto,
        {"type": "session.started", "event_id": "e1", "session": {"id": "live_1", "expires_at": 9}},
        now,
    )
    return sent(proto)


def audio(proto: OpenAILiveProtocol, pcm: bytes, now: float = 0.0) -> None:
    feed(
        proto, {"type": "session.output_audio.delta", "delta": base64.b64encode(pcm).decode()}, now
    )


def fragment(proto: OpenAILiveProtocol, who: str, text: str, start: int, end: int) -> None:
    kind = "output" if who == "assistant" else "input"
    feed(
        proto,
        {
            "type": f"session.{kind}_transcript.delta",
            "event_id": "e",
            "delta": text,
            "start_ms": start,
            "end_ms": end,
        },
    )


def of(events: list[s2s.SessionEvent], kind: EventType) -> list[s2s.SessionEvent]:
    return [e for e in events if e.type is kind]


def test_session_start_first_and_input_held_until_started():
    proto = make(instructions="be brief", voice="cedar", tools=[s2s.ToolDefinition("lookup")])
    proto.connection_made(0)
    proto.send_audio(VOICED, 0)
    proto.send_text("I prefer email", 0)
    (start,) = sent(proto)
    assert start["type"] == "session.start"
    session = start["session"]
    assert session["model"] == "gpt-live-1" and session["instructions"] == "be brief"
    assert session["audio"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "output": {"voice": "cedar"},
    }
    delegation = session["delegation"]
    assert delegation["type"] == "responses"
    assert delegation["responses"]["model"] == "gpt-5.6-luna"
    assert [t["name"] for t in delegation["responses"]["tools"]] == ["lookup"]
    assert not proto.ready
    feed(proto, {"type": "session.started", "event_id": "e", "session": {"id": "live_1"}})
    assert proto.ready and proto.session_id == "live_1"
    held = sent(proto)
    assert types(held) == ["session.input_audio.append", "session.thinking.append"]
    assert held[1] == {
        "type": "session.thinking.append",
        "content": "I prefer email",
        "delegation_id": None,
    }


def test_assistant_turn_is_synthesized_from_audio_and_fragments():
    proto = make()
    started(proto)
    audio(proto, QUIET)
    audio(proto, QUIET)
    assert proto.events_received() == []  # silence between turns is dropped
    audio(proto, VOICED)  # 200-300 ms
    fragment(proto, "assistant", "Hello", 200, 300)
    audio(proto, QUIET)  # silence inside the turn is kept
    fragment(proto, "assistant", " there.", 300, 400)
    audio(proto, VOICED)  # 300-400... up to 500 ms
    events = proto.events_received()
    assert [e.type for e in events][:2] == [EventType.RESPONSE_STARTED, EventType.AUDIO_OUTPUT]
    assert events[0].response_id == "live_resp_1" and events[0].item_id == "live_item_1"
    assert len(of(events, EventType.AUDIO_OUTPUT)) == 3
    assert [e.text for e in of(events, EventType.TRANSCRIPT)] == ["Hello", " there."]
    assert not proto.idle
    for _ in range(8):  # 800 ms of model silence: not yet a gap
        audio(proto, QUIET)
    assert of(proto.events_received(), EventType.TURN_END) == []
    audio(proto, QUIET)
    events = proto.events_received()
    (final,) = [e for e in of(events, EventType.TRANSCRIPT) if e.final]
    assert final.text == "Hello there." and final.role is Role.ASSISTANT
    (end,) = of(events, EventType.TURN_END)
    assert end.reason == "completed" and end.item_id == "live_item_1"
    assert proto.idle
    assert proto.conversation.messages() == [Message(Role.ASSISTANT, "Hello there.", "live_item_1")]
    audio(proto, QUIET)
    assert proto.events_received() == []


def test_a_late_fragment_after_the_gap_opens_a_new_turn():
    proto = make(extra={"turn_gap_ms": 500})
    started(proto)
    fragment(proto, "assistant", "One.", 0, 200)
    fragment(proto, "assistant", "Two.", 900, 1000)
    ends = of(proto.events_received(), EventType.TURN_END)
    assert [e.item_id for e in ends] == ["live_item_1"]
    assert proto._assistant is not None and proto._assistant.item_id == "live_item_2"


def test_user_fragments_are_partial_then_final_when_the_model_answers():
    proto = make()
    started(proto)
    fragment(proto, "user", "Where is", 0, 200)
    fragment(proto, "user", " my order", 200, 400)
    events = proto.events_received()
    assert [(e.text, e.final) for e in of(events, EventType.TRANSCRIPT)] == [
        ("Where is", False),
        (" my order", False),
    ]
    audio(proto, VOICED)  # the model starts: the caller's turn closes
    fragment(proto, "user", "?", 400, 450)  # late closing punctuation opens no new turn
    events = proto.events_received()
    finals = [e for e in of(events, EventType.TRANSCRIPT) if e.final]
    assert [(e.text, e.role) for e in finals] == [("Where is my order", Role.USER)]
    assert proto.conversation.messages()[0].text == "Where is my order?"
    assert proto._user is None


def test_a_sentence_end_followed_by_a_capital_gets_a_space():
    proto = make()
    started(proto)
    fragment(proto, "user", "Hi.", 0, 100)
    fragment(proto, "user", "Are you there", 100, 300)
    audio(proto, VOICED)
    assert proto.conversation.messages()[0].text == "Hi. Are you there"


def test_caller_speech_over_the_model_is_speech_started_once():
    proto = make()
    started(proto)
    audio(proto, VOICED)
    fragment(proto, "user", "wait", 50, 100)
    fragment(proto, "user", " a moment", 100, 200)
    assert len(of(proto.events_received(), EventType.SPEECH_STARTED)) == 1


def test_interrupt_stops_delivery_and_records_only_what_was_heard():
    proto = make()
    started(proto)
    audio(proto, VOICED)  # 0-100
    fragment(proto, "assistant", "Your order", 0, 100)
    audio(proto, VOICED)  # 100-200
    fragment(proto, "assistant", " shipped", 100, 200)
    proto.events_received()
    proto.report_playback("live_item_1", 150)
    proto.interrupt(0)
    (cut,) = proto.events_received()
    assert cut.type is EventType.INTERRUPTED and cut.reason == "client"
    audio(proto, VOICED)  # the model keeps talking: nothing reaches the application
    fragment(proto, "assistant", " on Monday.", 200, 300)
    assert proto.events_received() == []
    for _ in range(9):
        audio(proto, QUIET)
    (end,) = proto.events_received()
    assert end.type is EventType.TURN_END and end.reason == "cancelled"
    assert proto.conversation.messages() == [
        Message(Role.ASSISTANT, "Your order shipped", "live_item_1")
    ]
    proto.interrupt(0)  # nothing playing: no event
    assert proto.events_received() == []


def response_event(proto: OpenAILiveProtocol, delegation: str, event: dict[str, Any]) -> None:
    feed(
        proto,
        {"type": "response.event", "event_id": "e", "delegation_id": delegation, "event": event},
    )


def call_item(call_id: str, name: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "response.output_item.done",
        "item": {
            "id": "fc_" + call_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": '{"x": 1}',
        },
    }


def test_delegated_calls_get_exactly_one_response_create_after_all_are_answered():
    proto = make(tools=[s2s.ToolDefinition("a"), s2s.ToolDefinition("b")])
    started(proto)
    response_event(proto, "del_1", {"type": "response.created", "response": {"id": "r1"}})
    response_event(proto, "del_1", call_item("c1", "a", status="in_progress"))  # not a call yet
    response_event(proto, "del_1", call_item("c1", "a"))
    response_event(proto, "del_1", call_item("c2", "b"))
    response_event(proto, "del_1", call_item("c2", "b"))  # repeated: reported once
    calls = of(proto.events_received(), EventType.TOOL_CALL)
    assert [(e.tool_call.id, e.data["delegation_id"]) for e in calls] == [
        ("c1", "del_1"),
        ("c2", "del_1"),
    ]
    assert not proto.idle
    proto.send_tool_result(ToolResult("c1", "one"), 0)
    proto.send_tool_result(ToolResult("c2", "two", is_error=True), 0)
    frames = sent(proto)
    assert types(frames) == ["response.item.create", "response.item.create"]  # backend busy
    assert frames[1]["item"]["output"] == json.dumps({"error": "two"})
    usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    response_event(
        proto, "del_1", {"type": "response.completed", "response": {"id": "r1", "usage": usage}}
    )
    assert types(sent(proto)) == ["response.create"]
    (used,) = of(proto.events_received(), EventType.USAGE)
    assert used.usage is not None and used.usage.total_tokens == 7
    response_event(proto, "del_1", {"type": "response.completed", "response": {"id": "r2"}})
    assert sent(proto) == []  # the continuation's completion asks for nothing more
    assert proto.idle
    with pytest.raises(s2s.InvalidInputError, match="already answered"):
        proto.send_tool_result(ToolResult("c1", "again"), 0)
    items = list(proto.conversation)
    assert [type(i) for i in items] == [FunctionCall, FunctionCall, FunctionOutput, FunctionOutput]


def test_a_failed_delegation_cancels_its_calls():
    proto = make(tools=[s2s.ToolDefinition("a")])
    started(proto)
    response_event(proto, "del_1", {"type": "response.created", "response": {"id": "r1"}})
    response_event(proto, "del_1", call_item("c1", "a"))
    response_event(
        proto,
        "del_1",
        {"type": "response.failed", "response": {"id": "r1", "status": "failed"}},
    )
    events = proto.events_received()
    assert of(events, EventType.TOOL_CALL_CANCELLED)[0].call_ids == ("c1",)
    assert of(events, EventType.ERROR)
    with pytest.raises(s2s.InvalidInputError, match="cancelled"):
        proto.send_tool_result(ToolResult("c1", "late"), 0)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "insufficient_quota", "code": "insufficient_quota"}, s2s.QuotaExceededError),
        ({"type": "insufficient_quota", "code": "new_code"}, s2s.QuotaExceededError),
        (
            {"type": "invalid_request_error", "code": "credit_balance_exhausted"},
            s2s.QuotaExceededError,
        ),
        (
            {"type": "invalid_request_error", "code": "billing_hard_limit_reached"},
            s2s.QuotaExceededError,
        ),
        ({"type": "invalid_request_error", "code": "invalid_api_key"}, s2s.AuthenticationError),
        ({"type": "invalid_request_error", "code": "account_deactivated"}, s2s.AuthenticationError),
        ({"type": "forbidden", "code": None}, s2s.AuthenticationError),
        ({"type": "invalid_request_error", "code": "invalid_model"}, s2s.ModelUnavailableError),
    ],
)
def test_fatal_errors_set_failure_with_the_provider_code(error, expected):
    proto = make()
    started(proto)
    feed(proto, {"type": "error", "event_id": "e", "error": {**error, "message": "no"}})
    assert type(proto.failure) is expected
    assert not proto.failure.retryable and proto.failure.provider == "openai_live"
    assert proto.failure.code == (error["code"] or error["type"])
    assert proto.events_received() == []


def test_recoverable_errors_are_error_events():
    proto = make()
    started(proto)
    for code, kind in [("rate_limit_exceeded", "rate_limit_error"), ("invalid_value", "x")]:
        feed(proto, {"type": "error", "event_id": "e", "error": {"type": kind, "code": code}})
    rate, other = of(proto.events_received(), EventType.ERROR)
    assert isinstance(rate.error, s2s.RateLimitError) and rate.error.code == "rate_limit_exceeded"
    assert type(other.error) is s2s.ProviderError and other.error.code == "invalid_value"
    assert proto.failure is None


def test_an_error_before_session_started_fails_the_start():
    proto = make()
    proto.connection_made(0)
    feed(proto, {"type": "error", "event_id": "e", "error": {"type": "x", "code": "bad"}})
    assert isinstance(proto.failure, s2s.InvalidRequestError) and proto.failure.code == "bad"


@pytest.mark.parametrize(
    ("reason", "expected", "retryable"),
    [
        ("expired", s2s.SessionExpiredError, True),
        ("connection_lost", s2s.ProviderConnectionError, True),
        ("content", s2s.ProviderError, False),
        ("remote_hangup", s2s.SessionClosedError, False),
        ("close_requested", None, False),
    ],
)
def test_session_closed_reasons(reason, expected, retryable):
    proto = make()
    started(proto)
    feed(
        proto, {"type": "session.closed", "reason": reason, "session": {}, "usage": {"seconds": 3}}
    )
    error = proto.connection_lost(1000, "", 0)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected and error.retryable is retryable
    assert proto.usage_seconds == 3


def test_idle_silence_keeps_the_timeline_moving():
    proto = make()
    assert proto.deadline is None
    started(proto, now=10.0)
    assert proto.deadline == pytest.approx(10.3)
    proto.timer_expired(10.2)
    assert sent(proto) == []
    proto.timer_expired(10.3)
    (frame,) = sent(proto)
    assert base64.b64decode(frame["audio"]) == bytes(4800)  # 100 ms of silence
    assert proto.deadline == pytest.approx(10.4)
    proto.send_audio(VOICED, 10.35)  # the application speaks: silence waits 300 ms again
    assert proto.deadline == pytest.approx(10.65)
    sent(proto)
    proto.close(11.0)
    assert types(sent(proto)) == ["session.close"] and proto.deadline is None
    with pytest.raises(s2s.SessionClosedError):
        proto.send_audio(VOICED, 11.0)


def test_continuation_seeds_the_new_session_with_text_history():
    conversation = s2s.Conversation(
        [
            Message(Role.USER, "where is A1"),
            FunctionCall("c1", "lookup_order", '{"id": "A1"}'),
            FunctionOutput("c1", '{"status": "shipped"}'),
            Message(Role.ASSISTANT, "It shipped."),
            Message(Role.USER, ""),
        ]
    )
    proto = make(continuation=s2s.Continuation(conversation=conversation))
    proto.connection_made(0)
    (start,) = sent(proto)
    assert start["session"]["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "where is A1"}]},
        {
            "role": "developer",
            "content": [
                {
                    "type": "input_text",
                    "text": 'The lookup_order tool was called with {"id": "A1"}.',
                }
            ],
        },
        {
            "role": "developer",
            "content": [
                {
                    "type": "input_text",
                    "text": 'The lookup_order tool returned {"status": "shipped"}.',
                }
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "It shipped."}]},
    ]
    many = s2s.Conversation([Message(Role.USER, f"m{i}") for i in range(200)])
    newest = history_input(many)
    assert len(newest) == 128 and newest[-1]["content"][0]["text"] == "m199"
    snapshot = proto.continuation("session_expired")
    assert snapshot.pending_audio == b"" and snapshot.conversation == conversation


def test_continuation_includes_the_turns_in_progress_and_ids_stay_unique():
    proto = make()
    started(proto)
    fragment(proto, "user", "hello", 0, 100)
    snapshot = proto.continuation("x")
    assert snapshot.conversation.messages() == [Message(Role.USER, "hello", "live_item_1")]
    following = make(continuation=snapshot)
    started(following)
    fragment(following, "user", "again", 0, 100)
    audio(following, VOICED)
    assert [m.item_id for m in following.conversation.messages()] == ["live_item_1", "live_item_2"]


def test_a_carried_call_is_answered_as_spoken_commentary():
    conversation = s2s.Conversation([FunctionCall("c9", "lookup_order", "{}")])
    proto = make(continuation=s2s.Continuation(conversation=conversation))
    started(proto)
    proto.send_tool_result(ToolResult("c9", "ok"), 0)
    (frame,) = sent(proto)
    assert frame["type"] == "session.commentary.append" and "lookup_order" in frame["content"]
    assert frame["delegation_id"] is None  # the key is required even when null


def test_end_turn_is_a_no_op_and_state_after_close():
    proto = make()
    started(proto)
    proto.end_turn(0)
    assert sent(proto) == []
    assert proto.state is State.READY


def test_pending_audio_of_a_failover_goes_first():
    carry = s2s.Continuation(pending_audio=VOICED * 2 + b"\x01", reason="failover")
    proto = make(continuation=carry)
    proto.connection_made(0)
    proto.send_audio(QUIET, 0)
    sent(proto)
    feed(proto, {"type": "session.started", "event_id": "e", "session": {"id": "live_1"}})
    appended = [base64.b64decode(f["audio"]) for f in sent(proto)]
    assert appended == [VOICED, VOICED, QUIET]
