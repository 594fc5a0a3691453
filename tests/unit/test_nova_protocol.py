"""The Nova protocol object, driven by scripted stream events (no sockets, no SDK)."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest

import s2s
from s2s import Role, ToolResult
from s2s.conversation import Conversation, FunctionCall, FunctionOutput, Message
from s2s.providers.nova import NovaProtocol, resolve, wire
from s2s.providers.nova.protocol import State, error_for


def make(continuation: s2s.Continuation | None = None, **config: Any) -> NovaProtocol:
    extra = {"aws_access_key_id": "AKID", "aws_secret_access_key": "secret"}
    extra.update(config.pop("extra", {}))
    cfg = s2s.Config(extra=extra, **config)
    counter = itertools.count(1)
    return NovaProtocol(cfg, resolve(cfg, {}), continuation, new_id=lambda: f"id{next(counter)}")


def sent(proto: NovaProtocol) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in proto.data_to_send():
        data = json.loads(frame)
        name, _ = wire.InputEvent.parse(data)  # every frame is a well-formed Nova input event
        out.append((name, data["event"][name]))
    return out


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [
        n if n != "contentStart" else f"contentStart:{b['type']}:{b['role']}" for n, b in events
    ]


def feed(proto: NovaProtocol, name: str, now: float = 0.0, **body: Any) -> None:
    proto.receive_data(json.dumps({"event": {name: body}}), now)


def ready(proto: NovaProtocol, now: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
    proto.connection_made(now)
    proto.receive_data(json.dumps({"streamAccepted": {}}), now)
    return sent(proto)


def block(proto: NovaProtocol, cid: str, kind: str, role: str, stage: str | None = None) -> None:
    fields = {"additionalModelFields": json.dumps({"generationStage": stage})} if stage else {}
    feed(proto, "contentStart", contentId=cid, type=kind, role=role, completionId="c1", **fields)


def text(proto: NovaProtocol, cid: str, role: str, stage: str, content: str, stop: str) -> None:
    block(proto, cid, "TEXT", role, stage)
    feed(proto, "textOutput", contentId=cid, role=role, content=content)
    feed(proto, "contentEnd", contentId=cid, type="TEXT", stopReason=stop)


def audio(proto: NovaProtocol, cid: str, ms: int, stop: str | None = "END_TURN") -> None:
    block(proto, cid, "AUDIO", "ASSISTANT")
    pcm = bytes(48 * ms)  # 24 kHz PCM16
    feed(proto, "audioOutput", contentId=cid, content=base64.b64encode(pcm).decode())
    if stop:
        feed(proto, "contentEnd", contentId=cid, type="AUDIO", stopReason=stop)


def answer(proto: NovaProtocol, said: str, n: int = 1) -> None:
    text(proto, f"s{n}", "ASSISTANT", "SPECULATIVE", said, "PARTIAL_TURN")
    audio(proto, f"a{n}", 200)
    text(proto, f"f{n}", "ASSISTANT", "FINAL", said, "END_TURN")


def kinds(proto: NovaProtocol) -> list[str]:
    return [e.type.value for e in proto.events_received()]


def test_the_opening_sequence():
    proto = make(instructions="Be brief.", voice="tiffany", tools=[s2s.ToolDefinition("t")])
    assert not proto.ready and proto.data_to_send() == []
    events = ready(proto)
    assert proto.ready and proto.state is State.READY
    assert names(events) == [
        "sessionStart",
        "promptStart",
        "contentStart:TEXT:SYSTEM",
        "textInput",
        "contentEnd",
        "contentStart:AUDIO:USER",
    ]
    prompt = events[1][1]
    assert prompt["audioOutputConfiguration"]["voiceId"] == "tiffany"
    assert json.loads(prompt["toolConfiguration"]["tools"][0]["toolSpec"]["inputSchema"]["json"])
    assert events[3][1]["content"] == "Be brief."
    assert events[5][1]["audioInputConfiguration"]["sampleRateHertz"] == 16000
    assert all(b.get("promptName", proto.prompt_name) == proto.prompt_name for _, b in events)


def test_endpointing_goes_into_session_start():
    proto = make(extra={"endpointing_sensitivity": "HIGH"})
    proto.connection_made(0)
    start = sent(proto)[0][1]
    assert start["turnDetectionConfiguration"] == {"endpointingSensitivity": "HIGH"}


def test_a_spoken_turn_maps_to_session_events():
    proto = make()
    ready(proto)
    proto.send_audio(b"\x10\x00" * 320, 0.0)
    assert names(sent(proto)) == ["audioInput"]
    feed(proto, "completionStart", completionId="c1")
    text(proto, "u1", "USER", "FINAL", "where is my order", "END_TURN")
    answer(proto, "It is on its way.")
    feed(proto, "usageEvent", details={"delta": {"input": {"speechTokens": 7}, "output": {}}})
    events = proto.events_received()
    assert [e.type.value for e in events] == [
        "transcript",  # user, final
        "response_started",
        "transcript",  # speculative preview
        "audio_output",
        "transcript",  # assistant, final
        "turn_end",
        "usage",
    ]
    assert events[0].role is Role.USER and events[0].final
    assert events[2].role is Role.ASSISTANT and not events[2].final
    assert events[4].final and events[4].text == "It is on its way."
    assert events[3].sample_rate == 24000 and len(events[3].audio) == 48 * 200
    assert events[5].reason == "completed"
    assert events[6].usage.input_audio_tokens == 7
    assert [m.text for m in proto.conversation.messages()] == [
        "where is my order",
        "It is on its way.",
    ]


def test_tool_use_becomes_a_tool_call_when_its_block_ends():
    proto = make(tools=[s2s.ToolDefinition("lookup")])
    ready(proto)
    block(proto, "t1", "TOOL", "TOOL")
    feed(proto, "toolUse", contentId="t1", toolName="lookup", toolUseId="tu1", content='{"a": 1}')
    assert "tool_call" not in kinds(proto)
    feed(proto, "contentEnd", contentId="t1", type="TOOL", stopReason="TOOL_USE")
    events = proto.events_received()
    assert [e.type.value for e in events] == ["tool_call", "turn_end"]
    assert events[0].tool_call == s2s.ToolCall("tu1", "lookup", '{"a": 1}')
    assert events[1].reason == "tool_calls" and not proto.idle
    proto.send_tool_result(ToolResult("tu1", '{"ok": true}'), 0)
    result = sent(proto)
    assert names(result) == ["contentStart:TOOL:TOOL", "toolResult", "contentEnd"]
    assert result[0][1]["toolResultInputConfiguration"]["toolUseId"] == "tu1"
    assert result[1][1]["content"] == '{"ok": true}'
    assert result[0][1]["contentName"] != proto.audio_content
    with pytest.raises(s2s.InvalidInputError, match="already answered"):
        proto.send_tool_result(ToolResult("tu1", "again"), 0)
    with pytest.raises(s2s.InvalidInputError, match="no tool call 'x'"):
        proto.send_tool_result(ToolResult("x", "?"), 0)


def test_a_failed_tool_result_is_sent_as_an_error_object():
    proto = make()
    ready(proto)
    block(proto, "t1", "TOOL", "TOOL")
    feed(proto, "toolUse", contentId="t1", toolName="x", toolUseId="tu1", content="{}")
    feed(proto, "contentEnd", contentId="t1", type="TOOL", stopReason="TOOL_USE")
    proto.send_tool_result(ToolResult("tu1", "database down", is_error=True), 0)
    assert sent(proto)[1][1]["content"] == '{"error": "database down"}'


def test_barge_in_interrupts_and_drops_the_rest_of_the_answer():
    proto = make()
    ready(proto)
    text(proto, "s1", "ASSISTANT", "SPECULATIVE", "A long answer", "PARTIAL_TURN")
    audio(proto, "a1", 100, stop=None)
    proto.events_received()
    feed(proto, "contentEnd", contentId="a1", type="AUDIO", stopReason="INTERRUPTED")
    feed(proto, "audioOutput", contentId="a1", content=base64.b64encode(bytes(96)).decode())
    block(proto, "f1", "TEXT", "ASSISTANT", "FINAL")
    feed(proto, "textOutput", contentId="f1", role="ASSISTANT", content="A long")
    feed(proto, "textOutput", contentId="f1", role="ASSISTANT", content=wire.INTERRUPTED_TEXT)
    feed(proto, "contentEnd", contentId="f1", type="TEXT", stopReason="INTERRUPTED")
    events = proto.events_received()
    assert [e.type.value for e in events] == ["interrupted", "transcript", "turn_end"]
    assert events[0].reason == "barge_in"
    assert events[1].text == "A long"  # what was actually spoken
    assert events[2].reason == "cancelled"


def test_the_interrupted_marker_alone_is_a_barge_in():
    proto = make()
    ready(proto)
    text(proto, "s1", "ASSISTANT", "SPECULATIVE", "Hi", "PARTIAL_TURN")
    proto.events_received()
    block(proto, "f1", "TEXT", "ASSISTANT", "FINAL")
    feed(proto, "textOutput", contentId="f1", content='{"interrupted":true}')
    assert kinds(proto) == ["interrupted"]


def test_interrupt_stops_delivery_since_nova_has_no_cancel():
    proto = make()
    ready(proto)
    text(proto, "s1", "ASSISTANT", "SPECULATIVE", "Hello there", "PARTIAL_TURN")
    audio(proto, "a1", 100, stop=None)
    proto.events_received()
    proto.interrupt(0)
    assert sent(proto) == []  # nothing to send: no client cancel event exists
    feed(proto, "audioOutput", contentId="a1", content=base64.b64encode(bytes(96)).decode())
    feed(proto, "contentEnd", contentId="a1", type="AUDIO", stopReason="END_TURN")
    text(proto, "f1", "ASSISTANT", "FINAL", "Hello there", "END_TURN")
    events = proto.events_received()
    assert [e.type.value for e in events] == ["interrupted", "turn_end"]
    assert events[0].reason == "client" and events[1].reason == "cancelled"


def test_send_text_is_an_interactive_user_block_split_under_1_kb():
    proto = make()
    ready(proto)
    proto.send_text("hello " * 400, 0)
    events = sent(proto)
    assert names(events)[0] == "contentStart:TEXT:USER" and events[0][1]["interactive"] is True
    pieces = [b["content"] for n, b in events if n == "textInput"]
    assert len(pieces) == 3 and all(len(p.encode()) < 1024 for p in pieces)
    assert not proto.idle  # an answer is expected


def test_close_sends_the_orderly_end_and_refuses_input():
    proto = make()
    ready(proto)
    proto.close(0)
    assert names(sent(proto)) == ["contentEnd", "promptEnd", "sessionEnd"]
    assert proto.connection_lost(None, "end of stream", 0) is None
    with pytest.raises(s2s.SessionClosedError):
        proto.send_audio(b"\x00\x00", 0)


@pytest.mark.parametrize(
    ("kind", "message", "error", "retryable"),
    [
        ("ValidationException", "Invalid voiceId", s2s.InvalidRequestError, False),
        ("validationException", f"x {'InternalErrorCode=531'} y", s2s.SessionExpiredError, True),
        ("ValidationException", "System instability detected.", s2s.ProviderServerError, True),
        ("modelTimeoutException", "timed out", s2s.SessionExpiredError, True),
        ("throttlingException", "slow down", s2s.RateLimitError, True),
        ("modelStreamErrorException", "oops", s2s.ProviderServerError, True),
        ("AccessDeniedException", "no", s2s.AuthenticationError, False),
        ("InvalidSignatureException", "", s2s.AuthenticationError, False),
        ("ExpiredTokenException", "expired", s2s.AuthenticationError, True),
        ("ResourceNotFoundException", "no model", s2s.ModelUnavailableError, False),
        # retrying cannot fix these
        ("ServiceQuotaExceededException", "exceeds the quota", s2s.QuotaExceededError, False),
        ("serviceQuotaExceededException", "exceeds the quota", s2s.QuotaExceededError, False),
        (
            "ResourceNotFoundException",
            "This model version has reached the end of its life.",
            s2s.ModelUnavailableError,
            False,
        ),
        (
            "ValidationException",
            "The provided model identifier is invalid.",
            s2s.ModelUnavailableError,
            False,
        ),
        (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            s2s.ModelUnavailableError,
            False,
        ),
        # transient
        ("ThrottlingException", "Too many requests", s2s.RateLimitError, True),
        ("modelNotReadyException", "not ready", s2s.ProviderServerError, True),
        ("serviceUnavailableException", "busy", s2s.ProviderServerError, True),
    ],
)
def test_exceptions_become_typed_errors(kind, message, error, retryable):
    proto = make()
    ready(proto)
    proto.receive_data(json.dumps({"exception": {"type": kind, "message": message}}), 0)
    err = proto.connection_lost(None, "the stream ended with an exception", 0)
    assert type(err) is error and err.retryable is retryable
    assert err.code and err.code[0].isupper() and err.provider == "nova"
    assert error_for(kind, message).__class__ is error


def test_an_unexpected_end_is_a_retryable_connection_error():
    proto = make()
    ready(proto)
    err = proto.connection_lost(None, "connection lost", 0)
    assert isinstance(err, s2s.ProviderConnectionError) and err.retryable


def test_garbage_is_a_protocol_error():
    proto = make()
    ready(proto)
    with pytest.raises(s2s.ProviderProtocolError, match="cannot parse"):
        proto.receive_data("not json", 0)
    block(proto, "a1", "AUDIO", "ASSISTANT")
    with pytest.raises(s2s.ProviderProtocolError, match="base64"):
        feed(proto, "audioOutput", contentId="a1", content="%%%")


def test_proactive_rotation_waits_for_the_answer_and_the_caller():
    proto = make(extra={"rotate_after_s": 10, "rotate_deadline_s": 60})
    ready(proto, now=100.0)
    assert proto.deadline == 110.0
    proto.send_text("tell me a story", 105.0)
    proto.timer_expired(110.0)
    assert proto.rotation is None and proto.deadline == 160.0  # an answer is due
    proto.send_audio(b"\x00\x40" * 1600, 111.0)  # the caller is speaking
    answer(proto, "Once upon a time.")
    proto.timer_expired(111.0)
    assert proto.rotation is None and proto.idle
    feed(proto, "usageEvent", now=112.0)
    assert proto.rotation is None  # 1 s of quiet: Nova may not have transcribed it yet
    feed(proto, "usageEvent", now=114.0)  # any later event re-checks, after a pause
    assert proto.rotation == "session_limit"


def test_the_deadline_rotates_even_mid_answer():
    proto = make(extra={"rotate_after_s": 10, "rotate_deadline_s": 20})
    ready(proto, now=0.0)
    proto.send_text("go on", 1.0)
    proto.timer_expired(10.0)
    assert proto.rotation is None
    proto.timer_expired(20.0)
    assert proto.rotation == "session_limit"


def test_the_untranscribed_audio_is_carried_and_cleared_at_the_transcript():
    proto = make(extra={"replay_audio_s": 1})
    ready(proto)
    proto.send_audio(b"\x01\x00" * 8000, 0)  # 0.5 s
    assert len(proto.continuation("x").pending_audio) == 16000
    proto.send_audio(b"\x02\x00" * 16000, 0)  # 1 s more: keep the newest 1 s
    carried = proto.continuation("x").pending_audio
    assert len(carried) == 32000 and carried[-2:] == b"\x02\x00"
    text(proto, "u1", "USER", "FINAL", "hello", "END_TURN")
    assert proto.continuation("x").pending_audio == b""


def test_a_new_stream_gets_history_then_the_audio_then_the_unanswered():
    conversation = Conversation(
        [
            Message(Role.ASSISTANT, "Welcome!"),  # dropped: history must start with USER
            Message(Role.USER, "my order is A1"),
            Message(Role.USER, "and B2"),  # merged with the one before
            Message(Role.ASSISTANT, "Got it."),
            Message(Role.USER, "are you there?"),  # unanswered: sent live
        ]
    )
    carry = s2s.Continuation(conversation=conversation, pending_audio=b"\x05\x00" * 1600)
    proto = make(carry)
    events = ready(proto)
    assert names(events) == [
        "sessionStart",
        "promptStart",
        "contentStart:TEXT:SYSTEM",
        "textInput",
        "contentEnd",
        "contentStart:TEXT:USER",
        "textInput",
        "contentEnd",
        "contentStart:TEXT:ASSISTANT",
        "textInput",
        "contentEnd",
        "contentStart:AUDIO:USER",
        "audioInput",
        "contentStart:TEXT:USER",
        "textInput",
        "contentEnd",
    ]
    assert events[6][1]["content"] == "my order is A1 and B2"
    assert events[5][1]["interactive"] is False and events[13][1]["interactive"] is True
    assert base64.b64decode(events[12][1]["content"]) == b"\x05\x00" * 1600
    assert events[14][1]["content"] == "are you there?"


def test_a_tool_call_from_an_earlier_stream_is_answered_in_words():
    conversation = Conversation(
        [
            Message(Role.USER, "where is A1"),
            FunctionCall("tu-old", "lookup", '{"id": "A1"}'),
        ]
    )
    proto = make(s2s.Continuation(conversation=conversation))
    events = ready(proto)
    assert "[lookup tool: input" in json.dumps(events)  # the call is remembered in history
    proto.send_tool_result(ToolResult("tu-old", '{"status": "shipped"}'), 0)
    result = sent(proto)
    assert names(result) == ["contentStart:TEXT:USER", "textInput", "contentEnd"]
    assert result[1][1]["content"] == (
        'The lookup tool you asked for earlier (input {"id": "A1"}) returned {"status": "shipped"}.'
    )
    assert isinstance(list(proto.conversation)[-1], FunctionOutput)


def test_expiring_credentials_bring_the_rotation_forward():
    proto = make(extra={"rotate_after_s": 360, "rotate_deadline_s": 450})
    proto.connection_made(0.0)
    proto.receive_data(json.dumps({"streamAccepted": {"credentialsExpireIn": 300.0}}), 0.0)
    assert proto.deadline == 120.0  # 3 minutes before they expire
    proto.send_text("hi", 1.0)
    proto.timer_expired(120.0)
    assert proto.rotation is None and proto.deadline == 240.0  # 1 minute before, at the latest
    proto.timer_expired(240.0)
    assert proto.rotation == "credentials_expiring"


def test_credentials_about_to_expire_are_not_chased():
    proto = make()
    proto.connection_made(0.0)
    proto.receive_data(json.dumps({"streamAccepted": {"credentialsExpireIn": 30.0}}), 0.0)
    assert proto.deadline == 360.0  # no rotation loop on credentials that cannot last anyway


def test_replayed_audio_starts_shortly_before_the_speech():
    quiet, loud = b"\x00\x00" * 16000, b"\x00\x40" * 8000  # 1 s of silence, 0.5 s of speech
    carry = s2s.Continuation(pending_audio=quiet + loud)
    proto = make(carry)
    events = ready(proto)
    replayed = b"".join(base64.b64decode(b["content"]) for n, b in events if n == "audioInput")
    assert replayed == quiet[len(quiet) // 2 :] + loud  # 0.5 s lead-in, then all the speech
    assert make(s2s.Continuation(pending_audio=quiet)).continuation("x").pending_audio == quiet


def test_the_conversation_keeps_a_failed_result_as_given_and_the_model_gets_an_error_object():
    proto = make()
    ready(proto)
    block(proto, "t1", "TOOL", "TOOL")
    feed(proto, "toolUse", contentId="t1", toolName="x", toolUseId="tu1", content="{}")
    feed(proto, "contentEnd", contentId="t1", type="TOOL", stopReason="TOOL_USE")
    proto.send_tool_result(ToolResult("tu1", "database down", is_error=True), 0)
    assert sent(proto)[1][1]["content"] == '{"error": "database down"}'
    # provider-neutral: another provider (or the next stream) encodes it its own way
    assert list(proto.conversation)[-1] == FunctionOutput("tu1", "database down", True)
    assert proto.idle


def test_a_repeated_tool_use_id_is_one_call():
    proto = make()
    ready(proto)
    for cid in ("t1", "t2"):
        block(proto, cid, "TOOL", "TOOL")
        feed(proto, "toolUse", contentId=cid, toolName="x", toolUseId="tu1", content="{}")
        feed(proto, "contentEnd", contentId=cid, type="TOOL", stopReason="TOOL_USE")
    assert kinds(proto).count("tool_call") == 1
    assert [i for i in proto.conversation if isinstance(i, FunctionCall)] == [
        FunctionCall("tu1", "x", "{}", "tu1")
    ]


def test_a_carried_call_is_answered_once_and_a_closed_stream_refuses_results():
    conversation = Conversation([FunctionCall("tu-old", "lookup", "{}")])
    proto = make(s2s.Continuation(conversation=conversation))
    ready(proto)
    assert proto.idle  # a carried call does not hold this stream's rotation
    proto.send_tool_result(ToolResult("tu-old", "1"), 0)
    with pytest.raises(s2s.InvalidInputError, match="'tu-old' was already answered"):
        proto.send_tool_result(ToolResult("tu-old", "2"), 0)
    proto.close(0)
    with pytest.raises(s2s.SessionClosedError, match="send_tool_result: the Nova connection"):
        proto.send_tool_result(ToolResult("tu-old", "3"), 0)
