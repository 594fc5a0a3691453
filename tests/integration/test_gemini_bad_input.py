"""Gemini Live: every bad input gives a clear error that names what was wrong."""

from __future__ import annotations

import socket

import pytest

import s2s
from s2s import EventType, ToolResult
from s2s.providers.gemini_live import GeminiLiveProvider

from ..conftest import gemini_config
from ..helpers import collect, turn_end


async def test_a_result_for_a_call_never_made_is_refused_and_the_session_goes_on(
    gemini_emulator,
):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        with pytest.raises(s2s.InvalidInputError, match="no tool call 'fc_unknown'"):
            await session.send_tool_result(ToolResult("fc_unknown", "1"))
        await session.send_text("still fine")
        events = await collect(session, turn_end())
    assert any(e.type is EventType.TRANSCRIPT and e.final for e in events)
    assert "toolResponse" not in str(gemini_emulator.sessions[-1].frames_in)


def test_missing_key_names_both_variables():
    with pytest.raises(s2s.MissingCredentialsError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        s2s.new("gemini_live", s2s.Config())


async def test_a_wrong_key_fails_start_without_retrying(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, extra={"api_key": "bad"}))
    with pytest.raises(s2s.AuthenticationError, match="API key not valid") as info:
        await engine.start()
    assert info.value.code == "1007" and not info.value.retryable
    assert gemini_emulator.connections == 1


async def test_an_unknown_model_fails_start_with_the_servers_reason(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator, model="gemini-9-live"))
    with pytest.raises(s2s.ModelUnavailableError, match="`models/gemini-9-live` was not") as info:
        await engine.start()
    assert info.value.code == "1008" and not info.value.retryable
    assert gemini_emulator.connections == 1


async def test_an_untrusted_certificate_is_named_and_not_retried(gemini_emulator):
    config = gemini_config(gemini_emulator, extra={"ca_file": None})
    with pytest.raises(s2s.ProviderConnectionError, match="is not trusted") as info:
        await s2s.new("gemini_live", config).start()
    assert not info.value.retryable
    assert "CA file" in str(info.value)


async def test_nothing_listening(monkeypatch):
    monkeypatch.setattr(
        GeminiLiveProvider, "reconnect", s2s.ReconnectPolicy(attempts=2, base_delay=0.01)
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        engine = s2s.new(
            "gemini_live",
            s2s.Config(extra={"api_key": "k", "base_url": f"https://127.0.0.1:{port}"}),
        )
        with pytest.raises(s2s.ProviderConnectionError, match="gave up after 2 attempts") as info:
            await engine.start()
    assert info.value.retryable


async def test_keepalive_settings_reach_the_connection(gemini_emulator):
    engine = s2s.new("gemini_live", gemini_config(gemini_emulator))
    async with await engine.start() as session:
        transport = session._link.transport  # type: ignore[union-attr]
        assert transport._ws.ping_timeout == 60.0  # Gemini answers pings slowly
