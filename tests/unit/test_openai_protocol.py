"""The OpenAI Realtime protocol object, driven by scripted server events (no sockets)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.conversation import FunctionCall, FunctionOutput, Message
from s2s.providers.openai_realtime import OpenAIRealtimeProtocol, resolve
from s2s.providers.openai_realtime.protocol import State


def make(
    extra: dict[str, Any] | None = None, continuation: s2s.Continuation | None = None, **config: Any
) -> OpenAIRealtimeProtocol:
    cfg = s2s.Config(extra={"api_key": "k", **(extra or {})}, **config)
    return OpenAIRealtimeProtocol(cfg, resolve(cfg), continuation)


def sent(proto: OpenAIRealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in proto.data_to_send()]


def types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] for f in frames]


def feed(proto: OpenAIRealtimeProtocol, event: dict[str, Any], now: float = 0.0) -> None:
    proto.receive_data(json.dumps(event), now)


def ready(proto: OpenAIRealtimeProtocol, now: float = 0.0) -> list[dict[str, Any]]:
    proto.connection_made(now)
    feed(proto, {"type": "session.created", "session": {"expires_at": 1}}, now)
    feed(proto, {"type": "session.updated", "session": {}}, now)
    return sent(proto)


def audio_delta(item: str, ms: int, response: str = "resp_1") -> dict[str, Any]:
    pcm = bytes(48 * ms)  # 24 kHz PCM16: 48 bytes per ms
    return {
        "type": "response.output_audio.delta",
        "response_id": response,
        "item_id": item,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }


def test_setup_sends_one_ga_session_update_then_flushes_queued_input():
    proto = make(instructions="be brief", voice="cedar")
    proto.connection_made(0)
    proto.send_audio(b"\x00\x01" * 240, 0)
    proto.send_text("hello", 0)
    assert proto.data_to_send() == [] and not proto.ready  # nothing before session.created
    feed(proto, {"type": "session.created", "session": {}})
    (update,) = sent(proto)
    assert update["type"] == "session.update"
    session = update["session"]
    assert session["type"] == "realtime" and session["instructions"] == "be brief"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "cedar"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert "modalities" not in session and "voice" not in session  # no beta-shape fields
    feed(proto, {"type": "session.updated", "session": {}})
    assert proto.ready
    assert types(sent(proto)) == [
        "input_audio_buffer.append",
        "conversation.item.create",
        "response.create",
    ]


def test_text_turn_events_and_history():
    proto = make()
    ready(proto)
    proto.send_text("hi", 0)
    assert types(sent(proto)) == ["conversation.item.create", "response.create"]
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    feed(
        proto,
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "item": {"type": "message", "id": "item_a", "role": "assistant"},
        },
    )
    feed(proto, audio_delta("item_a", 100))
    feed(
        proto,
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": "Hello",
        },
    )
    feed(
        proto,
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "resp_1",
            "item_id": "item_a",
            "transcript": "Hello there",
        },
    )
    feed(
        proto,
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 7,
                    "total_tokens": 12,
                    "input_token_details": {"text_tokens": 5},
                    "output_token_details": {"audio_tokens": 6, "text_tokens": 1},
                },
            },
        },
    )
    feed(proto, {"type": "rate_limits.updated", "rate_limits": [{"name": "tokens"}]})
    events = proto.events_received()
    assert [e.type for e in events] == [
        EventType.RESPONSE_STARTED,
        EventType.AUDIO_OUTPUT,
        EventType.TRANSCRIPT,
        EventType.TRANSCRIPT,
        EventType.USAGE,
        EventType.TURN_END,
        EventType.RATE_LIMITS,
    ]
    audio = events[1]
    assert audio.sample_rate == 24000 and len(audio.audio) == 4800 and audio.item_id == "item_a"
    assert events[3].final and events[3].text == "Hello there" and events[3].role is Role.ASSISTANT
    assert events[4].usage.output_audio_tokens == 6 and events[4].usage.total_tokens == 12
    assert events[5].reason == "completed"
    assert list(proto.conversation) == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "Hello there", "item_a"),
    ]


def _tool_calls(proto: OpenAIRealtimeProtocol, *calls: str, response: str = "resp_t") -> None:
    feed(proto, {"type": "response.created", "response": {"id": response}})
    for call in calls:
        feed(
            proto,
            {
                "type": "response.function_call_arguments.done",
                "response_id": response,
                "item_id": f"item_{call}",
                "output_index": 0,
                "call_id": call,
                "name": "lookup",
                "arguments": json.dumps({"id": call}),
            },
        )
        # output_item.done repeats the call; it must not be reported twice
        feed(
            proto,
            {
                "type": "response.output_item.done",
                "response_id": response,
                "item": {
                    "type": "function_call",
                    "call_id": call,
                    "name": "lookup",
                    "arguments": "{}",
                    "id": f"item_{call}",
                },
            },
        )


def test_parallel_tool_calls_get_all_outputs_then_exactly_one_response_create():
    proto = make()
    ready(proto)
    _tool_calls(proto, "call_1", "call_2")
    calls = [e.tool_call for e in proto.events_received() if e.type is EventType.TOOL_CALL]
    assert [c.id for c in calls] == ["call_1", "call_2"] and calls[0].args == {"id": "call_1"}
    feed(proto, {"type": "response.done", "response": {"id": "resp_t", "status": "completed"}})
    ends = [e for e in proto.events_received() if e.type is EventType.TURN_END]
    assert ends[0].reason == "tool_calls"
    assert not proto.idle
    proto.send_tool_result(ToolResult("call_2", '{"ok": 2}'), 0)
    assert types(sent(proto)) == ["conversation.item.create"]  # waits for call_1
    proto.send_tool_result(ToolResult("call_1", '{"ok": 1}'), 0)
    assert types(sent(proto)) == ["conversation.item.create", "response.create"]
    with pytest.raises(s2s.InvalidInputError, match="tool call 'call_1' was already answered"):
        proto.send_tool_result(ToolResult("call_1", "again"), 0)


def test_results_before_response_done_wait_for_it():
    proto = make()
    ready(proto)
    _tool_calls(proto, "call_1")
    proto.send_tool_result(ToolResult("call_1", "42"), 0)
    assert types(sent(proto)) == ["conversation.item.create"]  # response still active
    feed(proto, {"type": "response.done", "response": {"id": "resp_t", "status": "completed"}})
    assert types(sent(proto)) == ["response.create"]
    assert not proto.idle  # a response was requested
    feed(proto, {"type": "response.created", "response": {"id": "resp_2"}})
    feed(proto, {"type": "response.done", "response": {"id": "resp_2", "status": "completed"}})
    assert proto.idle and sent(proto) == []


def test_text_during_an_active_response_is_answered_after_it():
    proto = make()
    ready(proto)
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    proto.send_text("and another thing", 0)
    assert types(sent(proto)) == ["conversation.item.create"]
    feed(proto, {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    assert types(sent(proto)) == ["response.create"]


def test_unknown_tool_result_names_the_open_calls():
    proto = make()
    ready(proto)
    _tool_calls(proto, "call_9")
    with pytest.raises(s2s.InvalidInputError, match="open calls: call_9"):
        proto.send_tool_result(ToolResult("call_x", "1"), 0)


def test_error_result_is_sent_as_json_error():
    proto = make()
    ready(proto)
    _tool_calls(proto, "call_1")
    proto.send_tool_result(ToolResult("call_1", "database down", is_error=True), 0)
    (create,) = sent(proto)
    assert json.loads(create["item"]["output"]) == {"error": "database down"}
    # history keeps the result as given; a new connection gets the same encoding
    assert list(proto.conversation)[-1] == FunctionOutput("call_1", "database down", True)
    again = make(continuation=proto.continuation("connection_lost"))
    replayed = [f for f in ready(again) if f.get("item", {}).get("type") == "function_call_output"]
    assert json.loads(replayed[0]["item"]["output"]) == {"error": "database down"}


def answer_with_audio(
    proto: OpenAIRealtimeProtocol, ms: int, now: float, audio: dict[str, Any] | None = None
) -> None:
    """A response whose item ``item_a`` has received ``ms`` of audio at ``now`` (``audio``: the
    delta message, default ``ms`` of PCM16)."""
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}}, now)
    feed(
        proto,
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "item": {"type": "message", "id": "item_a", "role": "assistant"},
        },
        now,
    )
    feed(
        proto,
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": "0123456789",
        },
        now,
    )
    feed(proto, audio if audio is not None else audio_delta("item_a", ms), now)


def test_barge_in_truncates_to_the_wall_clock_estimate():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 2000, now=100.0)
    proto.events_received()
    feed(
        proto,
        {"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0},
        now=100.5,
    )
    events = proto.events_received()
    assert [e.type for e in events] == [EventType.SPEECH_STARTED, EventType.INTERRUPTED]
    (truncate,) = sent(proto)  # no response.cancel: server VAD cancels by itself
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 500,
    }
    assert proto.conversation.messages()[-1].text == "01"  # the heard quarter of the transcript
    # late audio of the cut item is dropped, not played
    feed(proto, audio_delta("item_a", 100), now=100.6)
    assert proto.events_received() == []


def test_barge_in_uses_playback_reports_over_the_wall_clock():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 800, now=0.0)
    proto.report_playback("item_a", 300)  # the phone network buffered; the caller heard less
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now=0.6)
    assert sent(proto)[0]["audio_end_ms"] == 300


def test_a_fully_played_finished_answer_is_not_truncated():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 800, now=0.0)
    feed(proto, {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    proto.report_playback("item_a", 5000)  # more than arrived: clamped to 800, all heard
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now=0.2)
    assert sent(proto) == []


def test_a_running_answer_is_cut_even_when_all_received_audio_was_heard():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 800, now=0.0)
    proto.report_playback("item_a", 800)  # heard all that arrived; the server made more
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now=0.9)
    assert sent(proto)[0]["audio_end_ms"] == 800
    feed(proto, audio_delta("item_a", 100), now=0.95)  # in flight before the cancel
    assert [e.type for e in proto.events_received()] == [
        EventType.RESPONSE_STARTED,
        EventType.TRANSCRIPT,
        EventType.AUDIO_OUTPUT,
        EventType.SPEECH_STARTED,
        EventType.INTERRUPTED,
    ]


def test_barge_in_before_anything_was_heard_deletes_the_item():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 800, now=0.0)
    proto.report_playback("item_a", 0)
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now=0.3)
    assert sent(proto) == [{"type": "conversation.item.delete", "item_id": "item_a"}]
    assert not proto.conversation.has_item("item_a")


def test_speech_after_playback_finished_is_not_an_interruption():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 500, now=0.0)
    feed(proto, {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now=5.0)
    assert [e.type for e in proto.events_received()][-1] is EventType.SPEECH_STARTED
    assert sent(proto) == []


def test_interrupt_cancels_and_truncates_and_tolerates_a_finished_response():
    proto = make()
    ready(proto)
    answer_with_audio(proto, 3000, now=0.0)
    proto.interrupt(now=1.0)
    frames = sent(proto)
    assert types(frames) == ["response.cancel", "conversation.item.truncate"]
    assert frames[1]["audio_end_ms"] == 1000
    assert proto.events_received()[-1].type is EventType.INTERRUPTED
    # the response had just ended on the server: the harmless error is swallowed
    feed(
        proto,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "no active response",
                "event_id": frames[0]["event_id"],
            },
        },
    )
    assert proto.events_received() == []


def test_non_fatal_errors_become_error_events():
    proto = make()
    ready(proto)
    feed(
        proto,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "unknown_parameter",
                "param": "x.y",
                "message": "Unknown parameter: 'x.y'.",
            },
        },
    )
    (event,) = proto.events_received()
    assert event.type is EventType.ERROR and event.error.code == "unknown_parameter"
    assert "x.y" in str(event.error) and proto.failure is None


@pytest.mark.parametrize(
    ("code", "close", "error_type"),
    [
        ("invalid_api_key", 3000, s2s.AuthenticationError),
        ("invalid_model", 4000, s2s.InvalidRequestError),
        ("beta_api_shape_disabled", 4000, s2s.InvalidRequestError),
    ],
)
def test_fatal_errors_are_reported_with_the_close(code, close, error_type):
    proto = make()
    proto.connection_made(0)
    feed(
        proto,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": code, "message": f"nope: {code}"},
        },
    )
    assert proto.events_received() == []
    error = proto.connection_lost(close, f"invalid_request_error.{code}", 0)
    assert isinstance(error, error_type) and error.code == code and not error.retryable
    assert code in str(error)


def test_session_expired_and_dropped_connections_are_retryable():
    proto = make()
    ready(proto)
    feed(
        proto,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": "60 minutes",
            },
        },
    )
    err = proto.connection_lost(1001, "", 0)
    assert isinstance(err, s2s.SessionExpiredError) and err.retryable
    assert make().connection_lost(1006, "", 0).retryable
    assert make().connection_lost(None, "", 0).retryable


def test_a_refused_session_update_fails_the_connection():
    proto = make()
    proto.connection_made(0)
    feed(proto, {"type": "session.created", "session": {}})
    feed(
        proto,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "event_id": "s2s_setup",
                "message": "Invalid value: 'robot'.",
            },
        },
    )
    assert isinstance(proto.failure, s2s.InvalidRequestError)


def test_rotation_waits_for_the_answer_to_end():
    proto = make(extra={"rotate_after_s": 10, "max_session_s": 60})
    ready(proto, now=0.0)
    assert proto.deadline == 10.0
    feed(proto, {"type": "response.created", "response": {"id": "r"}}, now=9.0)
    proto.timer_expired(10.0)
    assert proto.rotation is None and proto.deadline == 55.0  # hard limit minus 5 s margin
    feed(proto, {"type": "response.done", "response": {"id": "r", "status": "completed"}}, 11.0)
    assert proto.rotation == "session_limit"


def test_rotation_is_forced_at_the_hard_limit():
    proto = make(extra={"rotate_after_s": 10, "max_session_s": 60})
    ready(proto, now=0.0)
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u"}, now=9.0)
    proto.timer_expired(10.0)
    assert proto.rotation is None  # the caller is talking
    proto.timer_expired(55.0)
    assert proto.rotation == "session_limit"


def test_continuation_replays_history_pending_audio_and_open_calls():
    old = make()
    ready(old)
    old.send_text("my order is A1", 0)
    _tool_calls(old, "call_1")
    feed(old, {"type": "response.done", "response": {"id": "resp_t", "status": "completed"}})
    old.send_audio(b"\x01\x00" * 24000, 0)  # 1 s the server has not committed yet
    carry = old.continuation("connection_lost")
    assert len(carry.pending_audio) == 48000
    new = make(continuation=carry)
    frames = ready(new)
    assert types(frames) == [
        "session.update",
        "conversation.item.create",
        "conversation.item.create",
        "input_audio_buffer.append",
    ]
    assert frames[1]["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "my order is A1"}],
    }
    assert frames[2]["item"]["type"] == "function_call" and frames[2]["item"]["call_id"] == "call_1"
    assert len(base64.b64decode(frames[3]["audio"])) == 48000
    # the open call can be answered on the new connection, and gets its response
    new.send_tool_result(ToolResult("call_1", "shipped"), 0)
    assert types(sent(new)) == ["conversation.item.create", "response.create"]
    assert isinstance(list(new.conversation)[-1], FunctionOutput)


def test_committed_audio_is_not_replayed():
    proto = make()
    ready(proto)
    proto.send_audio(b"\x01\x00" * 2400, 0)
    feed(proto, {"type": "input_audio_buffer.committed", "item_id": "item_u"})
    feed(
        proto,
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_u",
            "content_index": 0,
            "transcript": "hello",
        },
    )
    carry = proto.continuation("x")
    assert carry.pending_audio == b""
    assert carry.conversation.messages() == [Message(Role.USER, "hello", "item_u")]
    events = proto.events_received()
    assert events[-1].type is EventType.TRANSCRIPT and events[-1].role is Role.USER
    assert events[-1].final


def test_audio_sent_while_a_commit_notice_was_in_flight_stays_pending():
    """The server commits at speech_stopped.audio_end_ms; audio we sent after that point, before
    the notice arrived, is the next turn's and must still be replayed by a continuation."""
    proto = make()
    ready(proto)
    proto.send_audio(b"\x01\x00" * 24000, 0)  # 1 s: the turn
    proto.send_audio(b"\x02\x00" * 7200, 0)  # 300 ms sent after the server's commit point
    feed(proto, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1000, "item_id": "u"})
    feed(proto, {"type": "input_audio_buffer.committed", "item_id": "u"})
    assert proto.continuation("x").pending_audio == b"\x02\x00" * 7200
    # a continuation's replayed audio counts: the new connection's offsets include it
    new = make(continuation=proto.continuation("x"))
    ready(new)
    new.send_audio(b"\x03\x00" * 2400, 0)  # 100 ms
    feed(new, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 300, "item_id": "v"})
    feed(new, {"type": "input_audio_buffer.committed", "item_id": "v"})
    assert new.continuation("x").pending_audio == b"\x03\x00" * 2400


def test_a_manual_commit_takes_what_was_sent_before_it():
    proto = make(extra={"turn_detection": None})
    ready(proto)
    proto.send_audio(b"\x01\x00" * 4800, 0)
    proto.end_turn(0)
    proto.send_audio(b"\x02\x00" * 2400, 0)  # after the commit: the next turn
    feed(proto, {"type": "input_audio_buffer.committed", "item_id": "u"})
    assert proto.continuation("x").pending_audio == b"\x02\x00" * 2400


def test_manual_turn_detection_commits_and_requests_a_response():
    proto = make(extra={"turn_detection": "none"})
    frames = ready(proto)
    assert frames[0]["session"]["audio"]["input"]["turn_detection"] is None
    proto.send_audio(b"\x00\x00" * 2400, 0)
    proto.end_turn(0)
    assert types(sent(proto)) == [
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]


def test_closed_protocol_refuses_input():
    proto = make()
    ready(proto)
    proto.close(0)
    assert proto.state is State.CLOSED
    with pytest.raises(s2s.SessionClosedError):
        proto.send_text("late", 0)
    assert proto.connection_lost(1000, "", 0) is None


def test_history_items_from_a_continuation_keep_order():
    conv = s2s.Conversation(
        [
            Message(Role.USER, "a"),
            Message(Role.ASSISTANT, "b", "i1"),
            FunctionCall("c1", "lookup", "{}", "i2"),
            FunctionOutput("c1", "done"),
            Message(Role.USER, "", "i3"),
        ]
    )
    frames = ready(make(continuation=s2s.Continuation(conversation=conv)))
    items = [f["item"] for f in frames if f["type"] == "conversation.item.create"]
    assert [i.get("role", i["type"]) for i in items] == [
        "user",
        "assistant",
        "function_call",
        "function_call_output",
    ]  # empty transcript skipped
    assert items[1]["content"] == [{"type": "output_text", "text": "b"}]
