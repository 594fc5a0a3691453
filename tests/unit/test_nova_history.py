"""Carrying a conversation within Nova's chat-history rules."""

from __future__ import annotations

from s2s import Role
from s2s.conversation import Conversation, FunctionCall, FunctionOutput, Message
from s2s.providers.nova.history import plan, split_text


def test_split_text_respects_the_byte_limit_and_joins_back():
    text = "héllo wörld " * 300
    pieces = split_text(text, 100)
    assert all(len(p.encode("utf-8")) <= 100 for p in pieces)
    assert "".join(pieces) == text.strip()
    assert all(p.endswith(" ") for p in pieces[:-1])  # cut after a space


def test_split_text_cuts_a_word_only_when_it_must_and_never_a_character():
    pieces = split_text("é" * 300, 101)
    assert all(len(p.encode("utf-8")) <= 101 for p in pieces)
    assert "".join(pieces) == "é" * 300


def test_history_starts_with_user_merges_roles_and_keeps_the_newest():
    conversation = Conversation(
        [
            Message(Role.ASSISTANT, "Hi, how can I help?"),
            Message(Role.USER, "first"),
            Message(Role.USER, "second"),
            Message(Role.ASSISTANT, ""),  # nothing said: dropped
            Message(Role.ASSISTANT, "ok"),
        ]
    )
    result = plan(conversation)
    assert [(t.role, t.pieces) for t in result.history] == [
        ("USER", ("first second",)),
        ("ASSISTANT", ("ok",)),
    ]
    assert result.unanswered == "" and result.dropped == 1


def test_history_fits_the_budget_by_dropping_the_oldest():
    items = []
    for i in range(60):
        items.append(Message(Role.USER, f"question {i} " + "x" * 900))
        items.append(Message(Role.ASSISTANT, f"answer {i} " + "y" * 900))
    result = plan(Conversation(items))
    total = sum(t.size for t in result.history)
    assert total <= 40 * 1024 and result.history[0].role == "USER"
    assert result.history[-1].pieces[0].startswith("answer 59")
    assert all(len(p.encode()) < 1024 for t in result.history for p in t.pieces)


def test_tool_calls_become_notes_and_late_results_are_unanswered():
    conversation = Conversation(
        [
            Message(Role.USER, "check A1 and B2"),
            FunctionCall("c1", "lookup", '{"id": "A1"}'),
            FunctionOutput("c1", '"shipped"'),
            Message(Role.ASSISTANT, "A1 shipped."),
            FunctionCall("c2", "lookup", '{"id": "B2"}'),
            FunctionOutput("c2", '"late"'),
        ]
    )
    result = plan(conversation)
    assert [t.role for t in result.history] == ["USER", "ASSISTANT"]
    note = result.history[1].pieces[0]
    assert '[lookup tool: input {"id": "A1"}, result "shipped"]' in note
    assert '[lookup tool: input {"id": "B2"}, no result yet]' in note
    assert result.unanswered == 'The lookup tool returned "late".'


def test_the_callers_last_words_are_unanswered():
    conversation = Conversation(
        [Message(Role.USER, "hi"), Message(Role.ASSISTANT, "hello"), Message(Role.USER, "bye")]
    )
    result = plan(conversation)
    assert [t.role for t in result.history] == ["USER", "ASSISTANT"]
    assert result.unanswered == "bye"


def test_a_failed_result_reaches_the_model_as_an_error_object():
    conversation = Conversation(
        [
            Message(Role.USER, "check A1"),
            FunctionCall("c1", "lookup", '{"id": "A1"}'),
            FunctionOutput("c1", "database down", is_error=True),
            Message(Role.ASSISTANT, "Sorry."),
            FunctionCall("c2", "lookup", '{"id": "B2"}'),
            FunctionOutput("c2", "timeout", is_error=True),
        ]
    )
    result = plan(conversation)
    note = result.history[1].pieces[0]
    assert '[lookup tool (failed): input {"id": "A1"}, result {"error": "database down"}]' in note
    assert result.unanswered == 'The lookup tool failed with {"error": "timeout"}.'
