"""The Genesys simulator against a conformant scripted AudioHook server (real sockets)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from s2s.audio.g711 import pcm16_to_ulaw
from s2s.audio.synth import speech_like
from s2s.phone.genesys import GenesysCall, GenesysCredentials
from s2s.phone.genesys_messages import parse_duration
from s2s.phone.genesys_timeline import GenesysSessionError

from ..conftest import SECOND
from .genesys_server import API_KEY, PATH, SECRET, AudioHookServer, Behaviour, ServerSession

CREDENTIALS = GenesysCredentials(API_KEY, SECRET)


def speech(seconds: float) -> bytes:
    return pcm16_to_ulaw(speech_like(seconds, 8000, seed=3))


async def bot_audio(session: ServerSession, seconds: float) -> bytes:
    """Send ``seconds`` of bot audio like a well-paced server: 0.5 s of lead in the first
    frame, then 210 ms frames every 210 ms (under 5 frames/s, never drained)."""
    data = speech(seconds)
    await session.send_audio(data[:4000])
    for i in range(4000, len(data), 1680):
        await asyncio.sleep(0.21)
        await session.send_audio(data[i : i + 1680])
    return data


async def test_a_call_from_open_to_disconnect():
    org, conversation = str(uuid.uuid4()), str(uuid.uuid4())
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(
            server.url,
            CREDENTIALS,
            organization_id=org,
            conversation_id=conversation,
            input_variables={"tenant": "acme", "intentHint": "billing"},
            language="de-DE",
        )
        async with call:
            session = await server.session()
            # The upgrade: AudioHook headers, signed (the server verified it), the session id.
            headers = session.request_headers
            assert headers["audiohook-organization-id"] == org
            assert headers["audiohook-session-id"] == call.session_id
            assert headers["x-api-key"] == API_KEY
            assert "sec-websocket-protocol" not in headers
            assert server.requests[0].path == PATH
            # open: seq 1, serverseq 0, PT0S, the Audio Connector offer and inputs.
            open_ = session.messages[0]
            assert (open_["type"], open_["seq"], open_["serverseq"]) == ("open", 1, 0)
            assert open_["position"] == "PT0S" and open_["id"] == call.session_id
            params = open_["parameters"]
            assert params["organizationId"] == org and params["conversationId"] == conversation
            assert set(params["participant"]) == {"id", "ani", "aniName", "dnis"}
            assert params["media"] == [
                {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}
            ]
            assert params["inputVariables"] == {"tenant": "acme", "intentHint": "billing"}
            assert params["language"] == "de-DE"
            assert call.opened.media is not None and call.opened.media.format == "PCMU"

            # Caller audio: 200 ms frames of 1600 B, the said speech exactly, silence around it.
            said = speech(0.5)
            await call.say(said)
            await session.wait_for(lambda s: len(s.audio) >= len(said) + 1600, SECOND)
            assert bytes(session.audio).startswith(said)  # said before the first frame left
            assert set(bytes(session.audio)[len(said) : len(said) + 1600]) == {0xFF}
            assert call.timeline.caller_bytes_sent == 1600 * call.timeline.caller_frames_sent

            # Pings: 1 s after opened, at once after the first pong (with rtt).
            second = await session.wait_message("ping", 3 * SECOND, count=2)
            first = session.of_type("ping")[0]
            assert "rtt" not in first["parameters"]
            assert parse_duration(second["parameters"]["rtt"]) < 0.5
            assert second["_at"] - first["_at"] < 0.5
            assert 0.9 < parse_duration(first["position"]) < 1.5

            # Bot audio: playback_started at once, playback_completed when it has played.
            sent = await bot_audio(session, 1.0)
            await session.wait_message("playback_completed", 3 * SECOND)
            started = session.of_type("playback_started")[0]["_at"]
            completed = session.of_type("playback_completed")[0]["_at"]
            assert 0.95 < completed - started < 1.6
            assert bytes(call.playout.played) == sent
            assert [f.size for f in call.timeline.bot_frames] == [4000, 1680, 1680, 640]
            assert not call.timeline.rate_limits and len(call.timeline.playback_started) == 1

            # Disconnect: close{disconnect}, closed, the output variables for Architect.
            variables = {"nextAction": "transfer", "queue": "Billing"}
            await session.send(
                "disconnect",
                {"reason": "completed", "info": "transfer", "outputVariables": variables},
            )
            outcome = await call.finished(5 * SECOND)
            close = session.of_type("close")[0]
            assert close["parameters"] == {"reason": "disconnect"}
        assert outcome.success, outcome
        assert outcome.output_variables == variables and outcome.info == "transfer"
        assert (outcome.ended_by, outcome.disconnect_reason) == ("server", "completed")
        # Sequencing: every client message numbered 1, 2, 3 … with a growing position.
        seqs = [m["seq"] for m in session.messages]
        assert seqs == list(range(1, len(seqs) + 1))
        positions = [parse_duration(m["position"]) for m in session.messages]
        assert positions == sorted(positions)
        times = session.frame_times
        frames_per_s = (len(times) - 1) / (times[-1] - times[0])
        assert 4.5 < frames_per_s < 5.5


async def test_dtmf_language_update_and_a_hold():
    async with (
        AudioHookServer() as server,
        await GenesysCall.connect(server.url, CREDENTIALS) as call,
    ):
        session = await server.session()
        await call.press("5")
        await call.update_language("fr-FR")
        dtmf = await session.wait_message("dtmf", SECOND)
        update = await session.wait_message("update", SECOND)
        assert dtmf["parameters"] == {"digit": "5"}
        assert update["parameters"] == {"language": "fr-FR"}
        await session.wait_for(lambda s: len(s.frame_times) >= 2, SECOND)
        await call.hold(0.6)
        resumed = await session.wait_message("resumed", SECOND)
        paused = session.of_type("paused")[0]
        # No caller audio between paused and resumed; position kept running through the hold.
        held = [t for t in session.frame_times if paused["_at"] < t < resumed["_at"]]
        assert held == []
        start = parse_duration(resumed["parameters"]["start"])
        gap = parse_duration(resumed["parameters"]["discarded"])
        assert start == parse_duration(paused["position"])
        assert 0.55 < gap < 1.2
        assert parse_duration(resumed["position"]) >= start + gap - 0.002  # ms rounding
        await session.wait_for(lambda s: s.frame_times[-1] > resumed["_at"], SECOND)
        await call.hang_up()
        assert session.of_type("close")[0]["parameters"] == {"reason": "end"}
        outcome = await call.finished(SECOND)
    assert (outcome.ended_by, outcome.closed_in_time, outcome.violations) == ("caller", True, ())
    assert not outcome.success  # the caller hung up: Architect does not take the success path


async def test_server_pause_and_resume_and_start_paused():
    def start_paused(params: dict[str, object]) -> dict[str, object]:
        return {"startPaused": True, "media": params["media"][:1]}  # type: ignore[index]

    behaviour = Behaviour(opened_params=start_paused)
    async with (
        AudioHookServer(behaviour) as server,
        await GenesysCall.connect(server.url, CREDENTIALS) as call,
    ):
        session = await server.session()
        paused = await session.wait_message("paused", SECOND)
        assert session.messages[1]["type"] == "paused"  # before any audio
        await asyncio.sleep(0.5)
        assert session.frame_times == []
        await session.send("resume")
        resumed = await session.wait_message("resumed", SECOND)
        assert parse_duration(resumed["parameters"]["start"]) == 0.0
        assert parse_duration(resumed["parameters"]["discarded"]) >= 0.5
        await session.wait_for(lambda s: len(s.frame_times) >= 1, SECOND)
        await session.send("pause")
        await session.wait_message("paused", SECOND, count=2)
        frames = len(session.frame_times)
        await session.send("pause")  # idempotent: no second answer
        await asyncio.sleep(0.5)
        assert len(session.frame_times) <= frames + 1  # at most one frame in flight
        assert len(session.of_type("paused")) == 2
        await session.send("resume")
        await session.wait_message("resumed", SECOND, count=2)
        assert paused["parameters"] == {}
        assert call.violations == []


async def test_barge_in_flushes_the_queue_and_completes_the_playback():
    async with (
        AudioHookServer() as server,
        await GenesysCall.connect(server.url, CREDENTIALS) as call,
    ):
        session = await server.session()
        await session.send_audio(speech(2.0))  # one 16 000 B frame: 2 s queued
        await session.wait_message("playback_started", SECOND)
        await asyncio.sleep(0.3)
        await session.send("event", {"entities": [{"type": "barge_in", "data": {}}]})
        completed = await session.wait_message("playback_completed", SECOND)
        barge_in = call.timeline.barge_ins[0]
        played_s = barge_in.at - call.timeline.playback_started[0]
        assert barge_in.was_playing and played_s >= 0.3
        assert abs(barge_in.discarded_ms - (2000 - played_s * 1000)) < 1
        assert len(call.playout.played) == round(16000 - barge_in.discarded_ms * 8)
        assert completed["_at"] >= session.of_type("playback_started")[0]["_at"] + 0.3
        # Audio after the barge-in starts a new playback.
        await session.send_audio(speech(0.2))
        await session.wait_message("playback_started", SECOND, count=2)
        await session.wait_message("playback_completed", SECOND, count=2)
        assert call.violations == []


async def test_too_many_frames_draw_a_429_that_a_good_server_honours():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(
            server.url, CREDENTIALS, max_frames_per_s=3, retry_after_s=0.4
        )
        async with call:
            session = await server.session()
            for _ in range(4):
                await session.send_audio(speech(0.02))
            error = await session.wait_message("error", SECOND)
            assert error["parameters"]["code"] == 429
            assert parse_duration(error["parameters"]["retryAfter"]) == 0.4
            await asyncio.sleep(0.45)  # honour retryAfter
            await session.send_audio(speech(0.02))
            await call.wait_for(lambda t: len(t.bot_frames) == 5, SECOND)
            assert len(call.timeline.rate_limits) == 1
            assert call.timeline.rate_limits[0].frames_in_window == 4
            assert call.timeline.retry_after_ignored == [] and call.violations == []


async def test_frames_inside_retry_after_are_recorded_as_ignored():
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, max_frames_per_s=3)
        async with call:
            session = await server.session()
            for _ in range(4):
                await session.send_audio(speech(0.02))
            await session.wait_message("error", SECOND)
            await asyncio.sleep(0.2)  # past the in-flight grace, inside retryAfter (1 s)
            await session.send_audio(speech(0.02))
            await call.wait_for(lambda t: len(t.retry_after_ignored) == 1, SECOND)
            assert any("retryAfter" in v for v in call.violations)


async def test_connection_probe():
    def no_media(params: dict[str, object]) -> dict[str, object]:
        return {"media": []}

    async with AudioHookServer(Behaviour(opened_params=no_media)) as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, probe=True)
        outcome = await call.finished(2 * SECOND)
        session = await server.session()
    nil = "00000000-0000-0000-0000-000000000000"
    params = session.messages[0]["parameters"]
    assert params["conversationId"] == nil and params["participant"]["id"] == nil
    assert [m["type"] for m in session.messages] == ["open", "close"]
    assert session.messages[1]["parameters"] == {"reason": "end"}
    assert session.frame_times == [] and call.opened.media is None
    assert (outcome.ended_by, outcome.closed_in_time, outcome.violations) == ("caller", True, ())


async def test_stereo_and_l16_offers_shape_the_frames():
    stereo = {"type": "audio", "format": "PCMU", "channels": ["internal", "external"], "rate": 8000}
    l16 = {"type": "audio", "format": "L16", "channels": ["external"], "rate": 8000}
    async with AudioHookServer() as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, media_offer=[stereo, l16])
        async with call:
            session = await server.session()
            said = speech(0.2)
            await call.say(said)
            await session.wait_for(lambda s: len(s.audio) >= 3200, SECOND)
            frame = bytes(session.audio[:3200])
            # Interleaved in the order of `channels`: the agent (internal) is silent.
            assert frame[1::2] == said and set(frame[0::2]) == {0xFF}
            assert call.opened.media is not None and call.opened.media.channels == (
                "internal",
                "external",
            )

    def pick_l16(params: dict[str, object]) -> dict[str, object]:
        return {"media": [l16]}

    async with AudioHookServer(Behaviour(opened_params=pick_l16)) as server:
        call = await GenesysCall.connect(server.url, CREDENTIALS, media_offer=[stereo, l16])
        async with call:
            session = await server.session()
            await session.wait_for(lambda s: len(s.frame_times) >= 1, SECOND)
            assert len(session.audio) == 3200 and set(bytes(session.audio)) == {0}
            await session.send_audio(bytes(3200))  # 200 ms of L16 = 16 bytes per ms
            await call.wait_for(lambda t: len(t.playback_completed) == 1, SECOND)
            done = call.timeline.playback_completed[0] - call.timeline.playback_started[0]
            assert 0.18 < done < 0.35


async def test_discarded_audio_is_reported():
    async with (
        AudioHookServer() as server,
        await GenesysCall.connect(server.url, CREDENTIALS) as call,
    ):
        session = await server.session()
        await session.wait_for(lambda s: len(s.frame_times) >= 1, SECOND)
        await call.discard(0.5)
        discarded = await session.wait_message("discarded", SECOND)
        assert 0.45 < parse_duration(discarded["parameters"]["discarded"]) < 1.2
        start = parse_duration(discarded["parameters"]["start"])
        sent_during = [
            t for t in session.frame_times if discarded["_at"] - 0.45 < t < discarded["_at"]
        ]
        assert sent_during == [] and start > 0


async def test_a_failing_background_task_is_raised_not_swallowed(monkeypatch):
    from s2s.phone.genesys_core import GenesysClientCore

    def broken(self: GenesysClientCore, now: float) -> list[object]:
        raise RuntimeError("playout broke")

    async with (
        AudioHookServer() as server,
        await GenesysCall.connect(server.url, CREDENTIALS) as call,
    ):
        monkeypatch.setattr(GenesysClientCore, "playout_tick", broken)
        session = await server.session()
        await session.send_audio(speech(0.2))
        with pytest.raises(GenesysSessionError, match="player task failed") as caught:
            await call.wait_for(lambda t: len(t.playback_completed) == 1, 2 * SECOND)
        assert isinstance(caught.value.__cause__, RuntimeError)
        with pytest.raises(GenesysSessionError, match="playout broke"):
            await call.finished(SECOND)
