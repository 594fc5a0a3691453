"""Every bad input gives a clear error that names what was wrong; the session stays usable."""

from __future__ import annotations

import socket

import pytest

import s2s
from s2s import EventType, ToolResult
from s2s.providers.openai_realtime import OpenAIRealtimeProvider

from ..conftest import openai_config
from ..helpers import collect, turn_end


@pytest.fixture
async def session(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    session = await engine.start()
    yield session
    await session.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.send_audio(b"\x00\x00\x00"), "odd number of bytes \\(3\\)"),
        (lambda s: s.send_audio("pcm"), "PCM16 bytes, got str"),
        (lambda s: s.send_audio(b"\x00\x00", sample_rate=96000), "sample_rate=96000"),
        (lambda s: s.send_audio(b"\x00\x00", sample_rate="16k"), "sample_rate must be an int"),
        (lambda s: s.send_text(42), "text must be a str, got int"),
        (lambda s: s.send_text("   "), "text is empty"),
        (lambda s: s.send_tool_result({"call_id": "x"}), "needs a ToolResult, got dict"),
        (
            lambda s: s.send_tool_result(ToolResult("call_unknown", "1")),
            "no tool call 'call_unknown'",
        ),
    ],
)
async def test_bad_arguments_are_refused_and_the_session_goes_on(session, call, message):
    with pytest.raises(s2s.InvalidInputError, match=message):
        await call(session)
    await session.send_text("still fine")
    events = await collect(session, turn_end())
    assert any(e.type is EventType.TRANSCRIPT and e.final for e in events)


def test_bad_playback_reports(session):
    with pytest.raises(s2s.InvalidInputError, match="item_id"):
        session.report_playback("", 10)
    with pytest.raises(s2s.InvalidInputError, match=">= 0"):
        session.report_playback("item_x", -5)


async def test_send_after_close(session):
    await session.close()
    for call in (
        session.send_audio(b"\x00\x00"),
        session.send_text("hi"),
        session.interrupt(),
        session.send_tool_result(ToolResult("c", "x")),
    ):
        with pytest.raises(s2s.SessionClosedError, match="closed session"):
            await call
    assert [e async for e in session.recv()] == []  # recv ends cleanly
    await session.close()  # twice is fine


def test_missing_key_and_unknown_provider():
    with pytest.raises(s2s.MissingCredentialsError, match="OPENAI_API_KEY"):
        s2s.new("openai_realtime", s2s.Config())
    with pytest.raises(s2s.UnknownProviderError, match="registered providers: .*openai_realtime"):
        s2s.new("openai", s2s.Config())


async def test_wrong_key_fails_start_without_retrying(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, extra={"api_key": "sk-no"}))
    with pytest.raises(s2s.AuthenticationError, match="Incorrect API key") as info:
        await engine.start()
    assert info.value.code == "invalid_api_key" and not info.value.retryable
    assert openai_emulator.connections == 1  # an authentication failure is not retried


async def test_unknown_model_fails_start(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator, model="gpt-realtime-9"))
    with pytest.raises(s2s.InvalidRequestError, match="gpt-realtime-9") as info:
        await engine.start()
    assert info.value.code == "invalid_model"


async def test_nothing_listening(monkeypatch):
    monkeypatch.setattr(
        OpenAIRealtimeProvider, "reconnect", s2s.ReconnectPolicy(attempts=2, base_delay=0.01)
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        engine = s2s.new(
            "openai_realtime",
            s2s.Config(extra={"api_key": "k", "base_url": f"ws://127.0.0.1:{port}/v1/realtime"}),
        )
        with pytest.raises(s2s.ProviderConnectionError, match="gave up after 2 attempts") as info:
            await engine.start()
    assert info.value.retryable


async def test_unknown_start_override_is_named(openai_emulator):
    engine = s2s.new("openai_realtime", openai_config(openai_emulator))
    with pytest.raises(s2s.ConfigurationError, match="vioce"):
        await engine.start(vioce="marin")
