"""Nova: failures retrying cannot fix end the call at once; transient ones are retried.

Counted at the emulator: ``requests`` is every stream our client asked for, so "no reconnect"
means it stays at what the call needed.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

import s2s
from s2s import EventType, Role
from s2s.providers.nova.client import NovaProvider
from s2s.providers.nova.protocol import error_for
from s2s.providers.nova.transport import open_stream

from ..conftest import nova_config
from ..helpers import collect, final_text, turn_end

FAST_RETRIES = s2s.ReconnectPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(NovaProvider, "reconnect", FAST_RETRIES)


async def test_an_exhausted_quota_before_the_stream_fails_start_without_retrying(nova_emulator):
    nova_emulator.refuse_next(3, error_type="ServiceQuotaExceededException")
    engine = s2s.new("nova", nova_config(nova_emulator))
    with pytest.raises(s2s.QuotaExceededError, match="exceeds the service quota") as info:
        await engine.start()
    assert info.value.code == "ServiceQuotaExceededException" and not info.value.retryable
    assert info.value.provider == "nova"
    assert nova_emulator.requests == 1
    assert nova_emulator.refusals == [(400, "ServiceQuotaExceededException")]


async def test_throttling_before_the_stream_is_retried_until_it_stops(nova_emulator):
    nova_emulator.refuse_next(2, error_type="ThrottlingException")
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await session.send_text("hello")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "hello".']
    assert nova_emulator.refusals == [(429, "ThrottlingException")] * 2
    assert nova_emulator.requests == 3
    assert nova_emulator.streams[-1].model == "amazon.nova-2-5-sonic"  # the default model


async def test_throttling_that_does_not_stop_is_bounded_by_the_reconnect_policy(nova_emulator):
    nova_emulator.refuse_next(10, error_type="ThrottlingException")
    engine = s2s.new("nova", nova_config(nova_emulator))
    with pytest.raises(s2s.ProviderConnectionError, match="gave up after 3") as info:
        await engine.start()
    assert info.value.code == "ThrottlingException"
    assert type(info.value.__cause__) is s2s.RateLimitError
    assert nova_emulator.requests == FAST_RETRIES.attempts


async def test_an_exhausted_quota_in_the_stream_ends_the_session_at_once(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator))
    session = await engine.start()
    await session.send_text("hello")
    await collect(session, turn_end())
    assert await nova_emulator.inject_exception("serviceQuotaExceededException") == 1
    with pytest.raises(s2s.QuotaExceededError) as info:
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
    assert info.value.code == "ServiceQuotaExceededException" and not info.value.retryable
    assert nova_emulator.requests == 1 and nova_emulator.endings == [
        "serviceQuotaExceededException"
    ]
    with pytest.raises(s2s.SessionClosedError):
        await session.send_text("hello?")
    await session.close()
    assert nova_emulator.requests == 1


@pytest.mark.parametrize("kind", ["modelNotReadyException", "serviceUnavailableException"])
async def test_a_transient_exception_in_the_stream_continues_the_call(nova_emulator, kind):
    engine = s2s.new("nova", nova_config(nova_emulator))
    async with await engine.start() as session:
        await nova_emulator.inject_exception(kind)
        await collect(session, lambda e: e.type is EventType.SESSION_RESUMED)
        await session.send_text("still there?")
        events = await collect(session, turn_end())
    assert final_text(events, Role.ASSISTANT) == ['You said: "still there?".']
    assert nova_emulator.requests == 2


async def test_a_model_not_enabled_for_the_account_fails_start_without_retrying(nova_emulator):
    nova_emulator.refuse_next(
        3,
        error_type="AccessDeniedException",
        message="You don't have access to the model with the specified model ID.",
    )
    engine = s2s.new("nova", nova_config(nova_emulator))
    with pytest.raises(s2s.ModelUnavailableError, match="access to the model") as info:
        await engine.start()
    assert info.value.code == "AccessDeniedException" and not info.value.retryable
    assert nova_emulator.requests == 1


async def test_the_emulators_end_of_life_answer_means_model_unavailable(nova_emulator):
    """Settings refuse Nova Sonic v1 before any request; past them, the service's answer for it
    still maps to ModelUnavailableError (an application could reach a retired id some other way)."""
    with pytest.raises(s2s.ConfigurationError, match="amazon.nova-2-5-sonic"):
        s2s.new("nova", s2s.Config(model="amazon.nova-sonic-v1:0"))
    provider = NovaProvider(nova_config(nova_emulator))
    retired = dataclasses.replace(provider.settings, model="amazon.nova-sonic-v1:0")
    transport = await open_stream(retired, await provider._credentials.identity())
    try:
        body = json.loads(await transport.recv())["exception"]
    finally:
        await transport.close()
    assert (body["type"], body["status"]) == ("ResourceNotFoundException", 404)
    error = error_for(body["type"], body["message"], body["status"])
    assert isinstance(error, s2s.ModelUnavailableError) and not error.retryable
    assert "end of its life" in str(error)
