"""Our client's per-model rules: settings each model accepts, ``interactionStatus`` turns, and
closes that retrying cannot fix (sans-I/O, scripted server messages)."""

from __future__ import annotations

from typing import Any

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.emulators.gemini.setup import setup_problem
from s2s.providers.gemini_live import resolve, wire
from s2s.providers.gemini_live.models import MODELS, RETIRED

from .test_gemini_protocol import TOOLS, audio, content, events, feed, make, ready, sent, tool_call

EXTENDED = "gemini-3.8-live-extended-thinking"


def setup_for(model: str, tools: list[s2s.ToolDefinition] | None = None, **extra: Any) -> Any:
    config = s2s.Config(model=model, tools=tools or [], extra={"api_key": "k", **extra})
    return resolve(config).setup()["setup"]


def behaviors(setup: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["behavior"] for d in setup["tools"][0]["functionDeclarations"]}


def test_thinking_and_tool_behaviour_are_sent_as_each_model_takes_them():
    plain = setup_for("gemini-3.8-live", TOOLS, non_blocking_tools={"send_sms": "silent"})
    assert "thinkingConfig" not in plain["generationConfig"]
    assert behaviors(plain) == {"lookup_order": "BLOCKING", "send_sms": "NON_BLOCKING"}

    extended = setup_for(EXTENDED, TOOLS)
    assert extended["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert behaviors(extended) == {"lookup_order": "NON_BLOCKING", "send_sms": "NON_BLOCKING"}
    high = setup_for(EXTENDED, thinking_level="high")
    assert high["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH"}

    legacy = setup_for("gemini-3.1-flash-live-preview", TOOLS, thinking_level="minimal")
    assert legacy["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}
    assert behaviors(legacy) == {"lookup_order": "BLOCKING", "send_sms": "BLOCKING"}

    older = setup_for("gemini-2.5-flash-native-audio-preview-12-2025", thinking_budget=512)
    assert older["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 512}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_what_we_send_each_model_is_what_the_emulator_accepts(model):
    extra: dict[str, Any] = {}
    if MODELS[model].non_blocking:
        extra["non_blocking_tools"] = ["send_sms"]
    setup = setup_for(model, TOOLS, **extra)
    assert setup_problem(wire.Setup.model_validate(setup)) is None


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        (
            EXTENDED,
            {"thinking_level": "minimal"},
            f"{EXTENDED} does not accept thinking_level 'minimal'; use low, medium, high",
        ),
        ("gemini-3.8-live", {"thinking_level": "low"}, "gemini-3.8-live takes no thinking_level"),
        ("gemini-3.8-live", {"thinking_budget": 100}, "gemini-3.8-live takes no thinking_budget"),
        (EXTENDED, {"thinking_level": "max"}, "thinking_level 'max' must be one of minimal"),
        (
            EXTENDED,
            {"non_blocking_tools": {"send_sms": "silent"}},
            f"{EXTENDED} takes no result scheduling.*for send_sms",
        ),
        (
            "gemini-3.1-flash-live-preview",
            {"non_blocking_tools": ["send_sms"]},
            "does not honour NON_BLOCKING tools",
        ),
        ("gemini-3.8-live", {"proactive_audio": True}, "proactive_audio needs api_version"),
        (
            "gemini-3.8-live",
            {"proactive_audio": False, "api_version": "v1alpha"},
            "gemini-3.8-live is always proactive",
        ),
    ],
)
def test_settings_a_model_would_refuse_fail_at_construction(model, extra, message):
    config = s2s.Config(model=model, tools=TOOLS, extra={"api_key": "k", **extra})
    with pytest.raises(s2s.ConfigurationError, match=message):
        resolve(config)


@pytest.mark.parametrize("model", sorted(RETIRED))
def test_retired_models_are_refused_with_their_replacement(model):
    with pytest.raises(
        s2s.ConfigurationError, match=f"'{model}' was retired; use '{RETIRED[model]}'"
    ):
        s2s.new("gemini_live", s2s.Config(model=f"models/{model}", extra={"api_key": "k"}))


# -- interactionStatus ------------------------------------------------------------------------


def spoken(text: str) -> dict[str, Any]:
    return content(outputTranscription={"text": text})


def test_an_extended_thinking_task_is_one_turn_until_idle():
    proto = make(model=EXTENDED)
    ready(proto)
    feed(proto, audio(100))
    feed(proto, spoken("Let me think."))
    feed(proto, content(generationComplete=True))
    feed(proto, content(turnComplete=True, interactionStatus="IN_PROGRESS"))
    filler = events(proto)
    assert EventType.TURN_END not in [e.type for e in filler]  # only a spoken chunk ended
    assert [e.text for e in filler if e.type is EventType.TRANSCRIPT and e.final] == [
        "Let me think."
    ]
    assert not proto.idle
    feed(proto, audio(100))
    feed(proto, spoken("The answer."))
    feed(proto, content(turnComplete=True, interactionStatus="IDLE"))
    answer = events(proto)
    ends = [e for e in answer if e.type is EventType.TURN_END]
    assert [e.reason for e in ends] == ["completed"]
    assert ends[0].data["interaction_status"] == "IDLE"
    assert EventType.RESPONSE_STARTED not in [e.type for e in answer]  # the same turn
    assert {e.response_id for e in filler + answer if e.response_id} == {ends[0].response_id}
    assert [m.text for m in proto.conversation if isinstance(m, s2s.conversation.Message)] == [
        "Let me think.",
        "The answer.",
    ]
    assert proto.idle


@pytest.mark.parametrize("status", ["IDLE", "REQUIRES_ACTION"])
def test_idle_after_a_held_turn_complete_ends_the_turn(status):
    proto = make(model=EXTENDED)
    ready(proto)
    feed(proto, spoken("Hmm."))
    feed(proto, content(turnComplete=True, interactionStatus="IN_PROGRESS"))
    assert EventType.TURN_END not in [e.type for e in events(proto)]
    feed(proto, content(interactionStatus=status))
    assert [e.reason for e in events(proto) if e.type is EventType.TURN_END] == ["completed"]


def test_without_the_field_turn_complete_ends_the_turn():
    proto = make(model=EXTENDED)
    ready(proto)
    feed(proto, spoken("Hi."))
    feed(proto, content(turnComplete=True))
    assert [e.reason for e in events(proto) if e.type is EventType.TURN_END] == ["completed"]


def test_barge_in_during_background_work_ends_the_turn_cancelled():
    proto = make(model=EXTENDED)
    ready(proto)
    feed(proto, spoken("Let me think."))
    feed(proto, content(turnComplete=True, interactionStatus="IN_PROGRESS"))
    feed(proto, spoken("The ans"))
    feed(proto, content(interrupted=True))
    feed(proto, content(turnComplete=True, interactionStatus="IDLE"))
    got = events(proto)
    assert [e.type for e in got if e.type in (EventType.INTERRUPTED, EventType.TURN_END)] == [
        EventType.INTERRUPTED,
        EventType.TURN_END,
    ]
    assert got[-1].reason == "cancelled"


def test_extended_thinking_tools_run_in_the_background_and_results_carry_no_scheduling():
    proto = make(model=EXTENDED)
    ready(proto)
    feed(proto, tool_call("c1"))
    feed(proto, spoken("One moment."))
    feed(proto, content(turnComplete=True, interactionStatus="IN_PROGRESS"))
    assert [e.type for e in events(proto) if e.type is EventType.TURN_END] == []
    proto.send_tool_result(ToolResult("c1", '"packed"'), 0)
    (response,) = sent(proto)[0]["toolResponse"]["functionResponses"]
    assert response == {"id": "c1", "name": "lookup_order", "response": {"output": "packed"}}
    feed(proto, spoken("It is packed."))
    feed(proto, content(turnComplete=True, interactionStatus="IDLE"))
    ends = [e for e in events(proto) if e.type is EventType.TURN_END]
    assert [e.reason for e in ends] == ["completed"]


def test_history_replayed_on_a_new_connection_names_every_role():
    conversation = s2s.Conversation()
    conversation.append(s2s.conversation.Message(Role.USER, "hello", "u1"))
    conversation.append(s2s.conversation.Message(Role.ASSISTANT, "hi there", "a1"))
    conversation.append(s2s.conversation.Message(Role.USER, "and you?", "u2"))
    proto = make(continuation=s2s.Continuation(conversation), model=EXTENDED)
    frames = ready(proto)
    turns = next(f["clientContent"]["turns"] for f in frames if "clientContent" in f)
    assert [t["role"] for t in turns] == ["user", "model", "user"]


# -- closes retrying cannot fix -----------------------------------------------------------------

QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: h"
)


@pytest.mark.parametrize(
    ("code", "reason", "error", "retryable"),
    [
        (1011, QUOTA, s2s.QuotaExceededError, False),
        (1011, "RESOURCE_EXHAUSTED: quota for gemini-3-flash-live", s2s.QuotaExceededError, False),
        (1011, "Internal error: quota service slow", s2s.RateLimitError, True),
        (
            1008,
            "Publisher Model `models/gemini-3.5-live-translate-preview` was not found or is not "
            "supported for bidiGenerateContent",
            s2s.ModelUnavailableError,
            False,
        ),
        (1007, "Thinking level is not supported for this model", s2s.InvalidRequestError, False),
        (1007, "Request contains an invalid argument", s2s.InvalidRequestError, False),
    ],
)
def test_closes_are_classified_by_code_and_reason(code, reason, error, retryable):
    proto = make()
    ready(proto)
    err = proto.connection_lost(code, reason, 0)
    assert type(err) is error and err.retryable is retryable and err.code == str(code)
    assert err.provider == "gemini_live"


def test_a_1008_after_go_away_is_the_routine_end_of_the_connection():
    proto = make()
    ready(proto)
    feed(proto, {"goAway": {"timeLeft": "50s"}})
    err = proto.connection_lost(1008, "", 0)
    assert isinstance(err, s2s.SessionExpiredError) and err.retryable
    proto = make()
    ready(proto)
    feed(proto, {"goAway": {"timeLeft": "50s"}})
    gone = proto.connection_lost(1008, "Publisher Model `models/x` was not found", 0)
    assert isinstance(gone, s2s.ModelUnavailableError)  # the reason still wins


def test_a_retired_model_on_resumption_is_not_taken_for_a_refused_handle():
    refused: list[str] = []
    carry = s2s.Continuation(state={"handle": "h", "covered": [], "pending": []})
    proto = make(continuation=carry, refused=refused)
    proto.connection_made(0)
    err = proto.connection_lost(1008, "Publisher Model `models/x` was not found", 0)
    assert isinstance(err, s2s.ModelUnavailableError) and refused == []
