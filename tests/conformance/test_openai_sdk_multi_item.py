"""gpt-realtime-2 multi-item responses and injected response failures, checked with the SDK.

The official ``openai`` SDK runs a turn against an emulated ``gpt-realtime-2`` (a preamble item,
then the answer item) and every frame the emulator sent validates against
``RealtimeServerEvent``; so do the frames of an injected quota failure.
"""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI

from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY
from .test_openai_sdk import PRODUCTION_EXTRAS, SERVER, _sdk_events_until, assert_valid

pytestmark = pytest.mark.conformance

#: ``phase`` is documented by Azure; openai's assistant-message type does not declare it.
PHASE_EXTRAS = frozenset(
    {"$.item.phase", *(f"$.response.output[{i}].phase" for i in range(2)), *PRODUCTION_EXTRAS}
)


async def test_sdk_reads_a_two_item_answer_of_gpt_realtime_2():
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=16.0, phase=True) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.realtime.connect(model="gpt-realtime-2") as conn:
            await conn.recv()
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "what is the time"}],
                }
            )
            await conn.response.create()
            events = await _sdk_events_until(conn, "response.done")
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.output_index for e in added] == [0, 1]
    first, second = (e.item.id for e in added)
    assert (added[0].item.model_extra or {}).get("phase") == "commentary"
    assert (added[1].item.model_extra or {}).get("phase") == "final_answer"
    deltas = [e for e in events if e.type == "response.output_audio.delta"]
    ids = [d.item_id for d in deltas]
    assert ids == sorted(ids, key=[first, second].index)  # playback order: A's, then B's
    assert {(d.item_id, d.output_index) for d in deltas} == {(first, 0), (second, 1)}
    kinds = [e.type for e in events]
    last_delta = max(i for i, k in enumerate(kinds) if k.endswith(".delta"))
    audio_done = [i for i, k in enumerate(kinds) if k == "response.output_audio.done"]
    assert len(audio_done) == 2 and min(audio_done) > last_delta  # a burst at the end
    done = events[-1].response
    assert [item.id for item in done.output] == [first, second]
    transcripts = {
        e.item_id: e.transcript for e in events if e.type == "response.output_audio_transcript.done"
    }
    assert transcripts == {first: "Let me check that.", second: 'You said: "what is the time".'}
    for message in emulator.sessions[-1].frames_out:
        assert_valid(SERVER, message, PHASE_EXTRAS)


async def test_sdk_reads_an_injected_quota_failure():
    async with OpenAIEmulator(
        api_key=OPENAI_KEY, record=True, fail_responses="insufficient_quota"
    ) as emulator:
        client = AsyncOpenAI(api_key=OPENAI_KEY, websocket_base_url=emulator.sdk_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.session.update(session={"type": "realtime", "instructions": "hi"})
            assert (await conn.recv()).type == "session.updated"
            await conn.response.create()
            events = await _sdk_events_until(conn, "response.done")
            async with asyncio.timeout(5):
                while emulator.close_codes == []:
                    await asyncio.sleep(0.01)
    error = next(e for e in events if e.type == "error")
    assert error.error.code == "insufficient_quota" and "quota" in error.error.message
    response = events[-1].response
    assert response.status == "failed"
    assert response.status_details.error.code == "insufficient_quota"
    assert emulator.close_codes == [1011]
    for message in emulator.sessions[-1].frames_out:
        assert_valid(SERVER, message, frozenset(PRODUCTION_EXTRAS))
