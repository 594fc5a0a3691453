"""The Twilio simulator against a scripted deployment on 127.0.0.1 (real HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest

from s2s.audio import pcm16_to_ulaw, ulaw_to_pcm16
from s2s.audio.synth import speech_like
from s2s.emulators.tls import client_context, self_signed, server_context
from s2s.phone import (
    CallEndedError,
    Playout,
    SimulatorTaskError,
    StreamConnectError,
    StreamRefusedError,
    TwilioCall,
    TwimlError,
    WebhookError,
)

from ..conftest import SECOND
from .twilio_server import TOKEN, Deployment, Peer

pytestmark = pytest.mark.timeout(60)

SILENCE_FRAME = b"\xff" * 160


def ulaw_ms(milliseconds: int, seed: int = 1) -> bytes:
    return pcm16_to_ulaw(speech_like(milliseconds / 1000, 8000, seed=seed))


async def place(deployment: Deployment, **kwargs: Any) -> TwilioCall:
    return await TwilioCall.place(deployment.voice_url, auth_token=TOKEN, **kwargs)


def assert_sequence_numbers_count_every_message(messages: list[dict[str, Any]]) -> None:
    assert messages[0]["event"] == "connected" and "sequenceNumber" not in messages[0]
    numbers = [m["sequenceNumber"] for m in messages[1:]]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]


def media_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["media"] for m in messages if m["event"] == "media"]


def n_media(count: int) -> Any:
    return lambda messages: len(media_of(messages)) >= count


async def test_a_call_is_signed_connected_and_started_like_twilio():
    async with Deployment() as deployment:
        call = await place(deployment, from_="+15555550123", to="+18005550111")
        async with call:
            peer = await deployment.peer()
            await peer.until(n_media(5))

            (hit,) = deployment.hits
            assert hit.path == "/voice" and hit.signature_ok
            assert hit.form == {
                "AccountSid": call.account.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": call.call_sid,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "From": "+15555550123",
                "To": "+18005550111",
                "Caller": "+15555550123",
                "Called": "+18005550111",
            }
            (upgrade,) = deployment.upgrades
            assert upgrade.path == "/stream"  # the query string was dropped
            assert upgrade.signature_ok
            assert "Sec-WebSocket-Protocol" not in upgrade.headers
            assert call.stream_url == deployment.stream_url
            assert call.parameters == {"tenant": "acme", "sessionToken": "opaque-123"}

            connected, start = peer.messages[:2]
            assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
            assert start == {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": call.stream_sid,
                "start": {
                    "streamSid": call.stream_sid,
                    "accountSid": call.account.account_sid,
                    "callSid": call.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"tenant": "acme", "sessionToken": "opaque-123"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
            media = media_of(peer.messages)
            assert [m["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
            assert [m["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
            assert all(m["track"] == "inbound" for m in media)
            assert all(base64.b64decode(m["payload"]) == SILENCE_FRAME for m in media)
            assert_sequence_numbers_count_every_message(peer.messages)
        assert not deployment.handler_errors


async def test_caller_audio_replaces_silence_at_real_time():
    audio = ulaw_ms(400)
    async with Deployment() as deployment, await place(deployment) as call:
        peer = await deployment.peer()
        began = time.monotonic()
        await call.say(audio)
        elapsed = time.monotonic() - began
        assert elapsed >= 0.36  # 20 frames of 20 ms, paced by the clock
        await peer.until(lambda _: audio in peer.caller_audio())
        assert call.timeline.caller_bytes_sent == len(audio)
        first = peer.caller_audio().index(audio)
        assert first % 160 == 0  # caller audio starts on a frame boundary
        pcm = speech_like(0.1, 8000, seed=3)
        await call.say_pcm16(pcm)
        await peer.until(lambda _: pcm16_to_ulaw(pcm) in peer.caller_audio())
        assert call.timeline.caller_bytes_sent == len(audio) + len(pcm) // 2


async def test_marks_are_echoed_once_the_audio_before_them_has_played():
    greeting = ulaw_ms(300)

    async def script(peer: Peer) -> None:
        await peer.started()
        await peer.media(greeting)
        await peer.mark("r1:s1")
        await peer.mark("r1:s2")
        await peer.until(lambda ms: len([m for m in ms if m["event"] == "mark"]) == 2)
        await peer.mark("idle")
        await peer.until(lambda ms: len([m for m in ms if m["event"] == "mark"]) == 3)

    async with Deployment(script) as deployment, await place(deployment) as call:
        outcome = await call.finished(10 * SECOND)
        peer = deployment.peers[0]

    timeline = call.timeline
    assert [e.name for e in timeline.echoes] == ["r1:s1", "r1:s2", "idle"]
    assert all(e.played for e in timeline.echoes)
    sent = {m.name: m.at for m in timeline.marks}
    echo = timeline.echo("r1:s1")
    assert echo is not None and 0.29 <= echo.at - timeline.audio[0].at < 0.3 + 0.5 * SECOND
    idle = timeline.echo("idle")
    assert idle is not None and idle.at - sent["idle"] < 0.25 * SECOND
    assert bytes(call.playout.played) == greeting
    assert call.heard_pcm16() == ulaw_to_pcm16(greeting)
    assert [m["mark"] for m in peer.events("mark")] == [
        {"name": n} for n in ("r1:s1", "r1:s2", "idle")
    ]
    assert all(
        set(m) == {"event", "sequenceNumber", "streamSid", "mark"} for m in peer.events("mark")
    )
    assert_sequence_numbers_count_every_message(peer.messages)
    assert outcome.ended_by == "server" and outcome.hung_up and outcome.transferred_to is None
    assert outcome.close_code == 1000
    assert timeline.closed is not None and timeline.closed.by == "server"
    assert timeline.stop is None and not call.violations


async def test_clear_discards_queued_audio_and_echoes_every_pending_mark():
    names = [f"r2:s{i}" for i in range(5)]

    async def script(peer: Peer) -> None:
        await peer.started()
        for i, name in enumerate(names):
            await peer.media(ulaw_ms(200, seed=i))
            await peer.mark(name)
        await peer.until(lambda ms: any(m["event"] == "mark" for m in ms))
        await peer.clear()
        await peer.until(lambda ms: len([m for m in ms if m["event"] == "mark"]) == 5)

    async with Deployment(script) as deployment, await place(deployment) as call:
        await call.finished(10 * SECOND)
        peer = deployment.peers[0]

    timeline = call.timeline
    assert [(e.name, e.played) for e in timeline.echoes] == [(names[0], True)] + [
        (n, False) for n in names[1:]
    ]
    (clear,) = timeline.clears
    assert clear.pending_marks == tuple(names[1:])
    assert 200 <= clear.discarded_ms <= 800  # the clear came after s0 played
    assert all(0 <= e.at - clear.at < 0.5 * SECOND for e in timeline.echoes[1:])
    played = len(call.playout.played)
    assert played == 1000 * 8 - clear.discarded_ms * 8
    assert bytes(call.playout.played).startswith(ulaw_ms(200, seed=0))
    # Echoes of cleared marks look exactly like echoes of played ones.
    assert [m["mark"]["name"] for m in peer.events("mark")] == names
    assert_sequence_numbers_count_every_message(peer.messages)


async def test_dtmf_is_sent_between_media_frames():
    async with Deployment() as deployment, await place(deployment) as call:
        peer = await deployment.peer()
        await peer.until(n_media(3))
        await call.press("5")
        await peer.until(lambda ms: ms[-1]["event"] == "media" and peer.events("dtmf") != [])
        (dtmf,) = peer.events("dtmf")
        assert dtmf == {
            "event": "dtmf",
            "sequenceNumber": dtmf["sequenceNumber"],
            "streamSid": call.stream_sid,
            "dtmf": {"track": "inbound_track", "digit": "5"},
        }
        assert [d.digit for d in call.timeline.dtmf] == ["5"]
        assert_sequence_numbers_count_every_message(peer.messages)
        with pytest.raises(ValueError, match="DTMF digit"):
            await call.press("55")


async def test_the_caller_hangs_up_with_stop_then_close():
    async with Deployment() as deployment, await place(deployment) as call:
        peer = await deployment.peer()
        await peer.until(n_media(3))
        await call.hang_up()
        outcome = await call.finished(5 * SECOND)
        await asyncio.wait_for(peer.closed.wait(), 5 * SECOND)
        last = peer.messages[-1]
        assert last == {
            "event": "stop",
            "sequenceNumber": last["sequenceNumber"],
            "streamSid": call.stream_sid,
            "stop": {"accountSid": call.account.account_sid, "callSid": call.call_sid},
        }
        assert len(media_of(peer.messages)) == call.timeline.frames_sent
        assert_sequence_numbers_count_every_message(peer.messages)
        assert outcome.ended_by == "caller" and outcome.hung_up and outcome.close_code == 1000
        assert call.timeline.stop is not None
        with pytest.raises(CallEndedError):
            call.say_nowait(SILENCE_FRAME)
        with pytest.raises(CallEndedError):
            await call.press("1")
        with pytest.raises(CallEndedError, match="ended before the condition"):
            await call.wait_for(lambda t: bool(t.clears), 5 * SECOND)


async def test_leaving_the_context_hangs_up():
    async with Deployment() as deployment:
        async with await place(deployment) as call:
            peer = await deployment.peer()
            await peer.until(n_media(1))
        await asyncio.wait_for(peer.closed.wait(), 5 * SECOND)
        assert peer.messages[-1]["event"] == "stop"
        assert call.timeline.outcome is not None and call.timeline.outcome.ended_by == "caller"


async def test_after_the_server_closes_a_redirect_leads_to_a_transfer():
    async def script(peer: Peer) -> None:
        await peer.started()

    transfer = (
        "<Response><Say>Transferring you</Say>"
        "<Dial><Number>+15550001111</Number></Dial><Hangup/></Response>"
    )
    deployment = Deployment(
        script,
        after='<Redirect method="POST">/after</Redirect><Say>never said</Say>',
        routes={"/after": transfer},
    )
    async with deployment, await place(deployment) as call:
        outcome = await call.finished(10 * SECOND)
        assert outcome.transferred_to == "+15550001111" and not outcome.hung_up
        assert outcome.said == ("Transferring you",)
        assert outcome.redirects == (deployment.http_url("/after"),)
        voice, after = deployment.hits
        assert after.path == "/after" and after.signature_ok
        assert after.form == {**voice.form, "CallStatus": "in-progress"}


async def test_after_the_server_closes_say_and_hangup_run():
    async def script(peer: Peer) -> None:
        await peer.started()

    after = "<Say>Goodbye</Say><Hangup/><Say>never said</Say>"
    async with Deployment(script, after=after) as deployment, await place(deployment) as call:
        outcome = await call.finished(10 * SECOND)
        assert outcome.said == ("Goodbye",) and outcome.hung_up and outcome.ended_by == "server"


async def test_what_twilio_would_refuse_is_recorded_and_the_call_goes_on():
    async def script(peer: Peer) -> None:
        sid = await peer.started()
        await peer.send(b"\x00\x01binary")
        await peer.send("{not json")
        await peer.send({"event": "clear", "streamSid": sid, "extra": True})
        await peer.send({"event": "clear", "streamSid": "MZ" + "0" * 32})
        await peer.send({"event": "connected", "streamSid": sid})
        await peer.send({"event": "media", "streamSid": sid, "media": {"payload": "%%%"}})
        await peer.send({"event": "clear", "stream_sid": sid})
        before = len(media_of(peer.messages))
        await peer.mark("still-here")
        await peer.until(lambda ms: any(m["event"] == "mark" for m in ms))
        await peer.until(n_media(before + 3))

    async with Deployment(script) as deployment, await place(deployment) as call:
        outcome = await call.finished(10 * SECOND)
    codes = [(v.code, v.reason) for v in call.violations]
    assert [code for code, _ in codes] == [31950, 31950, 31951, 31951, 31951, 31951, 31951]
    for (_, reason), word in zip(
        codes,
        [
            "binary",
            "JSON",
            "unexpected ['extra']",
            "streamSid",
            "unknown event",
            "base64",
            "stream_sid",
        ],
        strict=True,
    ):
        assert word in reason
    assert call.violations[2].frame.startswith('{"event": "clear"')
    assert [e.name for e in call.timeline.echoes] == ["still-here"]
    assert outcome.ended_by == "server" and not call.timeline.clears


async def test_messages_before_start_are_violations():
    async def script(peer: Peer) -> None:
        await peer.send({"event": "media", "streamSid": "MZ" + "1" * 32, "media": {"payload": ""}})
        await peer.send({"event": "mark", "streamSid": "MZ" + "1" * 32, "mark": {"name": "early"}})
        await peer.started()
        await peer.mark("ok")
        await peer.until(lambda ms: any(m["event"] == "mark" for m in ms))

    async with Deployment(script) as deployment, await place(deployment, start_delay=0.3) as call:
        await call.finished(10 * SECOND)
    assert [v.code for v in call.violations] == [31951, 31951]
    assert all("before start" in v.reason for v in call.violations)
    assert [e.name for e in call.timeline.echoes] == ["ok"]


async def test_a_refused_upgrade_is_twilio_error_31920():
    # The TwiML names the stream by another host: the signature covers a URL the server
    # does not expect, so it answers 403 (the proxy trap of the brief).
    async with Deployment(stream_host="localhost") as deployment:
        with pytest.raises(StreamRefusedError, match="HTTP 403") as caught:
            await place(deployment)
        assert caught.value.status == 403 and caught.value.code == 31920
        assert [u.signature_ok for u in deployment.upgrades] == [False]


async def test_webhook_failures_are_clear_errors():
    async with Deployment(voice_status=500) as deployment:
        with pytest.raises(WebhookError, match="HTTP 500") as caught:
            await place(deployment)
        assert caught.value.status == 500
    async with Deployment(voice_twiml="<Response><Say>Hello</Say></Response>") as deployment:
        with pytest.raises(TwimlError, match="no <Connect><Stream>"):
            await place(deployment)
    async with Deployment() as deployment:
        with pytest.raises(WebhookError, match="HTTP 403"):
            await TwilioCall.place(deployment.voice_url, auth_token="not-the-token")
        closed_port = deployment.http_port
    twiml = (
        f'<Response><Connect><Stream url="ws://127.0.0.1:{closed_port}/s"/></Connect></Response>'
    )
    async with Deployment(voice_twiml=twiml) as deployment:
        with pytest.raises(StreamConnectError, match="31901") as refused:
            await place(deployment)
        assert refused.value.code == 31901


async def test_a_failed_redirect_is_raised_from_finished_and_wait_for():
    async def script(peer: Peer) -> None:
        await peer.started()

    deployment = Deployment(script, after="<Redirect>/missing</Redirect>")
    async with deployment, await place(deployment) as call:
        with pytest.raises(WebhookError, match="HTTP 404"):
            await call.finished(10 * SECOND)
        with pytest.raises(WebhookError, match="HTTP 404"):
            await call.wait_for(lambda t: False, 1 * SECOND)


async def test_wait_for_times_out_with_a_clear_message():
    async with Deployment() as deployment, await place(deployment) as call:
        with pytest.raises(TimeoutError, match="did not happen within"):
            await call.wait_for(lambda t: bool(t.clears), 0.2)
        await call.wait_for(lambda t: t.frames_sent >= 3, 5 * SECOND)


async def test_carrier_gaps_make_timestamps_jump():
    async with Deployment() as deployment, await place(deployment, gaps=True) as call:
        peer = await deployment.peer()

        def jumped(messages: list[dict[str, Any]]) -> bool:
            stamps = [int(m["timestamp"]) for m in media_of(messages)]
            return any(b - a > 20 for a, b in zip(stamps, stamps[1:], strict=False))

        await peer.until(jumped, timeout=5.0)
        media = media_of(peer.messages)
        stamps = [int(m["timestamp"]) for m in media]
        jumps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b - a != 20]
        assert jumps and set(jumps) == {420}  # 400 ms without frames
        assert [m["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
        assert call.timeline.frames_sent >= len(media)


async def test_bursty_delivery_keeps_every_frame_in_order():
    async with Deployment() as deployment, await place(deployment, bursts=True) as call:
        peer = await deployment.peer()
        await peer.until(n_media(26))
        media = media_of(peer.messages)
        assert [m["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
        arrivals = peer.arrivals[2:]  # after connected and start
        burst = arrivals[22:25]  # slots 23-25 go out together
        assert burst[-1] - burst[0] < 0.015
        assert call.timeline.frames_sent >= 25


async def test_a_dropped_socket_is_broken_pipe_31903():
    async def script(peer: Peer) -> None:
        await peer.started()
        transport = peer.ws.transport
        assert transport is not None
        transport.abort()

    async with Deployment(script) as deployment, await place(deployment) as call:
        outcome = await call.finished(10 * SECOND)
    assert outcome.ended_by == "server" and outcome.close_code == 1006
    assert [v.code for v in call.violations] == [31903]


class _BrokenPlayout(Playout):
    def push_audio(self, data: bytes, now: float) -> None:
        raise RuntimeError("playout broke")


async def test_a_background_task_failure_is_not_silent():
    async def script(peer: Peer) -> None:
        await peer.started()
        await peer.media(SILENCE_FRAME)
        await peer.closed.wait()

    async with Deployment(script) as deployment, await place(deployment) as call:
        call.playout = _BrokenPlayout()
        with pytest.raises(SimulatorTaskError, match="receiver task failed") as caught:
            await call.wait_for(lambda t: bool(t.clears), 10 * SECOND)
        assert isinstance(caught.value.__cause__, RuntimeError)
        with pytest.raises(SimulatorTaskError, match="playout broke"):
            await call.finished(1 * SECOND)
        await asyncio.wait_for(deployment.peers[0].closed.wait(), 5 * SECOND)


async def test_over_tls_the_signature_covers_the_wss_url(tmp_path: Path):
    certs = self_signed(tmp_path)
    tls = server_context(certs.certfile, certs.keyfile)
    async with Deployment(tls=tls) as deployment:
        assert deployment.voice_url.startswith("https://")
        trust = client_context(certs.cafile)
        async with await place(deployment, ssl_context=trust) as call:
            peer = await deployment.peer()
            await peer.until(n_media(2))
            assert call.stream_url.startswith("wss://127.0.0.1:")
            (hit,), (upgrade,) = deployment.hits, deployment.upgrades
            assert hit.signature_ok and upgrade.signature_ok
        # Without trust in the test CA, TLS fails the way Twilio's does (31910 / webhook error).
        with pytest.raises(WebhookError, match="ConnectError"):
            await place(deployment)
        # A stream on a certificate Twilio does not trust: 31910.
        twiml = f'<Response><Connect><Stream url="{deployment.stream_url}"/></Connect></Response>'
        async with Deployment(voice_twiml=twiml) as plain:
            with pytest.raises(StreamConnectError, match="31910") as caught:
                await place(plain)
            assert caught.value.code == 31910
