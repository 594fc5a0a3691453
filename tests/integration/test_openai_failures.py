"""Failures retrying cannot fix end the session at once; rate limits do not end it.

The emulator accepts the handshake and ``session.update``, then fails the first response with an
``error`` event and a failed ``response.done`` worded as production words them, and closes (1011,
a close a naive client would retry). We count connections at the emulator: no reconnect.
"""

from __future__ import annotations

import time

import pytest

import s2s
from s2s import EventType, Role

from ..conftest import openai_config
from ..helpers import collect, final_text, turn_end


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("insufficient_quota", s2s.QuotaExceededError),
        ("credit_balance_exhausted", s2s.QuotaExceededError),
        ("billing_hard_limit_reached", s2s.QuotaExceededError),
        ("invalid_api_key", s2s.AuthenticationError),
        ("account_deactivated", s2s.AuthenticationError),
        ("forbidden", s2s.AuthenticationError),
        ("model_not_found", s2s.ModelUnavailableError),
    ],
)
async def test_a_terminal_failure_ends_the_session_without_reconnecting(
    openai_emulator, code, error_type
):
    openai_emulator.options.fail_responses = code
    session = await s2s.new("openai_realtime", openai_config(openai_emulator)).start()
    started = time.monotonic()
    await session.send_text("hello")
    with pytest.raises(error_type) as info:
        await collect(session, lambda e: False)
    elapsed = time.monotonic() - started
    await session.close()
    error = info.value
    assert error.code == code and error.provider == "openai_realtime" and not error.retryable
    assert elapsed < 2.0
    assert openai_emulator.connections == 1  # never dialled again


@pytest.mark.parametrize("code", ["inference_rate_limit_exceeded", "rate_limit_exceeded"])
async def test_a_rate_limited_response_is_reported_and_the_session_goes_on(openai_emulator, code):
    openai_emulator.options.fail_responses = code
    async with await s2s.new("openai_realtime", openai_config(openai_emulator)).start() as session:
        await session.send_text("hello")
        events = await collect(session, turn_end("failed"))
        (error,) = [e.error for e in events if e.type is EventType.ERROR]
        assert isinstance(error, s2s.RateLimitError) and error.retryable
        assert error.code == code
        await session.send_text("again")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "again".']
    assert openai_emulator.connections == 1
