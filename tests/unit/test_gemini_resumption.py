"""The resumption ledger: what a handle covers, and what a new connection is given again."""

from __future__ import annotations

from s2s import Role
from s2s.conversation import Conversation, FunctionCall, FunctionOutput, Message
from s2s.providers.gemini_live.resumption import (
    MAX_PENDING_AUDIO,
    Ledger,
    Record,
    owes_answer,
    plan,
)


def test_client_items_are_covered_by_index_and_server_items_by_arrival():
    ledger = Ledger()
    assert ledger.sent() == 0  # setup
    ledger.sent()
    ledger.mark_sent("u1")  # text, message 1
    ledger.got()
    ledger.mark_received("a1")  # the model's answer to it
    ledger.sent()
    ledger.mark_sent("u2")  # message 2, sent before the handle arrived ...
    ledger.new_handle("h", last_consumed=1, now=0.0)  # ... but not consumed when it was made
    ledger.got()
    ledger.mark_received("a2")  # after the handle
    assert [ledger.covers(k) for k in ("u1", "a1", "u2", "a2")] == [True, True, False, False]
    assert not ledger.covers("unknown")


def test_without_an_index_text_counts_as_covered_but_recent_audio_does_not():
    ledger = Ledger(window_s=0.1)
    ledger.sent()
    old = Record("audio", ledger.sent(), audio=b"\x00\x00", at=1.0)
    recent = Record("audio", ledger.sent(), audio=b"\x00\x00", at=1.95)
    ledger.sent()
    ledger.mark_sent("u1")
    ledger.new_handle("h", last_consumed=None, now=2.0)
    assert ledger.covers_record(old) and not ledger.covers_record(recent)
    assert ledger.covers("u1")


def test_pending_input_is_dropped_once_the_model_answers_and_capped_at_a_minute():
    ledger = Ledger()
    ledger.sent()
    for _ in range(3):
        ledger.record(Record("audio", ledger.sent(), audio=bytes(MAX_PENDING_AUDIO // 2)))
    assert sum(len(r.audio) for r in ledger.pending) == MAX_PENDING_AUDIO
    ledger.answer_started()
    assert ledger.pending == []
    ledger.record(Record("text", ledger.sent(), text="hi", item="u1"))
    assert [r.kind for r in ledger.pending] == ["text"]


def _history() -> Conversation:
    return Conversation(
        [
            Message(Role.USER, "hello", "u1"),
            Message(Role.ASSISTANT, "hi", "a1"),
            FunctionCall("c1", "lookup", "{}", "c1"),
            FunctionOutput("c1", '"ok"'),
            FunctionCall("c2", "lookup", "{}", "c2"),
            Message(Role.USER, "typed later", "u2"),
        ]
    )


def test_plan_replays_what_is_not_covered_and_holds_from_the_first_open_call():
    state = {
        "handle": "h",
        "covered": [True, True, False, False, False, False],
        "pending": [{"kind": "text", "item": 5, "covered": False}],
    }
    got = plan(_history(), state)
    assert got.covered == {0, 1}
    assert got.replay == [2, 3]  # the answered call goes out as history
    assert got.held == [4]  # the open call waits for its result
    assert [e["item"] for e in got.resend] == [5]  # the typed text is sent again as text


def test_plan_without_a_handle_replays_everything_not_sent_again_raw():
    state = {
        "handle": None,
        "covered": [True] * 6,  # meaningless without the handle
        "pending": [
            {"kind": "audio", "covered": True, "start": 0, "end": 2},
            {"kind": "tool_response", "item": 3, "covered": True},
        ],
    }
    got = plan(_history(), state)
    assert got.covered == set()
    assert got.replay == [0, 1, 2, 3]  # the output goes with its replayed call, not raw
    assert [e["kind"] for e in got.resend] == ["audio"]
    assert got.held == [4, 5]


def test_a_result_for_a_covered_call_is_sent_again_as_a_tool_response():
    state = {
        "handle": "h",
        "covered": [True, True, True, False, True, True],
        "pending": [{"kind": "tool_response", "item": 3, "covered": False}],
    }
    got = plan(_history(), state)
    assert got.replay == [] and [e["kind"] for e in got.resend] == ["tool_response"]


def test_owes_answer():
    assert owes_answer([Message(Role.USER, "hi")])
    assert owes_answer([FunctionCall("c", "f", "{}"), FunctionOutput("c", "1")])
    assert not owes_answer([Message(Role.USER, "hi"), Message(Role.ASSISTANT, "hello")])
    assert owes_answer([Message(Role.USER, "hi"), Message(Role.ASSISTANT, "")])  # empty: skipped
    assert not owes_answer([])
