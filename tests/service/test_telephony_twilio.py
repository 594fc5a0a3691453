"""Phone calls through Twilio Media Streams, against the running service and the OpenAI emulator.

The caller is :class:`s2s.phone.TwilioCall`, a simulator written from Twilio's documentation
and independent of the server code: it signs like Twilio, streams 20 ms μ-law frames in real
time, plays the bot's audio on a real-time clock, echoes marks as it plays them (and every
pending mark on ``clear``), and records as a violation anything Twilio would reject.
"""

from __future__ import annotations

import httpx
import pytest

from s2s.audio.wav import read_wav
from s2s.phone import AudioReceived, MarkReceived, TwilioCall, WebhookError

from ..conftest import SECOND
from .phone_calls import (
    audio_formats,
    caller_speech,
    closed_session,
    events,
    hang_up_from_the_service,
    of_type,
    provider_frames,
    run_phone_cli,
    say_text,
)
from .stack import ACME_KEY, ACME_TRANSFER_TARGET, ACME_TWILIO_TOKEN

pytestmark = pytest.mark.timeout(180)


def voice_url(base: str, tenant: str = "acme") -> str:
    return f"{base}/v1/telephony/twilio/{tenant}/voice"


async def place(base: str) -> TwilioCall:
    return await TwilioCall.place(voice_url(base), auth_token=ACME_TWILIO_TOKEN)


def heard_positions(call: TwilioCall) -> dict[str, float]:
    """For each mark the server sent: how much audio (ms) preceded it on the stream."""
    positions, received = {}, 0
    for entry in call.timeline.entries:
        if isinstance(entry, AudioReceived):
            received += len(entry.audio)
        elif isinstance(entry, MarkReceived):
            positions[entry.name] = received / 8
    return positions


async def test_a_call_with_a_tool_then_the_caller_hangs_up(base, emulator):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        assert "token" in call.parameters
        await call.say(caller_speech(1.2))
        await call.wait_for(lambda t: any(e.played for e in t.echoes), 20 * SECOND)
        await say_text(base, session_id, 'twilio-tool call lookup_order {"order_id": "A-7"}')
        await call.wait_for(lambda t: len(t.echoes) >= 12, 30 * SECOND)
        await call.hang_up()
        outcome = await call.finished(10 * SECOND)
    assert outcome.ended_by == "caller" and outcome.hung_up
    assert call.violations == []  # nothing Twilio would reject
    record = await closed_session(base, session_id)
    assert record["closed_reason"] == "caller_hung_up"
    assert record["metadata"]["telephony"]["platform"] == "twilio"
    assert record["metadata"]["telephony"]["call_id"] == call.call_sid
    feed = await events(base, session_id)
    kinds = [e["type"] for e in feed]
    assert "speech_started" in kinds and "tool_call" in kinds and "tool_result" in kinds
    started = next(e for e in feed if e["type"] == "session_started")
    assert started["telephony"] == {
        "platform": "twilio",
        "call_id": call.call_sid,
        "from": "+15555550100",
        "to": "+18005550199",
    }
    frames = provider_frames(emulator, "twilio-tool")
    # μ-law went straight to the provider, no decoding or resampling on the way
    assert audio_formats(frames) == {('{"type": "audio/pcmu"}', '{"type": "audio/pcmu"}')}
    # no barge-in, so nothing was discarded: every echo was a played mark
    assert call.timeline.echoes and all(e.played for e in call.timeline.echoes)
    assert {e.name for e in call.timeline.echoes} <= {m.name for m in call.timeline.marks}


async def test_barge_in_clears_playback_and_truncates_to_what_the_caller_heard(base, emulator):
    long_text = "twilio-barge " + "please read me the whole of the terms and conditions " * 4
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(base, session_id, long_text)
        await call.wait_for(lambda t: sum(e.played for e in t.echoes) >= 8, 30 * SECOND)
        await call.say(caller_speech(1.0, seed=3))  # the caller talks over the bot
        await call.wait_for(lambda t: bool(t.clears), 15 * SECOND)
        played = [e.name for e in call.timeline.echoes if e.played]
        cleared = [e.name for e in call.timeline.echoes if not e.played]
        await call.hang_up()
        await call.finished(10 * SECOND)
    assert call.violations == []
    clear = call.timeline.clears[0]
    assert cleared and set(cleared) == set(clear.pending_marks)  # Twilio echoed them on clear
    truncates = of_type(provider_frames(emulator, "twilio-barge"), "conversation.item.truncate")
    assert len(truncates) == 1, truncates
    cut_ms = truncates[0]["audio_end_ms"]
    positions = heard_positions(call)
    # the provider was told a mark boundary the caller really heard, not a wall-clock guess
    assert cut_ms in {round(positions[name]) for name in played}, (cut_ms, positions)
    assert cut_ms < min(positions[name] for name in cleared)
    assert cut_ms < call.timeline.received_ms  # audio sent but never heard was cut off


async def test_key_presses_reach_subscribers_and_the_model(base, emulator):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(base, session_id, "twilio-dtmf hello")
        await call.press("4")
        await call.wait_for(lambda t: len(t.dtmf) == 1 and len(t.echoes) >= 3, 20 * SECOND)
        await call.hang_up()
        await call.finished(10 * SECOND)
    await closed_session(base, session_id)
    assert {"type": "dtmf", "digit": "4"}.items() <= next(
        e for e in await events(base, session_id) if e["type"] == "dtmf"
    ).items()
    texts = [
        str(f)
        for f in of_type(provider_frames(emulator, "twilio-dtmf"), "conversation.item.create")
    ]
    assert any("pressed 4" in text for text in texts)


async def test_end_call_plays_the_goodbye_then_hangs_up(base):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(base, session_id, 'call end_call {"summary": "caller is done"}')
        outcome = await call.finished(40 * SECOND)
    assert outcome.ended_by == "server" and outcome.hung_up and outcome.transferred_to is None
    assert call.violations == []
    closed = call.timeline.closed
    assert closed is not None
    # the goodbye was played to its last mark before the stream closed
    assert call.timeline.echoes and all(e.played for e in call.timeline.echoes)
    assert max(e.at for e in call.timeline.echoes) <= closed.at
    assert len(call.timeline.echoes) == len(call.timeline.marks)
    record = await closed_session(base, session_id)
    assert record["closed_reason"] == "end_call"


async def test_transfer_call_dials_the_configured_target(base):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(
            base, session_id, 'call transfer_call {"target": "billing", "summary": "bill query"}'
        )
        outcome = await call.finished(40 * SECOND)
    assert outcome.ended_by == "server" and outcome.transferred_to == ACME_TRANSFER_TARGET
    assert not outcome.hung_up and call.violations == []
    assert (await closed_session(base, session_id))["closed_reason"] == "transferred"


async def test_an_unknown_transfer_target_is_refused_to_the_model(base):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(base, session_id, 'call transfer_call {"target": "the-moon"}')
        await call.wait_for(lambda t: len(t.echoes) >= 5, 30 * SECOND)
        assert call.timeline.closed is None  # the call goes on
        await call.hang_up()
        await call.finished(10 * SECOND)
    results = [e for e in await events(base, session_id) if e["type"] == "tool_result"]
    assert results and "Unknown transfer target" in str(results[0])


async def test_bad_signatures_are_refused_before_anything_starts(base, stack):
    with pytest.raises(WebhookError) as refused:
        await TwilioCall.place(voice_url(base), auth_token="not-acme-s-token")
    assert refused.value.status == 403
    # a valid webhook, then a stream upgrade signed with the wrong token: 403, no socket
    async with httpx.AsyncClient() as http:
        reply = await http.get(
            f"{base}/v1/telephony/twilio/acme/stream",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl",
            },
        )
    assert reply.status_code == 403
    # a tenant without Twilio settings has no phone line
    with pytest.raises(WebhookError) as missing:
        await TwilioCall.place(voice_url(base, "globex"), auth_token=ACME_TWILIO_TOKEN)
    assert missing.value.status == 404


async def test_the_phone_command_places_a_call(base, tmp_path):
    out = tmp_path / "reply.wav"
    code, stdout, stderr = await run_phone_cli(
        "twilio",
        base,
        "--tenant",
        "acme",
        "--auth-token",
        ACME_TWILIO_TOKEN,
        "--api-key",
        ACME_KEY,
        "--press",
        "5@0.5",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert "session " in stdout and "outcome:" in stdout
    assert "speech_started" in stdout and "dtmf" in stdout  # the call's events, live
    pcm, rate = read_wav(out)
    assert rate == 8000 and len(pcm) / 2 / rate > 0.5  # the bot's answer, as heard


async def test_a_call_ended_by_the_service_hands_back_to_twiml_and_hangs_up(base):
    async with await place(base) as call:
        session_id = call.parameters["session_id"]
        await say_text(base, session_id, "twilio-delete hello")
        await call.wait_for(lambda t: len(t.echoes) >= 2, 20 * SECOND)
        await hang_up_from_the_service(base, session_id)
        outcome = await call.finished(20 * SECOND)
    assert outcome.ended_by == "server" and outcome.hung_up and outcome.transferred_to is None
    assert len(outcome.redirects) == 1 and call.violations == []
    assert (await closed_session(base, session_id))["closed_reason"] == "closed_by_client"
