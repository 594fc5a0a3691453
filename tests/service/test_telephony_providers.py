"""Phone calls on Gemini Live and Nova Sonic (providers that take no μ-law), at a quota, a call
on GPT-Live, and a call that fails over from one provider to another.

Their sessions decode the caller's μ-law and resample it for the provider, and encode the
model's audio back, inside the session; the phone side is unchanged. Each provider gets a
tenant whose phone calls use it, and its own emulator. (The failover test lives here because
this is the stack with more than one provider.)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from deployments.stack import LocalStack
from deployments.tenancy import hash_key
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.nova import DEFAULT_CREDENTIALS, NovaEmulator
from s2s.emulators.openai_live import LiveEmulator
from s2s.phone import TwilioCall
from s2s.phone.genesys import GenesysCall, GenesysCredentials
from s2s.phone.genesys_timeline import GenesysSessionError
from s2s.service.config import ServiceConfig

from ..conftest import GEMINI_KEY, OPENAI_KEY, SECOND
from ..helpers import utterance, voiced
from .phone_calls import call_session, caller_speech, closed_session, events, say_text
from .stack import (
    ACME_GENESYS_SECRET,
    ACME_TRANSFER_TARGET,
    ACME_TWILIO_TOKEN,
    EmulatorThread,
    http_client,
    open_call,
    service_config,
    turn_completed,
    with_repo_on_path,
)

pytestmark = pytest.mark.timeout(180)

PROVIDERS = ("gemini_live", "nova")
BUSY_KEY = "busy-key-0123456789"


def tenant_of(provider: str) -> str:
    return provider.replace("_", "-")


def key_of(provider: str) -> str:
    return f"{tenant_of(provider)}-key-0123456789"


@pytest.fixture(scope="module")
def stack(emulator: EmulatorThread) -> Iterator[LocalStack]:
    """The service with Gemini and Nova emulators too, and a phone tenant for each."""
    with_repo_on_path()
    gemini = EmulatorThread(GeminiEmulator(api_key=GEMINI_KEY, record=True, speed=8.0))
    nova = EmulatorThread(NovaEmulator(record=True, speed=8.0))
    live = EmulatorThread(LiveEmulator(api_key=OPENAI_KEY, record=True))
    gemini.start()
    nova.start()
    live.start()
    data: dict[str, Any] = service_config(emulator.emulator.url)
    data["providers"]["gemini_live"] = {
        "emulate_without_key": False,
        "extra": {
            "api_key": GEMINI_KEY,
            "base_url": gemini.emulator.url,
            "ca_file": str(gemini.emulator.ca_file),
        },
    }
    data["providers"]["openai_live"] = {
        "emulate_without_key": False,
        "extra": {"api_key": OPENAI_KEY, "base_url": live.emulator.url},
    }
    data["providers"]["nova"] = {
        "emulate_without_key": False,
        "extra": {
            "base_url": nova.emulator.url,
            "ca_file": str(nova.emulator.ca_file),
            "aws_access_key_id": DEFAULT_CREDENTIALS.access_key_id,
            "aws_secret_access_key": DEFAULT_CREDENTIALS.secret_access_key,
        },
    }
    acme = data["tenants"]["acme"]
    for provider in PROVIDERS:  # acme's phone line, on this provider (its own tenant and key)
        tenant = copy.deepcopy(acme)
        tenant["telephony"]["provider"] = provider
        tenant["key_hashes"] = [hash_key(key_of(provider))]
        data["tenants"][tenant_of(provider)] = tenant
    busy = copy.deepcopy(acme)  # a phone line that takes one call at a time
    busy["key_hashes"] = [hash_key(BUSY_KEY)]
    busy["quotas"] = {"max_live_sessions": 1}
    data["tenants"]["busy"] = busy
    local = LocalStack(ServiceConfig.model_validate(data), workers_per_pool=1)
    local.start()
    try:
        yield local
    finally:
        local.stop(graceful=False)
        gemini.stop()
        nova.stop()
        live.stop()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_twilio_call_with_a_tool_and_a_barge_in(base, provider):
    voice = f"{base}/v1/telephony/twilio/{tenant_of(provider)}/voice"
    async with await TwilioCall.place(voice, auth_token=ACME_TWILIO_TOKEN) as call:
        session_id = call.parameters["session_id"]
        await call.say(caller_speech(1.2))
        await call.wait_for(lambda t: any(e.played for e in t.echoes), 30 * SECOND)
        key = key_of(provider)
        await say_text(base, session_id, 'call lookup_order {"order_id": "A-7"}', key)
        await call.wait_for(lambda t: len(t.echoes) >= 10, 30 * SECOND)
        await say_text(base, session_id, "read me the terms and conditions " * 6, key)
        await call.wait_for(lambda t: sum(e.played for e in t.echoes) >= 20, 30 * SECOND)
        await call.say(caller_speech(1.0, seed=5))  # over the model
        await call.wait_for(lambda t: bool(t.clears), 20 * SECOND)
        await call.hang_up()
        outcome = await call.finished(15 * SECOND)
    assert outcome.ended_by == "caller" and call.violations == []
    record = await closed_session(base, session_id, key=key)
    assert record["provider"] == provider and record["closed_reason"] == "caller_hung_up"
    assert record["audio_format"] == "pcmu"
    kinds = [e["type"] for e in await events(base, session_id, key)]
    # these providers signal a barge-in with ``interrupted`` (no separate speech_started)
    assert "tool_result" in kinds and "interrupted" in kinds, sorted(set(kinds))
    cleared = [e for e in call.timeline.echoes if not e.played]
    pending = {name for clear in call.timeline.clears for name in clear.pending_marks}
    assert pending == {e.name for e in cleared}  # every cleared mark, and only those


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_genesys_call_transferred(base, ws_base, provider):
    conversation = str(uuid.uuid4())
    key = key_of(provider)
    credentials = GenesysCredentials(api_key=key, client_secret=ACME_GENESYS_SECRET)
    url = f"{ws_base}/v1/telephony/genesys/{tenant_of(provider)}"
    async with await GenesysCall.connect(url, credentials, conversation_id=conversation) as call:
        await call.say(caller_speech(1.0))
        await call.wait_for(lambda t: len(t.bot_frames) >= 2, 30 * SECOND)
        session_id = await call_session(base, conversation, key)
        await say_text(base, session_id, 'call transfer_call {"target": "billing"}', key)
        outcome = await call.finished(40 * SECOND)
    assert outcome.disconnect_reason == "completed" and outcome.closed_in_time
    assert call.violations == []
    assert dict(outcome.output_variables)["queue"] == ACME_TRANSFER_TARGET
    record = await closed_session(base, session_id, key=key)
    assert record["provider"] == provider and record["closed_reason"] == "transferred"


async def test_a_line_at_its_quota_answers_busy_on_both_platforms(base, ws_base):
    voice = f"{base}/v1/telephony/twilio/busy/voice"
    async with await TwilioCall.place(voice, auth_token=ACME_TWILIO_TOKEN) as first:
        await first.say(caller_speech(0.5))
        # Twilio: the second call is rejected busy (the caller hears a busy tone; not billed)
        form = {"CallSid": "CA" + "0" * 32, "From": "+15555550101", "To": "+18005550199"}
        signature = RequestValidator(ACME_TWILIO_TOKEN).compute_signature(voice, form)
        async with httpx.AsyncClient() as http:
            reply = await http.post(voice, data=form, headers={"X-Twilio-Signature": signature})
        assert reply.status_code == 200 and '<Reject reason="busy"' in reply.text
        # Genesys: no opened; disconnect{error} saying why (the flow takes its failure path)
        credentials = GenesysCredentials(api_key=BUSY_KEY, client_secret=ACME_GENESYS_SECRET)
        with pytest.raises(GenesysSessionError) as refused:
            await GenesysCall.connect(f"{ws_base}/v1/telephony/genesys/busy", credentials)
        outcome = refused.value.outcome
        assert outcome is not None and outcome.disconnect_reason == "error"
        assert "limit" in (outcome.info or ""), outcome
        await first.hang_up()
        await first.finished(15 * SECOND)


async def test_a_call_moves_to_the_next_provider_when_its_quota_runs_out(
    base, ws_base, emulator: EmulatorThread, stack: LocalStack
):
    """The request names a failover list; the OpenAI emulator runs out of quota mid-utterance
    (as production words it); the call goes on on Gemini, hears the whole utterance, and the
    client sees one provider_switched event. The next call with that list starts on Gemini
    without knocking at OpenAI's door (the account is out of quota for a while)."""
    assert stack.info is not None
    redis = Redis.from_url(stack.info.redis_url)
    async with http_client(base) as http, contextlib.aclosing(redis):
        reply = await http.post(
            "/v1/sessions",
            json={"provider": "openai_realtime", "failover": ["gemini_live"], "sample_rate": 16000},
        )
        assert reply.status_code == 201, reply.text
        session_id = reply.json()["session_id"]
        refused = await http.post(
            "/v1/sessions", json={"provider": "openai_realtime", "failover": ["openai_realtime"]}
        )
        assert refused.status_code == 400 and "failover" in refused.text
        call = await open_call(ws_base, session_id)
        await call.until(lambda e: e["type"] == "session_started")
        pcm = utterance(2.0, 16000, seed=3)
        step = 16000 // 50 * 2
        for n, start in enumerate(range(0, len(pcm), step)):
            if n == 40:  # 0.8 s into the utterance
                asyncio.run_coroutine_threadsafe(
                    emulator.emulator.inject_error(
                        "insufficient_quota",
                        "You exceeded your current quota, please check your plan and billing "
                        "details.",
                        type="insufficient_quota",
                        close_code=4000,
                    ),
                    emulator.loop,
                ).result(5)
            await call.ws.send(pcm[start : start + step])
        switched = await call.until(lambda e: e["type"] == "provider_switched", 30)
        await call.until(turn_completed, 30)
        await call.ws.close()
        detail = (await http.get(f"/v1/sessions/{session_id}")).json()
        await http.delete(f"/v1/sessions/{session_id}")

        # the next call on the same account skips OpenAI while its quota is out
        mark = "s2s:providers:openai_realtime:down:service"
        assert 0 < await redis.pttl(mark) <= 60_000
        knocks = len(emulator.emulator.sessions)
        reply = await http.post(
            "/v1/sessions",
            json={"provider": "openai_realtime", "failover": ["gemini_live"], "sample_rate": 16000},
        )
        assert reply.status_code == 201, reply.text
        second = await open_call(ws_base, reply.json()["session_id"])
        await second.until(lambda e: e["type"] == "session_started")
        speech = utterance(1.0, 16000, seed=4)
        for start in range(0, len(speech), step):
            await second.ws.send(speech[start : start + step])
        await second.until(turn_completed, 30)
        await second.ws.close()
        await http.delete(f"/v1/sessions/{reply.json()['session_id']}")
        await redis.delete(mark)  # the other tests of this stack use OpenAI
    assert len(emulator.emulator.sessions) == knocks  # OpenAI never saw the second call
    kinds = [e["type"] for e in second.events]
    assert kinds.index("session_started") < kinds.index("provider_skipped")
    assert "provider_switched" not in kinds
    started = next(e for e in second.events if e["type"] == "session_started")
    skipped = next(e for e in second.events if e["type"] == "provider_skipped")
    assert started["provider"] == "gemini_live"
    assert skipped["provider"] == "openai_realtime" and skipped["to"] == "gemini_live"
    assert skipped["code"] == "insufficient_quota"
    assert switched["data"]["from"] == "openai_realtime"
    assert switched["data"]["to"] == "gemini_live"
    assert switched["reason"] == "insufficient_quota"
    heard = [
        e["text"]
        for e in call.events
        if e["type"] == "transcript" and e.get("final") and e.get("role") == "user"
    ]
    assert heard == [f"[{voiced(2.0, 16000, seed=3)} seconds of speech]"]  # all of it
    assert detail["live"]["provider"] == "gemini_live"
    print(f"service failover gap: {switched['data']['gap_ms']} ms")


async def test_a_rest_call_on_gpt_live(base, ws_base):
    """openai_live is served like the others: a REST session, the stream socket, a spoken turn
    (the model answers when it decides to; the session keeps its timeline moving)."""
    async with http_client(base) as http:
        reply = await http.post(
            "/v1/sessions", json={"provider": "openai_live", "sample_rate": 16000}
        )
        assert reply.status_code == 201, reply.text
        session_id = reply.json()["session_id"]
        call = await open_call(ws_base, session_id)
        await call.until(lambda e: e["type"] == "session_started")
        pcm = utterance(1.5, 16000, seed=2)
        step = 16000 // 50 * 2
        for start in range(0, len(pcm), step):
            await call.ws.send(pcm[start : start + step])
        await call.until(turn_completed, 30)
        await call.ws.close()
        detail = (await http.get(f"/v1/sessions/{session_id}")).json()
        await http.delete(f"/v1/sessions/{session_id}")
    said = [e["text"] for e in call.events if e["type"] == "transcript" and e.get("final")]
    heard = voiced(1.5, 16000, seed=2)
    assert said == [f"[{heard} seconds of speech]", f"I heard {heard} seconds of speech."]
    assert "audio_output" in call.kinds()
    assert detail["live"]["provider"] == "openai_live"
