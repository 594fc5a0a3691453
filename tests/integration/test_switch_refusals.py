"""Input the application sends during a connection switch, that the new connection refuses."""

from __future__ import annotations

import asyncio

import s2s
from s2s import EventType, ToolResult

from ..conftest import openai_config
from ..helpers import collect, final_text, turn_end


async def test_a_refused_buffered_input_is_an_error_event_and_the_call_goes_on(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    async with await engine.start() as session:
        openai_emulator.options.event_delay_s = 0.2  # the new connection takes a while
        openai_emulator.drop_connections()
        await asyncio.sleep(0.1)  # switching: input is buffered, not checked yet
        await session.send_tool_result(ToolResult("call_never_made", "x"))
        events = await collect(session, lambda e: e.type is EventType.ERROR, timeout=15)
        openai_emulator.options.event_delay_s = 0.0
        await session.send_text("still there?")
        after = await collect(session, turn_end())
    assert [e.type for e in events][-2:] == [EventType.SESSION_RESUMED, EventType.ERROR]
    error = events[-1].error
    assert isinstance(error, s2s.InvalidInputError) and "call_never_made" in str(error)
    assert final_text(after, s2s.Role.ASSISTANT) == ['You said: "still there?".']
