"""The session actor's loops are supervised: a failure ends the call with a reason, logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from actors.session_actor import SessionActor
from s2s.errors import S2SError
from s2s.service.config import ServiceConfig


def actor() -> SessionActor:
    spec = {"session_id": "sup-0001", "provider": "openai_realtime", "config": {}}
    return SessionActor("sup-0001", spec, ServiceConfig().model_dump())


async def test_a_failing_loop_is_logged_and_ends_the_call(caplog: pytest.LogCaptureFixture):
    subject = actor()
    ended: list[tuple[str, S2SError | None]] = []

    async def end(reason: str, error: S2SError | None, status: str = "closed") -> None:
        ended.append((reason, error))

    subject._end = end  # type: ignore[method-assign]

    async def broken() -> None:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR):
        await subject._supervised("event pump", broken())
    assert ended and ended[0][0] == "internal_error"
    assert "event pump failed: KeyError" in str(ended[0][1])
    assert "the session's event pump failed" in caplog.text


async def test_cancelling_a_loop_is_not_a_failure():
    subject = actor()
    ended: list[str] = []

    async def end(reason: str, error: S2SError | None, status: str = "closed") -> None:
        ended.append(reason)

    subject._end = end  # type: ignore[method-assign]
    task = asyncio.ensure_future(subject._supervised("housekeeping", asyncio.Event().wait()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == []
