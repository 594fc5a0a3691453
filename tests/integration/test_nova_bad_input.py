"""Nova: bad credentials, bad settings and bad input each give a clear error."""

from __future__ import annotations

import socket
import time

import pytest

import s2s
from s2s import EventType, ToolResult
from s2s.emulators.nova import Credentials, NovaEmulator
from s2s.providers.nova import NovaProvider

from ..conftest import nova_config
from ..helpers import collect, turn_end


@pytest.fixture
async def session(nova_emulator):
    engine = s2s.new("nova", nova_config(nova_emulator))
    session = await engine.start()
    yield session
    await session.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.send_audio(b"\x00\x00\x00"), "odd number of bytes \\(3\\)"),
        (lambda s: s.send_audio(b"\x00\x00", sample_rate=96000), "sample_rate=96000"),
        (lambda s: s.send_text(42), "text must be a str, got int"),
        (lambda s: s.send_text("   "), "text is empty"),
        (lambda s: s.send_tool_result({"call_id": "x"}), "needs a ToolResult, got dict"),
        (lambda s: s.send_tool_result(ToolResult("tooluse_x", "1")), "no tool call 'tooluse_x'"),
    ],
)
async def test_bad_arguments_are_refused_and_the_session_goes_on(session, call, message):
    with pytest.raises(s2s.InvalidInputError, match=message):
        await call(session)
    await session.send_text("still fine")
    events = await collect(session, turn_end())
    assert any(e.type is EventType.TRANSCRIPT and e.final for e in events)


async def test_a_long_text_is_split_under_novas_1_kb_limit(nova_emulator, session):
    text = "word " * 700  # 3.5 KB: one textInput would be refused
    await session.send_text(text)
    events = await collect(session, lambda e: e.type is EventType.TRANSCRIPT)
    assert events[-1].text == f'You said: "{text.strip()}".'  # the preview of the answer
    pieces = [
        e["event"]["textInput"]["content"]
        for e in nova_emulator.streams[-1].events_in
        if "textInput" in e["event"]
    ][1:]
    assert len(pieces) == 4 and all(len(p.encode()) <= 1024 for p in pieces)
    assert "".join(pieces) == text.strip()


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ({"aws_secret_access_key": "not-the-secret"}, "InvalidSignatureException", "refused"),
        ({"aws_access_key_id": "AKIDUNKNOWN"}, "UnrecognizedClientException", "refused"),
        ({"aws_session_token": "stale-token"}, "UnrecognizedClientException", "refused"),
        ({"region": "us-west-2"}, "InvalidSignatureException", "refused"),
    ],
)
async def test_bad_credentials_fail_start_without_retrying(nova_emulator, extra, code, message):
    engine = s2s.new("nova", nova_config(nova_emulator, extra=extra))
    with pytest.raises(s2s.AuthenticationError, match=message) as info:
        await engine.start()
    assert info.value.code == code and not info.value.retryable
    assert "credentials" in str(info.value)
    assert nova_emulator.requests == 1 and nova_emulator.refusals[0] == (403, code)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_an_untrusted_certificate_is_a_clear_error(nova_emulator):
    config = nova_config(nova_emulator)
    extra = {k: v for k, v in config.extra.items() if k != "ca_file"}
    engine = s2s.new("nova", s2s.Config(extra=extra))
    started = time.monotonic()
    with pytest.raises(s2s.ProviderConnectionError, match="ca_file") as info:
        await engine.start()  # s2n delays TLS failures by 10-30 s ("blinding")
    assert not info.value.retryable
    assert nova_emulator.requests == 0
    print(f"\nuntrusted certificate reported after {time.monotonic() - started:.1f} s")


async def test_missing_credentials_are_named():
    engine = s2s.new("nova", s2s.Config(extra={"base_url": "https://localhost:9"}))
    with pytest.raises(s2s.MissingCredentialsError, match="AWS_ACCESS_KEY_ID"):
        await engine.start()


async def test_an_unknown_profile_is_named():
    engine = s2s.new("nova", s2s.Config(extra={"profile": "nobody-here"}))
    with pytest.raises(s2s.ConfigurationError, match="'nobody-here'"):
        await engine.start()


async def test_credentials_come_from_the_environment(nova_emulator, monkeypatch):
    config = nova_config(nova_emulator)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", config.extra["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", config.extra["aws_secret_access_key"])
    extra = {k: v for k, v in config.extra.items() if not k.startswith("aws_")}
    async with await s2s.new("nova", s2s.Config(extra=extra)).start() as session:
        await session.send_text("hi")
        await collect(session, turn_end())


async def test_credentials_come_from_a_shared_profile(nova_emulator, tmp_path, monkeypatch):
    config = nova_config(nova_emulator)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[caller]\n"
        f"aws_access_key_id = {config.extra['aws_access_key_id']}\n"
        f"aws_secret_access_key = {config.extra['aws_secret_access_key']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    extra = {k: v for k, v in config.extra.items() if not k.startswith("aws_")}
    async with await s2s.new("nova", s2s.Config(extra={**extra, "profile": "caller"})).start():
        pass
    assert nova_emulator.requests == 1 and nova_emulator.refusals == []


async def test_session_tokens_are_sent_and_checked():
    credentials = Credentials("ASIATEMPORARY", "temporary-secret", "the-session-token")
    async with NovaEmulator(credentials=credentials) as emulator:
        extra = {
            "base_url": emulator.url,
            "ca_file": str(emulator.ca_file),
            "aws_access_key_id": "ASIATEMPORARY",
            "aws_secret_access_key": "temporary-secret",
            "aws_session_token": "the-session-token",
        }
        async with await s2s.new("nova", s2s.Config(extra=extra)).start() as session:
            await session.send_text("hello")
            await collect(session, turn_end())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"base_url": "http://localhost:1"}, "must be an https:// URL"),
        ({"aws_access_key_id": "AKID"}, "go together"),
        ({"aws_session_token": "t"}, "needs aws_access_key_id"),
        ({"endpointing_sensitivity": "FAST"}, "HIGH, MEDIUM or LOW"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
        ({"rotate_after_s": 900}, "rotate_after_s"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"api_key": "x"}, "unknown Config.extra key"),
    ],
)
def test_bad_settings_are_named(extra, message):
    with pytest.raises(s2s.ConfigurationError, match=message):
        s2s.new("nova", s2s.Config(extra=extra))


def test_bad_model_and_voice_are_named():
    with pytest.raises(s2s.ConfigurationError, match="amazon.nova-2-sonic-v1:0"):
        s2s.new("nova", s2s.Config(model="amazon.titan"))
    with pytest.raises(s2s.ConfigurationError, match="matthew"):
        s2s.new("nova", s2s.Config(voice="alloy"))


async def test_nothing_listening(monkeypatch, tmp_path):
    monkeypatch.setattr(NovaProvider, "reconnect", s2s.ReconnectPolicy(attempts=2, base_delay=0.01))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        engine = s2s.new(
            "nova",
            s2s.Config(
                extra={
                    "base_url": f"https://localhost:{port}",
                    "aws_access_key_id": "AKID",
                    "aws_secret_access_key": "secret",
                }
            ),
        )
        with pytest.raises(s2s.ProviderConnectionError, match="gave up after 2 attempts") as info:
            await engine.start()
    assert info.value.retryable


async def test_send_after_close(session):
    await session.close()
    with pytest.raises(s2s.SessionClosedError, match="closed session"):
        await session.send_audio(b"\x00\x00")
    assert [e async for e in session.recv()] == []
