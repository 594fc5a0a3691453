"""Per-model rules end to end: our client against the emulator on each Gemini Live model, the
emulator's refusals on the wire, and failures that end a session without a reconnect (quota,
retired model)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.emulators.gemini.session import BACKGROUND_REPLY, THINKING_FILLER

from ..conftest import gemini_config
from ..helpers import LOOKUP, collect, final_text, turn_end
from .test_gemini_emulator import closed_with, connect, recv

EXTENDED = "gemini-3.8-live-extended-thinking"
ASK = 'call lookup_order {"order_id": "A1"}'
ANSWER = "The lookup_order tool returned packed."
QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: h"
)


def frames_in(emulator: Any) -> list[dict[str, Any]]:
    return [json.loads(f) for f in emulator.sessions[-1].frames_in]


def statuses(emulator: Any) -> list[str | None]:
    """``interactionStatus`` of every ``turnComplete`` the emulator sent."""
    return [
        m["serverContent"].get("interactionStatus")
        for m in emulator.sessions[-1].frames_out
        if m.get("serverContent", {}).get("turnComplete")
    ]


@pytest.mark.parametrize(
    "model",
    [
        "gemini-3.8-live",
        EXTENDED,
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-preview-12-2025",
    ],
)
async def test_our_client_completes_a_tool_turn_on_each_model(gemini_emulator, model):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, model=model, tools=[LOOKUP]))
    async with await engine.start() as session:
        await session.send_text(ASK)
        events = await collect(session, lambda e: e.type is EventType.TOOL_CALL)
        await session.send_tool_result(ToolResult(events[-1].tool_call.id, '"packed"'))
        events += await collect(session, turn_end())
    setup = frames_in(gemini_emulator)[0]["setup"]
    (declaration,) = setup["tools"][0]["functionDeclarations"]
    response = next(f["toolResponse"] for f in frames_in(gemini_emulator) if "toolResponse" in f)
    assert "scheduling" not in response["functionResponses"][0]
    thinking = setup["generationConfig"].get("thinkingConfig")
    # one turn: the call, then the answer to its result (a blocking call pauses the turn, a
    # background one runs while the model speaks a filler)
    assert [e.reason for e in events if e.type is EventType.TURN_END] == ["completed"]
    if model == EXTENDED:
        assert declaration["behavior"] == "NON_BLOCKING" and thinking == {"thinkingLevel": "LOW"}
        assert final_text(events, Role.ASSISTANT) == [BACKGROUND_REPLY, ANSWER]
        assert statuses(gemini_emulator) == ["IN_PROGRESS", "IDLE"]
    else:
        assert declaration["behavior"] == "BLOCKING" and thinking is None
        assert final_text(events, Role.ASSISTANT) == [ANSWER]
        assert statuses(gemini_emulator) == [None]


async def test_extended_thinking_filler_and_answer_are_one_turn(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, model=EXTENDED))
    async with await engine.start() as session:
        await session.send_text("hello there")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == [THINKING_FILLER, 'You said: "hello there".']
    assert [e.type for e in events].count(EventType.RESPONSE_STARTED) == 1
    assert [e.type for e in events].count(EventType.TURN_END) == 1
    assert statuses(gemini_emulator) == ["IN_PROGRESS", "IDLE"]


# -- refusals on the wire -------------------------------------------------------------------


def setup_message(model: str, **fields: Any) -> str:
    return json.dumps({"setup": {"model": f"models/{model}", **fields}})


async def test_a_retired_model_is_accepted_at_the_handshake_then_closed_1008(gemini_emulator):
    async with await connect(gemini_emulator) as ws:  # the upgrade succeeds
        await ws.send(setup_message("gemini-2.0-flash-live-001"))
        assert await closed_with(ws) == (
            1008,
            "Publisher Model `models/gemini-2.0-flash-live-001` was not found or is not "
            "supported for bidiGenerateContent",
        )


@pytest.mark.parametrize(
    ("model", "setup", "after", "reason"),
    [
        (
            EXTENDED,
            {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}},
            {
                "toolResponse": {
                    "functionResponses": [{"id": "x", "response": {}, "scheduling": "SILENT"}]
                }
            },
            "Function response scheduling is not supported for this model",
        ),
        (
            "gemini-3.8-live",
            {},
            {"clientContent": {"turns": [{"parts": [{"text": "hi"}]}], "turnComplete": True}},
            "Request contains an invalid argument",
        ),
        (
            "gemini-3.8-live",
            {"generationConfig": {"enableAffectiveDialog": True}},  # opens, then closes
            {"realtimeInput": {"text": "hi"}},
            "Request contains an invalid argument",
        ),
    ],
)
async def test_mid_session_refusals_close_1007_with_the_exact_reason(
    gemini_emulator, model, setup, after, reason
):
    async with await connect(gemini_emulator) as ws:
        await ws.send(setup_message(model, **setup))
        assert "setupComplete" in await recv(ws)
        await ws.send(json.dumps(after))
        assert await closed_with(ws) == (1007, reason)


# -- failures that retrying cannot fix ------------------------------------------------------


async def test_exhausted_quota_at_start_ends_the_session_without_a_reconnect(gemini_emulator):
    gemini_emulator.exhaust_quota(close_after_s=0.05)
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))

    async def start_and_listen() -> None:
        session = await engine.start()  # set up: the close comes just after
        await collect(session, lambda e: False)

    with pytest.raises(s2s.QuotaExceededError) as info:
        await start_and_listen()
    assert info.value.code == "1011" and not info.value.retryable
    assert QUOTA in str(info.value)
    assert gemini_emulator.connections == 1 and gemini_emulator.sessions[0].close_code == 1011
    assert "setupComplete" in gemini_emulator.sessions[0].frames_out[0]


async def test_exhausted_quota_mid_session_ends_it_at_once(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    session = await engine.start()
    await session.send_text("hello")
    await collect(session, turn_end())
    gemini_emulator.exhaust_quota()
    await session.send_text("still there?")
    with pytest.raises(s2s.QuotaExceededError) as info:
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
    assert info.value.code == "1011" and not info.value.retryable
    with pytest.raises(s2s.SessionClosedError):
        await session.send_text("hello?")
    await session.close()
    assert gemini_emulator.connections == 1


async def test_a_model_the_server_no_longer_serves_ends_start_without_a_reconnect(
    gemini_emulator,
):
    model = "gemini-3.5-live-translate-preview"  # shut down; our table does not know it
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, model=model))
    with pytest.raises(s2s.ModelUnavailableError, match=f"`models/{model}` was not found") as e:
        await engine.start()
    assert e.value.code == "1008" and not e.value.retryable
    assert gemini_emulator.connections == 1
