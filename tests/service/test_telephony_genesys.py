"""Phone calls through Genesys Cloud's Audio Connector (AudioHook v2), against the running service.

The caller is :class:`s2s.phone.genesys.GenesysCall`, a simulator written from the protocol
brief and independent of the server code: it signs the upgrade like Genesys, enforces the
reference client's deadlines (opened 5 s, pong before the next ping, closed 10 s) and framing
(seq / clientseq, no ``position`` from the server, ``parameters`` always), streams 200 ms PCMU
frames in real time, plays the bot's frames on a real-time clock, and rate-limits them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from s2s.audio.wav import read_wav
from s2s.phone.genesys import GenesysCall, GenesysCredentials
from s2s.phone.genesys_signature import SignatureOptions
from s2s.phone.genesys_timeline import GenesysConnectError

from ..conftest import SECOND
from .phone_calls import (
    HEADERS,
    audio_formats,
    call_session,
    caller_speech,
    closed_session,
    events,
    hang_up_from_the_service,
    of_type,
    provider_frames,
    run_phone_cli,
    say_text,
)
from .stack import ACME_GENESYS_SECRET, ACME_KEY, ACME_TRANSFER_TARGET, GLOBEX_KEY

pytestmark = pytest.mark.timeout(180)

CREDENTIALS = GenesysCredentials(api_key=ACME_KEY, client_secret=ACME_GENESYS_SECRET)


def url(ws_base: str, tenant: str = "acme") -> str:
    return f"{ws_base}/v1/telephony/genesys/{tenant}"


async def connect(ws_base: str, **options: Any) -> GenesysCall:
    return await GenesysCall.connect(url(ws_base), CREDENTIALS, **options)


async def test_a_call_with_a_tool_then_the_caller_hangs_up(base, ws_base, emulator):
    conversation = str(uuid.uuid4())
    async with await GenesysCall.connect(
        f"{url(ws_base)}/orders-bot",  # the Architect action's Connector ID, appended
        CREDENTIALS,
        conversation_id=conversation,
        input_variables={"intentHint": "orders"},
    ) as call:
        assert call.opened.media is not None
        session_id = await call_session(base, conversation)
        await call.say(caller_speech(1.2))
        await call.wait_for(lambda t: len(t.bot_frames) >= 2, 20 * SECOND)
        await say_text(base, session_id, 'genesys-tool call lookup_order {"order_id": "A-7"}')
        await call.wait_for(lambda t: len(t.playback_completed) >= 2, 30 * SECOND)
        await call.hang_up()
        outcome = await call.finished(15 * SECOND)
    assert outcome.ended_by == "caller" and outcome.closed_in_time
    assert call.violations == []  # nothing the reference client would reject
    assert call.timeline.rate_limits == []  # paced under the 5 frames/s limit
    frames = call.timeline.bot_frames
    # >= 200 ms frames, except where a model item's audio ends
    assert sum(f.size >= 1600 for f in frames) >= 0.75 * len(frames)
    record = await closed_session(base, session_id)
    assert record["closed_reason"] == "caller_hung_up"
    assert record["metadata"]["telephony"]["platform"] == "genesys"
    assert record["metadata"]["genesys"]["input_variables"] == {"intentHint": "orders"}
    assert record["metadata"]["genesys"]["connector_id"] == "orders-bot"
    kinds = [e["type"] for e in await events(base, session_id)]
    assert "speech_started" in kinds and "tool_result" in kinds
    provider = provider_frames(emulator, "genesys-tool")
    assert audio_formats(provider) == {('{"type": "audio/pcmu"}', '{"type": "audio/pcmu"}')}


async def test_barge_in_flushes_genesys_and_truncates_near_the_playback_clock(
    base, ws_base, emulator
):
    conversation = str(uuid.uuid4())
    long_text = "genesys-barge " + "please read me the whole of the terms and conditions " * 4
    async with await connect(ws_base, conversation_id=conversation) as call:
        session_id = await call_session(base, conversation)
        await say_text(base, session_id, long_text)
        await call.wait_for(lambda t: len(t.bot_frames) >= 8, 30 * SECOND)
        await call.say(caller_speech(1.0, seed=3))
        await call.wait_for(lambda t: bool(t.barge_ins), 15 * SECOND)
        barge = call.timeline.barge_ins[0]
        received_ms = sum(f.size for f in call.timeline.bot_frames if f.at <= barge.at) / 8
        await call.hang_up()
        await call.finished(15 * SECOND)
    assert call.violations == []
    assert barge.was_playing and barge.discarded_ms > 0
    heard_ms = received_ms - barge.discarded_ms
    truncates = of_type(provider_frames(emulator, "genesys-barge"), "conversation.item.truncate")
    assert len(truncates) == 1, truncates
    cut_ms = truncates[0]["audio_end_ms"]
    # cut where the clock said the caller was (the provider noticed the caller a moment before
    # the barge_in reached Genesys), never past what Genesys had played
    assert heard_ms - 1500 <= cut_ms <= heard_ms + 250, (cut_ms, heard_ms)


async def test_key_presses_become_events(base, ws_base):
    conversation = str(uuid.uuid4())
    async with await connect(ws_base, conversation_id=conversation) as call:
        session_id = await call_session(base, conversation)
        await call.press("7")
        await call.wait_for(lambda t: len(t.bot_frames) >= 2, 20 * SECOND)  # the model answered
        await call.hang_up()
        await call.finished(15 * SECOND)
    await closed_session(base, session_id)
    assert any(e["type"] == "dtmf" and e["digit"] == "7" for e in await events(base, session_id))


async def test_transfer_hands_the_call_back_with_output_variables(base, ws_base):
    conversation = str(uuid.uuid4())
    async with await connect(ws_base, conversation_id=conversation) as call:
        session_id = await call_session(base, conversation)
        await say_text(
            base, session_id, 'call transfer_call {"target": "billing", "summary": "bill query"}'
        )
        outcome = await call.finished(40 * SECOND)
    assert outcome.ended_by == "server" and outcome.disconnect_reason == "completed"
    assert outcome.closed_in_time and call.violations == []
    variables = dict(outcome.output_variables)
    assert variables["nextAction"] == "transfer"
    assert variables["queue"] == ACME_TRANSFER_TARGET
    assert variables["summary"] == "bill query"
    assert variables["sessionId"] == session_id
    # the goodbye played out before the disconnect
    disconnect_at = next(m.at for m in call.timeline.messages if m.type == "disconnect")
    assert call.timeline.playback_completed and call.timeline.playback_completed[-1] <= (
        disconnect_at + 0.3
    )
    assert (await closed_session(base, session_id))["closed_reason"] == "transferred"


async def test_end_call_disconnects_completed(base, ws_base):
    conversation = str(uuid.uuid4())
    async with await connect(ws_base, conversation_id=conversation) as call:
        session_id = await call_session(base, conversation)
        await say_text(base, session_id, 'call end_call {"summary": "all done"}')
        outcome = await call.finished(40 * SECOND)
    assert outcome.disconnect_reason == "completed" and call.violations == []
    assert dict(outcome.output_variables)["nextAction"] == "end"
    assert (await closed_session(base, session_id))["closed_reason"] == "end_call"


async def test_the_connection_probe_is_answered_without_a_bot(base, ws_base):
    async with httpx.AsyncClient(headers=HEADERS) as http:
        before = len((await http.get(f"{base}/v1/sessions")).json()["sessions"])
    async with await connect(ws_base, probe=True) as call:
        outcome = await call.finished(15 * SECOND)
    assert outcome.closed_in_time and call.violations == []
    async with httpx.AsyncClient(headers=HEADERS) as http:
        after = len((await http.get(f"{base}/v1/sessions")).json()["sessions"])
    assert after == before


async def test_a_429_holds_the_bot_audio_for_retry_after(base, ws_base):
    conversation = str(uuid.uuid4())
    async with await connect(
        ws_base, conversation_id=conversation, max_frames_per_s=2, retry_after_s=1.0
    ) as call:
        session_id = await call_session(base, conversation)
        await say_text(base, session_id, "genesys-429 " + "tell me everything you know " * 3)
        await call.wait_for(lambda t: bool(t.rate_limits), 30 * SECOND)
        limited = call.timeline.rate_limits[0]
        # the audio goes on after the hold
        await call.wait_for(
            lambda t: any(f.at > limited.at + limited.retry_after_s for f in t.bot_frames),
            15 * SECOND,
        )
        await call.hang_up()
        await call.finished(15 * SECOND)
    assert call.timeline.retry_after_ignored == []
    assert not [v for v in call.violations if "retry" in v.lower()]


@pytest.mark.parametrize(
    ("credentials", "signature"),
    [
        (GenesysCredentials(api_key=GLOBEX_KEY), None),  # another tenant's key
        (GenesysCredentials(api_key=ACME_KEY), None),  # unsigned, but acme has a secret
        (CREDENTIALS, SignatureOptions(secret="d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")),
        (CREDENTIALS, SignatureOptions(created_offset_s=-60)),  # expired
    ],
)
async def test_bad_credentials_are_refused_before_the_upgrade(ws_base, credentials, signature):
    with pytest.raises(GenesysConnectError) as refused:
        await GenesysCall.connect(url(ws_base), credentials, signature=signature)
    assert refused.value.status == 401


async def test_the_phone_command_places_a_call(base, tmp_path):
    out = tmp_path / "reply.wav"
    code, stdout, stderr = await run_phone_cli(
        "genesys",
        base,
        "--tenant",
        "acme",
        "--api-key",
        ACME_KEY,
        "--client-secret",
        ACME_GENESYS_SECRET,
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert "opened with" in stdout and "outcome:" in stdout and "speech_started" in stdout
    pcm, rate = read_wav(out)
    assert rate == 8000 and len(pcm) / 2 / rate > 0.5
    code, stdout, stderr = await run_phone_cli(
        "genesys",
        base,
        "--tenant",
        "acme",
        "--api-key",
        ACME_KEY,
        "--client-secret",
        ACME_GENESYS_SECRET,
        "--probe",
    )
    assert code == 0 and "probe answered" in stdout, stderr


async def test_a_call_ended_by_the_service_disconnects_completed(base, ws_base):
    conversation = str(uuid.uuid4())
    async with await connect(ws_base, conversation_id=conversation) as call:
        session_id = await call_session(base, conversation)
        await call.say(caller_speech(0.8))
        await call.wait_for(lambda t: len(t.bot_frames) >= 1, 20 * SECOND)
        await hang_up_from_the_service(base, session_id)
        outcome = await call.finished(20 * SECOND)
    assert outcome.ended_by == "server", (outcome, call.violations, call.timeline.messages[-6:])
    assert outcome.disconnect_reason == "completed"
    assert outcome.closed_in_time and call.violations == []
    assert dict(outcome.output_variables)["reason"] == "closed_by_client"
