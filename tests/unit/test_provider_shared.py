"""The provider-neutral protocol parts: tool ledger, outbox, result encoding, open checks."""

from __future__ import annotations

import json

import pytest

from s2s.config import ToolCall, ToolResult
from s2s.conversation import Conversation, FunctionCall, FunctionOutput
from s2s.errors import InvalidInputError, SessionClosedError
from s2s.providers.shared import Outbox, ToolLedger, check_open, result_object, result_text


def _ledger(*items: FunctionCall | FunctionOutput) -> ToolLedger:
    return ToolLedger("test", Conversation(items))


def test_a_result_is_recorded_once_and_a_second_is_refused() -> None:
    ledger = _ledger()
    assert ledger.open(ToolCall("c1", "lookup", "{}"), group="r1") is not None
    assert ledger.waiting
    entry = ledger.answer(ToolResult("c1", '{"ok": true}'))
    assert entry.answered and not ledger.waiting
    assert list(ledger.conversation) == [FunctionOutput("c1", '{"ok": true}', False)]
    with pytest.raises(InvalidInputError, match="already answered"):
        ledger.answer(ToolResult("c1", "again"))
    ledger.release("r1")
    with pytest.raises(InvalidInputError, match="already answered"):  # still, after release
        ledger.answer(ToolResult("c1", "again"))
    assert len(list(ledger.conversation)) == 1


def test_unknown_and_cancelled_calls_are_refused_by_name() -> None:
    ledger = _ledger()
    ledger.open(ToolCall("c1", "a"))
    ledger.open(ToolCall("c2", "b"))
    with pytest.raises(InvalidInputError, match=r"no tool call 'zz'.*open calls: c1, c2"):
        ledger.answer(ToolResult("zz", "x"))
    assert [c.id for c in ledger.cancel(["c2", "nope"])] == ["c2"]
    with pytest.raises(InvalidInputError, match=r"cancelled by the provider \(test\)"):
        ledger.answer(ToolResult("c2", "x"))
    assert list(ledger.conversation) == []


def test_calls_pending_in_the_conversation_are_carried_and_answerable() -> None:
    ledger = _ledger(FunctionCall("old", "lookup", "{}", "old"))
    entry = ledger.get("old")
    assert entry is not None and entry.carried and ledger.waiting
    assert ledger.open(ToolCall("old", "lookup", "{}")) is None  # a duplicate is ignored
    ledger.answer(ToolResult("old", "done"))
    assert ledger.conversation.pending_calls() == []


def test_group_answered_only_when_every_call_of_the_group_is() -> None:
    ledger = _ledger()
    ledger.open(ToolCall("a", "t"), group="r1")
    ledger.open(ToolCall("b", "t"), group="r1")
    ledger.open(ToolCall("c", "t"), group="r2")
    ledger.answer(ToolResult("a", "1"))
    assert not ledger.group_answered("r1")
    ledger.answer(ToolResult("b", "2"))
    assert ledger.group_answered("r1") and not ledger.group_answered("r2")
    assert [c.id for c in ledger.release("r1")] == ["a", "b"]
    assert [c.id for c in ledger.calls] == ["c"]


def test_outbox_holds_until_open_then_passes_through_in_order() -> None:
    sent: list[str] = []
    box = Outbox[str](sent.append)
    box.put("a")
    box.put("b")
    assert sent == [] and len(box) == 2
    box.open()
    box.put("c")
    assert sent == ["a", "b", "c"]
    box.close()
    box.put("d")
    assert box.close() == ["d"]


def test_results_encode_errors_so_the_model_can_tell_them_apart() -> None:
    assert result_text('{"a": 1}', False) == '{"a": 1}'
    assert json.loads(result_text("boom", True)) == {"error": "boom"}
    assert result_object('{"a": 1}', False) == {"output": {"a": 1}}
    assert result_object("plain", False) == {"output": "plain"}
    assert result_object("[1, 2]", True) == {"error": [1, 2]}


def test_check_open_names_the_call_and_the_provider() -> None:
    check_open(False, "gemini", "send_audio")
    with pytest.raises(SessionClosedError, match="send_audio: the gemini connection is closed"):
        check_open(True, "gemini", "send_audio")
