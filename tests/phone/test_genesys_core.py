"""The Genesys client's sans-I/O parts, driven by the ``now`` they are given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s2s.phone.genesys_config import CoreConfig
from s2s.phone.genesys_core import Abort, GenesysClientCore, Opened, Outgoing, PingNow
from s2s.phone.genesys_messages import (
    DEFAULT_MEDIA_OFFER,
    ProtocolViolation,
    format_duration,
    parse_duration,
)
from s2s.phone.genesys_ratelimit import FrameRateLimiter

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
T0 = 1000.0


def test_durations():
    assert [format_duration(s) for s in (0, 1.2345, 9, 12.48)] == [
        "PT0S",
        "PT1.234S",
        "PT9S",
        "PT12.48S",
    ]
    assert parse_duration("PT12.48S") == 12.48 and parse_duration("PT.5S") == 0.5
    for bad in ("PT1M", "1.5", "PT-1S", 1.5, "PT1.S"):
        with pytest.raises(ProtocolViolation, match="ISO-8601"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="finite"):
        format_duration(-1)


def test_the_rate_limiter_counts_a_sliding_second():
    limiter = FrameRateLimiter(5, 1.0, grace_s=0.1)
    assert [limiter.on_frame(T0 + i * 0.2).kind for i in range(5)] == ["ok"] * 5
    assert limiter.on_frame(T0 + 1.0).kind == "ok"  # the first frame left the window
    verdict = limiter.on_frame(T0 + 1.05)
    assert (verdict.kind, verdict.frames_in_window) == ("limit", 6)
    assert limiter.on_frame(T0 + 1.1).kind == "ok"  # in flight when the 429 left
    assert limiter.on_frame(T0 + 1.5).kind == "ignored"
    assert limiter.backing_off(T0 + 1.9) and not limiter.backing_off(T0 + 2.1)
    assert limiter.on_frame(T0 + 2.1).kind == "ok"
    with pytest.raises(ValueError, match="max_frames_per_s > 0"):
        FrameRateLimiter(0, 1.0)


def core(**kwargs: Any) -> GenesysClientCore:
    config = CoreConfig(
        session_id=SESSION,
        organization_id="org",
        conversation_id="conv",
        participant_id="part",
        ani="+1",
        ani_name="",
        dnis="+2",
        language="en-US",
        input_variables={},
        media_offer=DEFAULT_MEDIA_OFFER,
        **kwargs,
    )
    return GenesysClientCore(config)


def server(kind: str, seq: int, clientseq: int, **parameters: Any) -> str:
    message = {"version": "2", "id": SESSION, "type": kind, "seq": seq, "clientseq": clientseq}
    return json.dumps({**message, "parameters": parameters})


def opened_core(**kwargs: Any) -> GenesysClientCore:
    c = core(**kwargs)
    c.encode(c.open_message(), T0)
    actions = c.receive_text(server("opened", 1, 1, media=list(DEFAULT_MEDIA_OFFER)), T0)
    assert isinstance(actions[0], Opened)
    return c


def test_a_server_resume_during_our_hold_is_answered_with_paused():
    c = opened_core()
    assert c.hold_start(T0 + 1) == [Outgoing("paused")]
    assert c.receive_text(server("pause", 2, 1), T0 + 2) == [Outgoing("paused")]
    assert c.receive_text(server("pause", 3, 1), T0 + 2.5) == []  # idempotent
    assert c.receive_text(server("resume", 4, 1), T0 + 3) == [Outgoing("paused")]
    assert c.caller_frame(T0 + 3.2) is None
    (resumed,) = c.hold_end(T0 + 4)
    assert resumed == Outgoing("resumed", {"start": "PT1S", "discarded": "PT3S"})
    assert c.caller_frame(T0 + 4.2) is not None
    assert c.violations == []


def test_pings_follow_the_schedule_and_a_missing_pong_aborts():
    c = opened_core(ping_interval_s=5.0)
    assert c.next_ping_at == T0 + 1.0
    (ping,) = c.ping_due(T0 + 1.0)
    assert ping == Outgoing("ping", {})
    c.encode(ping, T0 + 1.0)
    assert c.receive_text(server("pong", 2, 2), T0 + 1.05) == [PingNow()]
    (second,) = c.ping_due(T0 + 1.05)
    assert second == Outgoing("ping", {"rtt": "PT0.05S"})
    c.encode(second, T0 + 1.05)
    assert c.next_ping_at == pytest.approx(T0 + 6.05)
    (abort,) = c.ping_due(T0 + 6.05)
    assert isinstance(abort, Abort) and abort.code == 408


def test_bot_audio_playback_is_reported_when_it_starts_and_drains():
    c = opened_core()
    assert c.receive_binary(b"\xff" * 800, T0 + 1) == [Outgoing("playback_started")]
    assert c.receive_binary(b"\xff" * 800, T0 + 1.05) == []  # queued behind the first
    assert c.playout_tick(T0 + 1.19) == []
    assert c.playout_tick(T0 + 1.2) == [Outgoing("playback_completed")]
    assert len(c.bot.playout.played) == 1600


def test_a_message_before_opened_is_refused():
    c = core()
    c.encode(c.open_message(), T0)
    (abort,) = c.receive_text(server("pong", 1, 1), T0)
    assert isinstance(abort, Abort) and "before 'opened'" in abort.message


def test_the_protocol_modules_do_no_io():
    import ast
    from pathlib import Path

    import s2s.phone

    io = {"asyncio", "socket", "ssl", "websockets", "threading", "time", "httpx"}
    folder = Path(s2s.phone.__file__).parent
    names = ("core", "messages", "audio", "ratelimit", "config", "timeline")
    for name in names:
        tree = ast.parse((folder / f"genesys_{name}.py").read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        }
        assert not imported & io, f"genesys_{name}.py imports {sorted(imported & io)}"
