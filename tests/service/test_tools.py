import asyncio
from typing import Literal

import pytest

import s2s
from s2s.tools import ToolRegistry, tool
from s2s.tools.decorator import ToolArgumentError, tool_of
from s2s.tools.registry import pool_registries


@tool
def book(room: Literal["A", "B"], nights: int, guests: list[str], note: str | None = None) -> dict:
    """Book a room.

    Longer description that is not part of the summary.

    Args:
        room: Which room.
        nights: How many nights,
            at least one.
        guests: Names of the guests.
        note: Anything else.
    """
    return {"room": room, "nights": nights, "guests": guests, "note": note}


def test_schema_from_type_hints_and_docstring():
    spec = tool_of(book)
    assert spec.description == "Book a room."
    props = spec.parameters["properties"]
    assert props["room"] == {"enum": ["A", "B"], "type": "string", "description": "Which room."}
    assert props["nights"] == {"type": "integer", "description": "How many nights, at least one."}
    assert props["guests"]["type"] == "array" and props["guests"]["items"] == {"type": "string"}
    assert spec.parameters["required"] == ["room", "nights", "guests"]
    assert "title" not in str(spec.parameters)
    assert book("A", 1, ["x"])["room"] == "A"  # still a plain function


async def test_arguments_are_validated_before_running():
    spec = tool_of(book)
    assert await spec.run('{"room": "B", "nights": 2, "guests": ["a"]}') == (
        '{"room": "B", "nights": 2, "guests": ["a"], "note": null}'
    )
    with pytest.raises(ToolArgumentError, match="room: Input should be 'A' or 'B'"):
        await spec.run('{"room": "C", "nights": 2, "guests": []}')
    with pytest.raises(ToolArgumentError, match="nights: Field required"):
        await spec.run('{"room": "A", "guests": []}')
    with pytest.raises(ToolArgumentError, match="not valid JSON"):
        await spec.run("{")
    with pytest.raises(ToolArgumentError, match="Extra inputs"):
        await spec.run('{"room": "A", "nights": 1, "guests": [], "breakfast": true}')


async def test_sync_tools_run_off_the_event_loop():
    @tool
    def blocking(seconds: float) -> float:
        """Sleep (blocking).

        Args:
            seconds: how long.
        """
        import time

        time.sleep(seconds)
        return seconds

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await tool_of(blocking).run('{"seconds": 0.3}')
    task.cancel()
    assert ticks >= 10  # the loop kept running


def test_bad_tool_declarations_are_explained():
    with pytest.raises(s2s.ConfigurationError, match="needs a type hint"):
        tool(lambda x: x)
    with pytest.raises(s2s.ConfigurationError, match="needs a docstring"):

        @tool
        def undocumented(x: int) -> int:
            return x


def test_registries_from_modules_and_pools():
    registry = ToolRegistry.from_modules(["s2s.tools.examples"])
    assert "lookup_order" in registry and len(registry.definitions()) == len(registry)
    with pytest.raises(s2s.ConfigurationError, match="no tool named 'nope'"):
        registry.get("nope")
    with pytest.raises(s2s.ConfigurationError, match="cannot be imported"):
        ToolRegistry.from_modules(["no.such.module"])
    with pytest.raises(
        s2s.ConfigurationError, match="is in pool 'a' and pool 'b'; give each tool one pool"
    ):
        pool_registries({"a": ["s2s.tools.examples"], "b": ["s2s.tools.examples"]})


def test_example_tools_keep_their_model_visible_parameters():
    registry = ToolRegistry.from_modules(["s2s.tools.examples"])
    props = {d.name: set(d.parameters["properties"]) for d in registry.definitions()}
    assert props == {
        "lookup_order": {"order_id"},
        "check_balance": {"account_id", "currency"},
        "schedule_callback": {"phone", "when", "reason"},
        "transfer_to_agent": {"department", "summary"},
        "wait": {"seconds"},
    }
    assert [t.name for t in registry if t.context_parameter] == [
        "check_balance",
        "schedule_callback",
    ]
