"""ToolContext: injected into the tools that ask for it, invisible to the model."""

from __future__ import annotations

import dataclasses
import json

import msgpack
import pytest

import s2s
from s2s.tools import ToolContext, ToolError, tool
from s2s.tools.decorator import ToolArgumentError, tool_of
from s2s.tools.examples import check_balance, lookup_order, schedule_callback
from s2s.tools.queue import ToolOutcome, ToolRequest


@tool
def whoami(ctx: ToolContext, greeting: str = "hi") -> dict[str, object]:
    """Say who is calling.

    Args:
        greeting: How to greet.
    """
    return {"greeting": greeting, "tenant": ctx.tenant, "accounts": ctx.metadata["account_ids"]}


CONTEXT = ToolContext("acme", "sess-1", "call-1", 1, {"account_ids": ["111"]}, 2e9)


def test_the_context_is_not_in_the_schema():
    spec = tool_of(whoami)
    assert spec.context_parameter == "ctx" and spec.wants_context
    assert spec.parameters["properties"] == {
        "greeting": {"type": "string", "default": "hi", "description": "How to greet."}
    }
    assert "required" not in spec.parameters and "ctx" not in json.dumps(spec.parameters)
    assert "ctx" not in spec.arguments.model_fields
    assert tool_of(lookup_order).context_parameter is None


async def test_the_model_cannot_send_the_context():
    spec = tool_of(whoami)
    with pytest.raises(ToolArgumentError, match="ctx: Extra inputs are not permitted"):
        spec.parse('{"ctx": {"tenant": "evil"}}')
    with pytest.raises(ToolArgumentError, match="ctx: Extra inputs are not permitted"):
        await spec.run('{"ctx": {"tenant": "evil"}}', CONTEXT)


async def test_run_injects_the_context():
    out = json.loads(await tool_of(whoami).run('{"greeting": "hello"}', CONTEXT))
    assert out == {"greeting": "hello", "tenant": "acme", "accounts": ["111"]}


async def test_a_context_tool_without_a_context_is_a_configuration_error():
    with pytest.raises(s2s.ConfigurationError, match="'whoami' takes a ToolContext \\('ctx'\\)"):
        await tool_of(whoami).run("{}")


async def test_tools_without_a_context_ignore_one():
    spec = tool_of(lookup_order)
    assert await spec.run('{"order_id": "b7"}', CONTEXT) == await spec.run('{"order_id": "b7"}')


def test_bad_context_declarations_are_explained():
    with pytest.raises(s2s.ConfigurationError, match="one ToolContext parameter at most"):

        @tool
        def two(a: ToolContext, b: ToolContext) -> None:
            """Two contexts."""

    with pytest.raises(s2s.ConfigurationError, match="annotate 'ctx' exactly ToolContext"):

        @tool
        def optional(ctx: ToolContext | None = None) -> None:
            """An optional context would reach the model's schema."""


def test_metadata_is_a_read_only_private_copy():
    source = {"account_ids": ["111"]}
    context = ToolContext("acme", "s", "c", metadata=source)
    with pytest.raises(TypeError):
        context.metadata["account_ids"] = ["999"]  # type: ignore[index]
    context.metadata["account_ids"].append("999")  # a nested value is the context's own copy
    assert source == {"account_ids": ["111"]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.tenant = "other"  # type: ignore[misc]
    assert ToolContext("t", "s", "c").metadata == {}
    assert ToolContext("t", "s", "c").attempt == 1
    assert ToolContext("t", "s", "c").idempotency_key == "t/s/c"


def test_request_round_trips_with_tenant_and_metadata():
    request = ToolRequest(
        "sess", "c1", "check_balance", "{}", "p", 123.5, tenant="acme", metadata={"a": [1, "x"]}
    )
    assert ToolRequest.unpack(request.pack()) == request
    plain = ToolRequest("sess", "c1", "lookup_order", "{}", "p", 123.5)  # the old constructor
    assert (plain.tenant, plain.metadata) == ("", {})
    assert ToolRequest.unpack(plain.pack()) == plain


def test_request_unpacks_older_and_newer_entries():
    old = {
        "session_id": "sess",
        "call_id": "c1",
        "name": "lookup_order",
        "arguments": "{}",
        "pool": "p",
        "deadline": 1.0,
    }
    unpacked = ToolRequest.unpack(msgpack.packb(old))
    assert (unpacked.call_id, unpacked.tenant, unpacked.metadata) == ("c1", "", {})
    newer = {**old, "tenant": "acme", "priority": 7, "trace": {"id": "x"}}
    unpacked = ToolRequest.unpack(msgpack.packb(newer))
    assert (unpacked.call_id, unpacked.tenant) == ("c1", "acme")
    assert ToolRequest.unpack(msgpack.packb({**old, "metadata": None})).metadata == {}
    with pytest.raises(ValueError, match="metadata a map"):
        ToolRequest.unpack(msgpack.packb({**old, "metadata": ["x"]}))
    with pytest.raises(ValueError, match="must be a map"):
        ToolRequest.unpack(msgpack.packb(["not", "a", "map"]))
    with pytest.raises(TypeError):  # a required field missing
        ToolRequest.unpack(msgpack.packb({"call_id": "c1"}))
    outcome = ToolOutcome("c1", "ok", False, "w", 1.0, 1)
    assert ToolOutcome.unpack(msgpack.packb({**dataclasses.asdict(outcome), "x": 1})) == outcome


async def test_check_balance_refuses_accounts_the_caller_does_not_own():
    spec = tool_of(check_balance)
    assert "context" not in spec.parameters["properties"]
    assert spec.parameters["required"] == ["account_id"]
    out = json.loads(await spec.run('{"account_id": "111"}', CONTEXT))
    assert out["account_id"] == "111" and out["currency"] == "EUR"
    with pytest.raises(ToolError, match="that account does not belong to this caller"):
        await spec.run('{"account_id": "999"}', CONTEXT)
    # a substring of an owned account is not owned; malformed account lists own nothing
    with pytest.raises(ToolError):
        await spec.run(
            '{"account_id": "11"}', ToolContext("acme", "s", "c", metadata={"account_ids": "111"})
        )
    with pytest.raises(ToolError):
        await spec.run(
            '{"account_id": "111"}', ToolContext("acme", "s", "c", metadata={"account_ids": 111})
        )


async def test_check_balance_differs_by_tenant():
    spec = tool_of(check_balance)
    args = '{"account_id": "111"}'
    acme = json.loads(await spec.run(args, ToolContext("acme", "s", "c")))
    again = json.loads(await spec.run(args, ToolContext("acme", "s2", "c2")))
    other = json.loads(await spec.run(args, ToolContext("globex", "s", "c")))
    assert acme == again and acme["balance"] != other["balance"]


async def test_schedule_callback_books_one_ticket_per_call():
    spec = tool_of(schedule_callback)
    assert set(spec.parameters["properties"]) == {"phone", "when", "reason"}
    args = '{"phone": "+3312345678", "when": "tomorrow 9am"}'
    first = json.loads(await spec.run(args, ToolContext("acme", "s", "c1", attempt=1)))
    redelivered = json.loads(await spec.run(args, ToolContext("acme", "s", "c1", attempt=2)))
    assert first == redelivered and first["ticket"].startswith("CB-")
    other_call = json.loads(await spec.run(args, ToolContext("acme", "s", "c2")))
    other_tenant = json.loads(await spec.run(args, ToolContext("globex", "s", "c1")))
    assert len({first["ticket"], other_call["ticket"], other_tenant["ticket"]}) == 3
