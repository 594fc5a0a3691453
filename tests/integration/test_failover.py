"""Failover: a call moves to the next provider of ``Config.failover`` when its provider fails
for good, with nothing the caller said lost and every tool result applied exactly once.

The emulators are real servers; each source provider fails the way production words a spent
quota (OpenAI Realtime and GPT-Live: an ``insufficient_quota`` error and a close; Gemini: a close
1011 with the quota sentence; Nova: an in-stream ``serviceQuotaExceededException``). Every
provider is the source of one pair and the target of another. The measured gaps are printed
(``pytest -s``) and recorded in docs/providers.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import s2s
from s2s import EventType, Role, ToolResult
from s2s.audio.synth import silence
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.nova import NovaEmulator
from s2s.emulators.openai import OpenAIEmulator
from s2s.emulators.openai_live import LiveEmulator

from ..conftest import gemini_config, live_config, nova_config, openai_config
from ..helpers import LOOKUP, collect, final_text, heard_seconds, kinds, turn_end, utterance

ASK = 'call lookup_order {"order_id": "A1"}'
RATE = 16000

Emulators = dict[str, Any]


@pytest.fixture
def emulators(
    openai_emulator: OpenAIEmulator,
    gemini_emulator: GeminiEmulator,
    nova_emulator: NovaEmulator,
    live_emulator: LiveEmulator,
) -> Emulators:
    return {
        "openai_realtime": openai_emulator,
        "gemini_live": gemini_emulator,
        "nova": nova_emulator,
        "openai_live": live_emulator,
    }


def _config(provider: str, emulators: Emulators, **kwargs: Any) -> s2s.Config:
    make = {
        "openai_realtime": openai_config,
        "gemini_live": gemini_config,
        "nova": nova_config,
        "openai_live": live_config,
    }
    return make[provider](emulators[provider], **kwargs)


def _fallback(provider: str, emulators: Emulators) -> s2s.Fallback:
    return s2s.Fallback(provider, extra=dict(_config(provider, emulators).extra))


async def _run_out_of_quota(provider: str, emulators: Emulators) -> None:
    """The source provider's quota is spent, as production says it."""
    emulator = emulators[provider]
    if provider == "openai_realtime":
        await emulator.inject_error(
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            close_code=4000,
        )
    elif provider == "openai_live":
        await emulator.inject_failure("insufficient_quota")
    elif provider == "gemini_live":
        emulator.exhaust_quota()  # closes 1011 right after the next client message
    else:
        await emulator.inject_exception("serviceQuotaExceededException")


async def _say(
    session: s2s.Session, pcm: bytes, at_chunk: Callable[[int], Awaitable[None]] | None = None
) -> None:
    step = RATE // 50 * 2  # 20 ms
    for n, i in enumerate(range(0, len(pcm), step)):
        if at_chunk is not None:
            await at_chunk(n)
        await session.send_audio(pcm[i : i + step], sample_rate=RATE)
        await asyncio.sleep(0.004)


async def _move_the_timeline(session: s2s.Session, provider: str) -> None:
    """GPT-Live speaks only while input audio flows (its timeline is the input's): give it 5 s
    of silence at once rather than the session's real-time idle frames."""
    if provider == "openai_live":
        quiet = silence(5.0, RATE)
        step = RATE // 10 * 2  # 100 ms
        for i in range(0, len(quiet), step):
            await session.send_audio(quiet[i : i + step], sample_rate=RATE)


PAIRS = [
    ("openai_realtime", "gemini_live"),
    ("gemini_live", "nova"),
    ("nova", "openai_live"),
    ("openai_live", "openai_realtime"),
]


@pytest.mark.parametrize(("source", "target"), PAIRS)
async def test_mid_utterance_the_call_moves_on_and_no_caller_audio_is_lost(
    emulators: Emulators, source: str, target: str
) -> None:
    pcm = utterance(3.0, RATE, seed=5)
    alone = s2s.new(target, _config(target, emulators, sample_rate=RATE))
    async with await alone.start() as session:  # the control: the whole utterance on the target
        await _say(session, pcm)
        await _move_the_timeline(session, target)
        (control,) = final_text(await collect(session, turn_end(), timeout=20), Role.USER)

    config = _config(source, emulators, sample_rate=RATE, failover=[_fallback(target, emulators)])

    async def fail_at_1500_ms(n: int) -> None:
        if n == 75:
            await _run_out_of_quota(source, emulators)

    before = emulators[source].connections
    async with await s2s.new(source, config).start() as session:
        await _say(session, pcm, fail_at_1500_ms)
        await _move_the_timeline(session, target)
        events = await collect(session, turn_end(), timeout=20)
        assert session.provider == target
    (switched,) = [e for e in events if e.type is EventType.PROVIDER_SWITCHED]
    assert (switched.data["from"], switched.data["to"]) == (source, target)
    assert switched.data["error"]["type"] == "QuotaExceededError", switched.data
    (user,) = final_text(events, Role.USER)
    assert heard_seconds(user) == heard_seconds(control)  # all 3 s reached the new provider
    assert emulators[source].connections == before + 1  # a spent quota is never retried
    print(f"failover gap {source} -> {target} mid-utterance: {switched.data['gap_ms']} ms")


def _frames_mentioning(emulator: Any, text: str) -> int:
    """How many frames the emulator received that carry ``text`` (a tool result's content)."""
    if isinstance(emulator, NovaEmulator):
        frames = [json.dumps(e) for stream in emulator.streams for e in stream.events_in]
    else:
        frames = [str(f) for session in emulator.sessions for f in session.frames_in]
    return sum(text in frame for frame in frames)


@pytest.mark.parametrize(("source", "target"), PAIRS)
async def test_mid_tool_call_the_result_is_applied_once_on_the_new_provider(
    emulators: Emulators, source: str, target: str
) -> None:
    config = _config(source, emulators, tools=[LOOKUP], failover=[_fallback(target, emulators)])
    async with await s2s.new(source, config).start() as session:
        await session.send_text(ASK)
        events = await collect(session, lambda e: e.type is EventType.TOOL_CALL, timeout=20)
        call = events[-1].tool_call
        assert call is not None
        await _run_out_of_quota(source, emulators)
        if source == "gemini_live":
            await session.send_audio(b"\0" * 640, sample_rate=RATE)  # the message it fails on
        switched = await collect(
            session, lambda e: e.type is EventType.PROVIDER_SWITCHED, timeout=20
        )
        assert switched[-1].data["pending_tool_calls"] == 1
        await session.send_tool_result(ToolResult(call.id, '{"status": "shipped"}'))
        with pytest.raises(s2s.InvalidInputError, match="already answered"):
            await session.send_tool_result(ToolResult(call.id, '{"status": "again"}'))
        await _move_the_timeline(session, target)
        events = await collect(session, turn_end(), timeout=20)
    assert any("shipped" in text for text in final_text(events, Role.ASSISTANT)), kinds(events)
    assert _frames_mentioning(emulators[source], "shipped") == 0
    assert _frames_mentioning(emulators[target], "shipped") == 1  # the result, applied once
    assert _frames_mentioning(emulators[target], "again") == 0
    print(f"failover gap {source} -> {target} mid-tool-call: {switched[-1].data['gap_ms']} ms")


async def test_without_failover_a_spent_quota_ends_the_call_at_once(
    openai_emulator: OpenAIEmulator,
) -> None:
    session = await s2s.new("openai_realtime", openai_config(openai_emulator)).start()
    await _run_out_of_quota("openai_realtime", {"openai_realtime": openai_emulator})
    with pytest.raises(s2s.QuotaExceededError):
        await collect(session, lambda e: False)
    assert openai_emulator.connections == 1


async def test_connections_that_die_before_doing_anything_are_not_retried_forever(
    openai_emulator: OpenAIEmulator,
) -> None:
    """Each new connection is accepted and then dropped before the provider says anything: the
    retry count is not reset by the handshake, so the session stops after the policy's attempts."""
    session = await s2s.new("openai_realtime", openai_config(openai_emulator)).start()
    openai_emulator.drop_connections()

    async def drop_again(event: s2s.SessionEvent) -> None:
        if event.type is EventType.SESSION_RESUMED:
            openai_emulator.drop_connections()

    with pytest.raises(s2s.ProviderConnectionError, match="before the provider did anything"):
        await collect(session, lambda e: False, on_event=drop_again, timeout=30)
    assert openai_emulator.connections == s2s.ReconnectPolicy().attempts


async def test_a_provider_refused_at_start_hands_the_call_to_the_next(
    openai_emulator: OpenAIEmulator, gemini_emulator: GeminiEmulator
) -> None:
    emulators = {"openai_realtime": openai_emulator, "gemini_live": gemini_emulator}
    config = openai_config(
        openai_emulator,
        extra={"api_key": "sk-wrong-key-000000"},
        failover=[_fallback("gemini_live", emulators)],
    )
    async with await s2s.new("openai_realtime", config).start() as session:
        assert session.provider == "gemini_live"
        first = await collect(session, lambda e: True)
        await session.send_text("hello")
        events = await collect(session, turn_end(), timeout=20)
    assert first[0].type is EventType.PROVIDER_SWITCHED
    assert first[0].data["error"]["type"] == "AuthenticationError"
    assert final_text(events, Role.ASSISTANT)
