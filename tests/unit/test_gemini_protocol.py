"""The Gemini Live protocol object, driven by scripted server messages (no sockets)."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack
import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.conversation import FunctionCall, FunctionOutput, Message
from s2s.providers.gemini_live import GeminiLiveProtocol, resolve

TOOLS = [
    s2s.ToolDefinition("lookup_order", "status", {"type": "object", "properties": {}}),
    s2s.ToolDefinition("send_sms", "sms", {"type": "object", "properties": {}}),
]


def make(
    extra: dict[str, Any] | None = None,
    continuation: s2s.Continuation | None = None,
    refused: list[str] | None = None,
    **config: Any,
) -> GeminiLiveProtocol:
    cfg = s2s.Config(extra={"api_key": "k", **(extra or {})}, tools=TOOLS, **config)
    on_refused = refused.append if refused is not None else None
    return GeminiLiveProtocol(cfg, resolve(cfg), continuation, on_handle_refused=on_refused)


def sent(proto: GeminiLiveProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in proto.data_to_send()]


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    out = []
    for frame in frames:
        (kind,) = frame
        out.append(f"{kind}.{next(iter(frame[kind]))}" if kind == "realtimeInput" else kind)
    return out


def feed(proto: GeminiLiveProtocol, message: dict[str, Any], now: float = 0.0) -> None:
    proto.receive_data(json.dumps(message).encode(), now)  # binary frames, as the server sends


def events(proto: GeminiLiveProtocol) -> list[s2s.SessionEvent]:
    return proto.events_received()


def ready(proto: GeminiLiveProtocol, now: float = 0.0) -> list[dict[str, Any]]:
    proto.connection_made(now)
    feed(proto, {"setupComplete": {}}, now)
    return sent(proto)


def audio(ms: int) -> dict[str, Any]:
    pcm = bytes(48 * ms)  # 24 kHz PCM16
    blob = {"mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(pcm).decode()}
    return {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}


def content(**fields: Any) -> dict[str, Any]:
    return {"serverContent": fields}


def handle(name: str, index: int | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {"newHandle": name, "resumable": True}
    if index is not None:
        update["lastConsumedClientMessageIndex"] = str(index)
    return {"sessionResumptionUpdate": update}


def tool_call(*ids: str, name: str = "lookup_order") -> dict[str, Any]:
    return {"toolCall": {"functionCalls": [{"id": i, "name": name, "args": {"n": 1}} for i in ids]}}


# -- setup ------------------------------------------------------------------------------------


def test_setup_goes_first_and_nothing_else_before_setup_complete():
    proto = make(voice="Kore", instructions="be brief")
    proto.connection_made(0)
    proto.send_audio(b"\x01\x00" * 160, 0)
    proto.send_text("hello", 0)
    (setup,) = sent(proto)
    assert list(setup) == ["setup"] and not proto.ready
    assert setup["setup"]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    feed(proto, {"setupComplete": {"sessionId": "s1"}})
    assert proto.ready
    assert kinds(sent(proto)) == ["realtimeInput.audio", "realtimeInput.text"]


def test_server_json_in_text_and_binary_frames_and_bad_frames():
    proto = make()
    proto.connection_made(0)
    proto.receive_data('{"setupComplete": {}}', 0)
    assert proto.ready
    with pytest.raises(s2s.ProviderProtocolError, match="not JSON"):
        proto.receive_data(b"\xff\x00", 0)
    with pytest.raises(s2s.ProviderProtocolError, match="not an object"):
        proto.receive_data("[1]", 0)
    feed(proto, {"somethingNew": {}})  # unknown messages are ignored (forward compatible)


def test_audio_goes_out_as_realtime_input_at_16_khz():
    proto = make()
    ready(proto)
    proto.send_audio(b"\x01\x02" * 320, 0)
    (frame,) = sent(proto)
    assert frame["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(frame["realtimeInput"]["audio"]["data"]) == b"\x01\x02" * 320
    assert proto.input_rate == 16000 and proto.output_rate == 24000


# -- a turn -------------------------------------------------------------------------------------


def test_an_audio_turn_becomes_transcripts_audio_usage_and_turn_end():
    proto = make()
    ready(proto)
    feed(proto, content(inputTranscription={"text": "hello "}))
    feed(proto, content(inputTranscription={"text": "there", "finished": True}))
    feed(proto, audio(100))
    feed(proto, content(outputTranscription={"text": "Hi "}))
    feed(  # several parts in one message are all used
        proto,
        {
            "serverContent": {
                "modelTurn": audio(50)["serverContent"]["modelTurn"],
                "outputTranscription": {"text": "you."},
            }
        },
    )
    feed(proto, content(generationComplete=True))
    feed(
        proto,
        {
            "serverContent": {"turnComplete": True},
            "usageMetadata": {
                "promptTokenCount": 10,
                "responseTokenCount": 20,
                "totalTokenCount": 30,
                "promptTokensDetails": [
                    {"modality": "AUDIO", "tokenCount": 8},
                    {"modality": "TEXT", "tokenCount": 2},
                ],
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 20}],
            },
        },
    )
    got = events(proto)
    assert [e.type for e in got] == [
        EventType.TRANSCRIPT,
        EventType.TRANSCRIPT,
        EventType.TRANSCRIPT,  # final user transcript
        EventType.RESPONSE_STARTED,
        EventType.AUDIO_OUTPUT,
        EventType.TRANSCRIPT,
        EventType.AUDIO_OUTPUT,
        EventType.TRANSCRIPT,
        EventType.TRANSCRIPT,  # final assistant transcript at generationComplete
        EventType.USAGE,
        EventType.TURN_END,
    ]
    finals = [(e.role, e.text) for e in got if e.type is EventType.TRANSCRIPT and e.final]
    assert finals == [(Role.USER, "hello there"), (Role.ASSISTANT, "Hi you.")]
    assert got[4].sample_rate == 24000 and got[4].duration_ms == 100
    usage = got[-2].usage
    assert (usage.input_audio_tokens, usage.input_text_tokens, usage.output_audio_tokens) == (
        8,
        2,
        20,
    )
    assert got[-1].reason == "completed" and proto.idle
    assert [type(i) for i in proto.conversation] == [Message, Message]


def test_barge_in_flushes_and_drops_late_output_of_the_cut_turn():
    proto = make()
    ready(proto)
    feed(proto, audio(100))
    feed(proto, content(outputTranscription={"text": "Once upon a "}))
    feed(proto, content(interrupted=True))
    feed(proto, audio(100))  # late: already generated before the server stopped
    feed(proto, content(outputTranscription={"text": "time"}))
    feed(proto, content(turnComplete=True))
    got = events(proto)
    assert [e.type for e in got][-2:] == [EventType.INTERRUPTED, EventType.TURN_END]
    assert got[-2].reason == "barge_in" and got[-1].reason == "cancelled"
    assert sum(e.duration_ms for e in got if e.type is EventType.AUDIO_OUTPUT) == 100
    (answer,) = [i for i in proto.conversation if isinstance(i, Message)]
    assert answer.text == "Once upon a "  # the model keeps only what was sent


def test_interrupt_without_manual_turns_is_local():
    proto = make()
    ready(proto)
    feed(proto, audio(100))
    events(proto)
    proto.interrupt(1.0)
    assert sent(proto) == []  # Gemini has no cancel message
    (interrupted,) = events(proto)
    assert interrupted.type is EventType.INTERRUPTED and interrupted.reason == "client"
    feed(proto, audio(100))
    feed(proto, content(turnComplete=True))
    assert [e.type for e in events(proto)] == [EventType.TURN_END]
    proto.interrupt(2.0)  # nothing in progress: nothing happens
    assert events(proto) == []


def test_interrupt_leaves_a_turn_that_waits_for_a_tool_alone():
    proto = make()
    ready(proto)
    feed(proto, tool_call("c1"))
    events(proto)
    proto.interrupt(1.0)
    assert events(proto) == []
    proto.send_tool_result(ToolResult("c1", "1"), 1.0)
    feed(proto, audio(100))  # the answer with the result is heard
    assert [e.type for e in events(proto)] == [EventType.AUDIO_OUTPUT]


def test_interrupt_with_manual_turns_sends_activity_start():
    proto = make({"turn_detection": "none"})
    ready(proto)
    feed(proto, audio(100))
    proto.interrupt(1.0)
    assert kinds(sent(proto)) == ["realtimeInput.activityStart"]
    proto.send_audio(b"\x00\x01" * 160, 1.0)  # the caller already holds the floor
    proto.end_turn(1.0)
    assert kinds(sent(proto)) == ["realtimeInput.audio", "realtimeInput.activityEnd"]


def test_end_turn_with_server_vad_is_audio_stream_end():
    proto = make()
    ready(proto)
    proto.end_turn(0)
    assert sent(proto) == [{"realtimeInput": {"audioStreamEnd": True}}]


def test_voice_activity_signals_become_speech_events():
    proto = make()
    ready(proto)
    feed(proto, {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}})
    feed(proto, {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_EOS"}})
    assert [e.type for e in events(proto)] == [EventType.SPEECH_STARTED, EventType.SPEECH_STOPPED]


# -- tools ------------------------------------------------------------------------------------


def test_tool_calls_args_become_json_and_results_go_back_with_id_and_name():
    proto = make()
    ready(proto)
    feed(proto, tool_call("c1", "c2"))
    calls = [e.tool_call for e in events(proto) if e.type is EventType.TOOL_CALL]
    assert [(c.id, c.args) for c in calls] == [("c1", {"n": 1}), ("c2", {"n": 1})]
    assert not proto.idle
    proto.send_tool_result(ToolResult("c2", '{"ok": true}'), 0)
    proto.send_tool_result(ToolResult("c1", "not json", is_error=True), 0)
    frames = sent(proto)
    assert [f["toolResponse"]["functionResponses"] for f in frames] == [
        [{"id": "c2", "name": "lookup_order", "response": {"output": {"ok": True}}}],
        [{"id": "c1", "name": "lookup_order", "response": {"error": "not json"}}],
    ]
    with pytest.raises(s2s.InvalidInputError, match="already answered"):
        proto.send_tool_result(ToolResult("c1", "again"), 0)
    with pytest.raises(s2s.InvalidInputError, match="no tool call 'zz'"):
        proto.send_tool_result(ToolResult("zz", "x"), 0)


def test_a_turn_complete_after_a_tool_call_ends_the_turn_with_tool_calls():
    proto = make()
    ready(proto)
    feed(proto, tool_call("c1"))
    feed(proto, content(turnComplete=True))
    assert events(proto)[-1].reason == "tool_calls"


def test_non_blocking_results_carry_their_scheduling():
    proto = make({"non_blocking_tools": {"send_sms": "silent"}})
    setup = ready(proto)[0]["setup"]
    behaviors = {d["name"]: d["behavior"] for d in setup["tools"][0]["functionDeclarations"]}
    assert behaviors == {"lookup_order": "BLOCKING", "send_sms": "NON_BLOCKING"}
    feed(proto, tool_call("c1", name="send_sms"))
    feed(proto, content(turnComplete=True))
    assert events(proto)[-1].reason == "completed"  # the model did not wait for it
    proto.send_tool_result(ToolResult("c1", "sent"), 0)
    (frame,) = sent(proto)
    assert frame["toolResponse"]["functionResponses"][0]["scheduling"] == "SILENT"


def test_tool_call_cancellation_is_its_own_event_and_refuses_late_results():
    proto = make()
    ready(proto)
    feed(proto, tool_call("c1", "c2"))
    feed(proto, {"toolCallCancellation": {"ids": ["c1"]}})
    cancelled = events(proto)[-1]
    assert cancelled.type is EventType.TOOL_CALL_CANCELLED and cancelled.call_ids == ("c1",)
    assert proto.conversation.find_call("c1") is None
    with pytest.raises(s2s.InvalidInputError, match="cancelled by the provider"):
        proto.send_tool_result(ToolResult("c1", "late"), 0)
    proto.send_tool_result(ToolResult("c2", "fine"), 0)


# -- closes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "error", "retryable"),
    [
        (1007, "Request contains an invalid argument.", s2s.InvalidRequestError, False),
        (1008, "Requested entity was not found.", s2s.InvalidRequestError, False),
        (1007, "API key not valid. Please pass a valid API key.", s2s.AuthenticationError, False),
        (1011, "Internal error occurred.", s2s.ProviderServerError, True),
        (1011, "Deadline expired before operation could complete.", s2s.SessionExpiredError, True),
        (1011, "You exceeded your current quota.", s2s.QuotaExceededError, False),
        (1011, "Rate limit reached, try later.", s2s.RateLimitError, True),
        (None, "", s2s.ProviderConnectionError, True),
        (1000, "", s2s.ProviderConnectionError, True),
        (4003, "odd", s2s.ProviderError, False),
    ],
)
def test_close_codes_become_typed_errors_with_the_servers_reason(code, reason, error, retryable):
    proto = make()
    ready(proto)
    err = proto.connection_lost(code, reason, 0)
    assert type(err) is error and err.retryable is retryable
    assert err.code == (str(code) if code is not None else None)
    assert reason in str(err)


def test_our_own_close_is_not_an_error():
    proto = make()
    ready(proto)
    proto.close(0)
    assert proto.connection_lost(1000, "", 0) is None


def test_a_refused_resumption_handle_is_reported_and_retried_without_it():
    refused: list[str] = []
    carry = s2s.Continuation(state={"handle": "h-old", "covered": [], "pending": []})
    proto = make(continuation=carry, refused=refused)
    proto.connection_made(0)
    assert sent(proto)[0]["setup"]["sessionResumption"] == {"transparent": True, "handle": "h-old"}
    err = proto.connection_lost(1007, "The session resumption handle is invalid.", 0)
    assert isinstance(err, s2s.ProviderConnectionError) and err.retryable
    assert refused == ["h-old"]
    # an authentication failure is not mistaken for a refused handle
    proto = make(continuation=carry, refused=refused)
    proto.connection_made(0)
    assert isinstance(proto.connection_lost(1007, "API key not valid.", 0), s2s.AuthenticationError)


# -- goAway and continuation ---------------------------------------------------------------


def test_go_away_while_quiet_rotates_at_once():
    proto = make()
    ready(proto)
    feed(proto, {"goAway": {"timeLeft": "50s"}}, now=10.0)
    assert proto.rotation == "go_away"


def test_go_away_mid_answer_waits_for_the_turn_to_end_then_rotates():
    proto = make()
    ready(proto)
    feed(proto, audio(100))
    feed(proto, {"goAway": {"timeLeft": "50s"}}, now=10.0)
    assert proto.rotation is None and proto.deadline == pytest.approx(55.0)  # 5 s margin
    feed(proto, content(turnComplete=True), now=11.0)
    assert proto.rotation == "go_away"


def test_go_away_deadline_cuts_the_answer():
    proto = make({"go_away_margin_s": 2.0})
    ready(proto)
    feed(proto, audio(100))
    feed(proto, {"goAway": {"timeLeft": "3s"}}, now=10.0)
    events(proto)
    assert proto.deadline == pytest.approx(11.0)
    proto.timer_expired(11.0)
    assert proto.rotation == "go_away"
    got = events(proto)
    assert [(e.type, e.reason) for e in got] == [
        (EventType.INTERRUPTED, "go_away"),
        (EventType.TURN_END, "cancelled"),
    ]


def _talk(proto: GeminiLiveProtocol) -> None:
    """A text turn, answered; then a handle after it."""
    proto.send_text("my number is 7", 0)
    feed(proto, audio(50))
    feed(proto, content(outputTranscription={"text": "Noted."}))
    feed(proto, content(turnComplete=True))


def test_continuation_resends_only_what_the_handle_does_not_cover():
    proto = make()
    ready(proto)  # setup is message 0
    _talk(proto)  # text is message 1
    for n in range(4):  # audio: messages 2..5
        proto.send_audio(bytes([n]) * 320, 0)
    feed(proto, handle("h1", index=3))
    carry = proto.continuation("go_away")
    assert carry.state["handle"] == "h1"
    assert carry.pending_audio == bytes([2]) * 320 + bytes([3]) * 320  # messages 4 and 5
    assert all(carry.state["covered"])  # the history is in the handle's state

    new = make(continuation=carry)
    new.connection_made(1.0)
    assert sent(new)[0]["setup"]["sessionResumption"]["handle"] == "h1"
    feed(new, {"setupComplete": {}}, 1.0)
    resent = sent(new)
    assert kinds(resent) == ["realtimeInput.audio"]  # no history replay: it is covered
    assert base64.b64decode(resent[0]["realtimeInput"]["audio"]["data"]) == carry.pending_audio


def test_without_any_handle_the_history_is_replayed_as_client_content():
    proto = make()
    ready(proto)
    _talk(proto)
    feed(proto, tool_call("c1"))
    proto.send_tool_result(ToolResult("c1", '"ok"'), 0)
    feed(proto, content(outputTranscription={"text": "Done."}))
    feed(proto, content(turnComplete=True))
    carry = proto.continuation("connection_lost")
    assert carry.state["handle"] is None
    new = make(continuation=carry)
    (replay,) = ready(new)[1:]
    turns = replay["clientContent"]["turns"]
    assert [(t["role"], [next(iter(p)) for p in t["parts"]]) for t in turns] == [
        ("user", ["text"]),
        ("model", ["text", "functionCall"]),  # consecutive parts of one role share a turn
        ("user", ["functionResponse"]),
        ("model", ["text"]),
    ]
    assert turns[1]["parts"][1]["functionCall"] == {
        "id": "c1",
        "name": "lookup_order",
        "args": {"n": 1},
    }
    assert replay["clientContent"]["turnComplete"] is False  # nothing is owed an answer


def test_a_cut_answer_is_dropped_and_asked_for_again():
    proto = make()
    ready(proto)
    proto.send_text("tell me a story", 0)
    feed(proto, audio(50))
    feed(proto, content(outputTranscription={"text": "Once"}))
    assert proto.connection_lost(None, "", 0).retryable
    carry = proto.continuation("connection_lost")
    assert [i.role for i in carry.conversation if isinstance(i, Message)] == [Role.USER]
    new = make(continuation=carry)
    (replay,) = ready(new)[1:]
    assert replay["clientContent"] == {
        "turns": [{"role": "user", "parts": [{"text": "tell me a story"}]}],
        "turnComplete": True,
    }


def _call_after_handle() -> GeminiLiveProtocol:
    """A connection whose latest handle predates a question and the tool call it caused."""
    proto = make()
    ready(proto)
    feed(proto, handle("h1", index=0))
    proto.send_text("where is my order", 0)
    feed(proto, tool_call("c1"))
    return proto


def test_a_tool_call_the_handle_predates_is_held_until_answered_then_replayed_with_it():
    carry = _call_after_handle().continuation("connection_lost")
    new = make(continuation=carry)
    (head,) = ready(new)[1:]
    assert head["clientContent"]["turns"] == [
        {"role": "user", "parts": [{"text": "where is my order"}]}
    ]
    assert head["clientContent"]["turnComplete"] is False
    assert not new.idle  # a tool call is waiting
    new.send_tool_result(ToolResult("c1", '"shipped"'), 1.0)
    (held,) = sent(new)
    assert [t["role"] for t in held["clientContent"]["turns"]] == ["model", "user"]
    assert held["clientContent"]["turns"][1]["parts"][0]["functionResponse"]["response"] == {
        "output": "shipped"
    }
    assert held["clientContent"]["turnComplete"] is True


def test_another_providers_continuation_sends_its_audio_and_takes_each_result_once():
    conversation = s2s.Conversation()
    conversation.append(Message(Role.USER, "where is my order", "u1"))
    conversation.append(FunctionCall("c9", "lookup_order", "{}", "c9"))
    pcm = bytes(range(256)) * 250  # 2 s at 16 kHz, more than one resend chunk
    carry = s2s.Continuation(conversation, pcm, {}, "failover")  # no Gemini state at all
    new = make(continuation=carry)
    frames = ready(new)[1:]
    assert kinds(frames) == ["clientContent", "realtimeInput.audio", "realtimeInput.audio"]
    resent = b"".join(base64.b64decode(f["realtimeInput"]["audio"]["data"]) for f in frames[1:])
    assert resent == pcm  # all of it, before anything newer
    new.send_tool_result(ToolResult("c9", '"shipped"'), 1.0)
    (held,) = sent(new)
    assert [t["role"] for t in held["clientContent"]["turns"]] == ["model", "user"]
    with pytest.raises(s2s.InvalidInputError, match="'c9' was already answered"):
        new.send_tool_result(ToolResult("c9", '"again"'), 1.0)
    assert sent(new) == []


def test_a_tool_result_sent_after_the_handle_is_replayed_with_its_call():
    proto = _call_after_handle()
    proto.send_tool_result(ToolResult("c1", '"shipped"'), 0)
    carry = proto.continuation("connection_lost")
    new = make(continuation=carry)
    (replay,) = ready(new)[1:]
    assert [t["role"] for t in replay["clientContent"]["turns"]] == ["user", "model", "user"]
    assert replay["clientContent"]["turnComplete"] is True  # the model owes the answer
    assert new.conversation.find_call("c1") is not None


def test_a_refused_handle_makes_the_next_connection_replay_everything():
    proto = make()
    ready(proto)
    _talk(proto)
    proto.send_audio(b"\x05\x00" * 160, 0)
    feed(proto, handle("h1", index=2))
    carry = proto.continuation("go_away")
    assert carry.pending_audio == b""  # everything is covered ...
    stripped = s2s.Continuation(
        carry.conversation, carry.pending_audio, {**carry.state, "handle": None}, carry.reason
    )
    new = make(continuation=stripped)  # ... but the server refused the handle
    frames = ready(new)
    assert "handle" not in frames[0]["setup"]["sessionResumption"]
    assert kinds(frames[1:]) == ["clientContent", "realtimeInput.audio"]


def test_without_the_index_recent_audio_is_sent_again():
    proto = make()
    proto.connection_made(0.0)
    feed(proto, {"setupComplete": {}}, now=0.05)  # a 50 ms setup round trip
    sent(proto)
    proto.send_audio(b"\x01\x00" * 160, 1.0)
    proto.send_audio(b"\x02\x00" * 160, 1.98)
    feed(proto, handle("h1"), now=2.0)  # no lastConsumedClientMessageIndex
    carry = proto.continuation("go_away")
    assert carry.pending_audio == b"\x02\x00" * 160  # it may have been on its way


def test_a_handed_over_connection_goes_quiet():
    proto = make()
    ready(proto)
    proto.continuation("go_away")
    feed(proto, audio(100))
    assert events(proto) == []
    snapshot_proto = make()
    ready(snapshot_proto)
    snapshot_proto.continuation("snapshot")  # a snapshot is not a handover
    feed(snapshot_proto, audio(100))
    assert EventType.AUDIO_OUTPUT in [e.type for e in events(snapshot_proto)]


def test_continuation_round_trips_through_plain_data():
    proto = make()
    ready(proto)
    _talk(proto)
    feed(proto, tool_call("c1"))
    proto.send_audio(b"\x01\x00" * 160, 0)
    carry = proto.continuation("snapshot")
    again = s2s.Continuation.from_dict(msgpack.unpackb(msgpack.packb(carry.to_dict())))
    assert again.pending_audio == carry.pending_audio == b"\x01\x00" * 160
    assert list(again.conversation) == list(carry.conversation)
    assert isinstance(list(again.conversation)[-1], FunctionCall)
    assert not [i for i in again.conversation if isinstance(i, FunctionOutput)]
