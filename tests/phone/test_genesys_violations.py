"""The simulator catches what the Genesys reference client rejects, and aborts like it does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from s2s.phone.genesys import GenesysCall, GenesysCredentials
from s2s.phone.genesys_timeline import GenesysOutcome, GenesysSessionError

from ..conftest import SECOND
from .genesys_server import API_KEY, SECRET, AudioHookServer, Behaviour, ServerSession

CREDENTIALS = GenesysCredentials(API_KEY, SECRET)
BARGE_IN = {"entities": [{"type": "barge_in", "data": {}}]}
PCMU = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}

Fault = Callable[[ServerSession], Awaitable[None]]


def assert_aborted(session: ServerSession, code: int, outcome: GenesysOutcome) -> None:
    """The reference client's abort: ``error{code}``, then ``close{reason:"error"}``."""
    types = [m["type"] for m in session.messages]
    assert types[-2:] == ["error", "close"], types
    assert session.messages[-2]["parameters"]["code"] == code
    assert session.messages[-1]["parameters"] == {"reason": "error"}
    assert (outcome.ended_by, outcome.closed_in_time) == ("error", True)
    assert not outcome.success


FAULTS: dict[str, tuple[Fault, str]] = {
    "missing parameters": (
        lambda s: s.send("event", omit=("parameters",)),
        "'parameters' is missing",
    ),
    "parameters not an object": (lambda s: s.send("pause", extra={"parameters": []}), "object"),
    "position on a server message": (
        lambda s: s.send("event", BARGE_IN, extra={"position": "PT1S"}),
        "must not carry 'position'",
    ),
    "skipped seq": (lambda s: s.send("event", BARGE_IN, seq=s.seq + 2), "skipped"),
    "duplicated seq": (lambda s: s.send("event", BARGE_IN, seq=s.seq), "duplicated"),
    "clientseq ahead": (lambda s: s.send("event", BARGE_IN, clientseq=999), "ahead"),
    "wrong version": (lambda s: s.send("pause", extra={"version": "1"}), "version"),
    "wrong id": (lambda s: s.send("pause", extra={"id": "not-the-session"}), "is not session"),
    "paused from the server": (lambda s: s.send("paused"), "client-only"),
    "resumed from the server": (
        lambda s: s.send("resumed", {"start": "PT0S", "discarded": "PT1S"}),
        "client-only",
    ),
    "error from the server": (
        lambda s: s.send("error", {"code": 500, "message": "oops"}),
        "client-only",
    ),
    "reconnect": (lambda s: s.send("reconnect"), "reconnect"),
    "unknown type": (lambda s: s.send("hello"), "unknown message type"),
    "non-string outputVariables": (
        lambda s: s.send("disconnect", {"reason": "completed", "outputVariables": {"n": 3}}),
        "must be strings",
    ),
    "bad disconnect reason": (lambda s: s.send("disconnect", {"reason": "done"}), "reason"),
    "entities not a list": (lambda s: s.send("event", {"entities": {}}), "entities"),
    "entity without data": (
        lambda s: s.send("event", {"entities": [{"type": "barge_in"}]}),
        "type, data",
    ),
    "bad bot_turn_response": (
        lambda s: s.send(
            "event", {"entities": [{"type": "bot_turn_response", "data": {"disposition": "x"}}]}
        ),
        "disposition",
    ),
    "a second opened": (lambda s: s.send("opened", {"media": [PCMU]}), "second 'opened'"),
    "pong without ping": (lambda s: s.send("pong"), "no ping outstanding"),
    "not JSON": (lambda s: s.ws.send("{nope"), "not JSON"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_a_bad_server_message_aborts_with_400(fault: str):
    send, expected = FAULTS[fault]
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, close_timeout_s=2 * SECOND)
        async with call:
            session = await server.session()
            await send(session)
            outcome = await call.finished(3 * SECOND)
    assert any(expected in v for v in outcome.violations), outcome.violations
    assert_aborted(session, 400, outcome)


async def test_a_text_message_over_64_kib_aborts_with_413():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, close_timeout_s=2 * SECOND)
        async with call:
            session = await server.session()
            await session.send("event", {"entities": [{"type": "x", "data": {"t": "a" * 70000}}]})
            outcome = await call.finished(3 * SECOND)
    assert any("exceeds" in v for v in outcome.violations)
    assert_aborted(session, 413, outcome)


async def test_a_pong_with_the_wrong_clientseq_aborts_with_400():
    async with AudioHookServer(Behaviour(pong_clientseq_delta=-1)) as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, close_timeout_s=2 * SECOND)
        async with call:
            session = await server.session()
            outcome = await call.finished(3 * SECOND)
    assert any("does not match the ping's seq" in v for v in outcome.violations)
    assert_aborted(session, 400, outcome)


async def test_a_pong_later_than_the_next_ping_aborts_with_408():
    async with AudioHookServer(Behaviour(pongs_to_answer=1)) as server:
        call = await GenesysCall.connect(
            server.url, CREDENTIALS, ping_interval_s=0.3, close_timeout_s=2 * SECOND
        )
        async with call:
            session = await server.session()
            outcome = await call.finished(3 * SECOND)
    assert [m["type"] for m in session.messages].count("ping") == 2
    assert any("no pong for ping seq" in v for v in outcome.violations)
    assert_aborted(session, 408, outcome)
    second_ping, error = session.of_type("ping")[1], session.of_type("error")[0]
    assert 0.25 < error["_at"] - second_ping["_at"] < 0.6


def offer_two(params: dict[str, Any]) -> dict[str, Any]:
    return {"media": params["media"]}


def offer_other(params: dict[str, Any]) -> dict[str, Any]:
    return {"media": [{**PCMU, "format": "L16"}]}


def offer_nothing(params: dict[str, Any]) -> dict[str, Any]:
    return {"media": []}


@pytest.mark.parametrize(
    ("opened_params", "expected"),
    [
        (offer_two, "exactly one entry"),
        (offer_other, "was not offered"),
        (offer_nothing, "is empty"),
    ],
)
async def test_a_bad_media_choice_fails_the_open_with_400(
    opened_params: Callable[[dict[str, Any]], dict[str, Any]], expected: str
):
    offer = [PCMU, {**PCMU, "channels": ["external", "internal"]}]
    async with AudioHookServer(Behaviour(opened_params=opened_params)) as server:
        with pytest.raises(GenesysSessionError, match=expected) as caught:
            await GenesysCall.connect(
                server.url, CREDENTIALS, media_offer=offer, close_timeout_s=2 * SECOND
            )
        session = await server.session()
    assert caught.value.outcome is not None
    assert_aborted(session, 400, caught.value.outcome)


async def test_opened_after_the_deadline_fails_with_408():
    async with AudioHookServer(Behaviour(opened_delay_s=0.5)) as server:
        with pytest.raises(GenesysSessionError, match="no 'opened' within 0.2 s") as caught:
            await GenesysCall.connect(
                server.url, CREDENTIALS, open_timeout_s=0.2, close_timeout_s=2 * SECOND
            )
        session = await server.session()
    assert caught.value.outcome is not None
    assert_aborted(session, 408, caught.value.outcome)
    assert session.frame_times == []


async def test_audio_before_opened_fails_the_open():
    async def early_audio(session: ServerSession) -> None:
        await session.send_audio(b"\xff" * 1600)

    async with AudioHookServer(Behaviour(before_opened=early_audio)) as server:
        with pytest.raises(GenesysSessionError, match="audio before 'opened'") as caught:
            await GenesysCall.connect(server.url, CREDENTIALS, close_timeout_s=2 * SECOND)
        session = await server.session()
    assert caught.value.outcome is not None
    assert_aborted(session, 400, caught.value.outcome)


async def test_nothing_may_follow_closed():
    async with AudioHookServer(Behaviour(answer_close=False)) as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS)
        async with call:
            session = await server.session()
            hang_up = asyncio.create_task(call.hang_up())
            await session.wait_message("close", SECOND)
            await session.send("closed")
            await session.send("event", BARGE_IN)
            await hang_up
            outcome = await call.finished(SECOND)
    assert outcome.closed_in_time
    assert any("after 'closed'" in v for v in outcome.violations)


async def test_a_missing_closed_is_reported_after_the_close_timeout():
    async with AudioHookServer(Behaviour(answer_close=False)) as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, close_timeout_s=0.3)
        async with call:
            session = await server.session()
            await call.hang_up()
            outcome = await call.finished(SECOND)
    assert not outcome.closed_in_time
    assert any("no 'closed' within 0.3 s" in v for v in outcome.violations)
    assert [m["type"] for m in session.messages][-2:] == ["close", "error"]
    assert session.messages[-1]["parameters"]["code"] == 408


async def test_audio_while_paused_and_after_disconnect_is_recorded():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS)
        async with call:
            session = await server.session()
            await session.send("pause")
            await session.wait_message("paused", SECOND)
            await session.send_audio(b"\xff" * 1600)
            await call.wait_for(lambda t: len(t.bot_frames) == 1, SECOND)
            assert call.violations == ["server sent audio while the session was paused"]
            assert session.of_type("error") == []  # recorded, not fatal
            await session.send("resume")
            await session.send("disconnect", {"reason": "completed"})
            await session.send_audio(b"\xff" * 1600)
            outcome = await call.finished(2 * SECOND)
    assert "server sent audio after its 'disconnect'" in outcome.violations
    assert outcome.disconnect_reason == "completed" and not outcome.success


async def test_an_unsolicited_closed_ends_the_session():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS)
        async with call:
            session = await server.session()
            await session.send("closed")
            outcome = await call.finished(2 * SECOND)
    assert outcome.ended_by == "error"
    assert any("without a 'close'" in v for v in outcome.violations)


async def test_a_dropped_socket_is_a_violation():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS)
        async with call:
            session = await server.session()
            await session.ws.close()
            outcome = await call.finished(2 * SECOND)
    assert (outcome.ended_by, outcome.closed_in_time) == ("error", False)
    assert any("before the server sent 'closed'" in v for v in outcome.violations)
