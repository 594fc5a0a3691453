"""Barge-in on a two-item gpt-realtime-2 answer (a preamble, then the answer), end to end.

Our Session against the emulator: the item the caller was hearing is truncated to what was heard
of *it*, later items are deleted, items played in full are left alone; checked in what the
emulated server's conversation holds afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets

import s2s
from s2s import EventType
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY, openai_config
from ..helpers import collect, stream, turn_end, utterance

QUESTION = "please tell me a long story about the weather today"
PREAMBLE = "Let me check that."


def _config(emulator: OpenAIEmulator) -> s2s.Config:
    return openai_config(emulator, model="gpt-realtime-2")


def _server_items(emulator: OpenAIEmulator) -> dict[str, tuple[float, str]]:
    """The emulated server's assistant items: id -> (audio ms, text)."""
    return {
        i.id: (i.audio_ms, i.text) for i in emulator.sessions[-1].items if i.role == "assistant"
    }


async def _both_items_arrive(
    session: s2s.Session, answer_ms: float = 0.0
) -> tuple[str, str, float]:
    """Wait until the second item's audio arrives (at least ``answer_ms`` of it): the preamble
    id, the answer id and when the first audio arrived."""
    received: dict[str, float] = {}

    def second_item(event: s2s.SessionEvent) -> bool:
        if event.type is EventType.AUDIO_OUTPUT and event.item_id:
            received[event.item_id] = received.get(event.item_id, 0.0) + event.duration_ms
        return len(received) == 2 and list(received.values())[1] >= answer_ms

    events = await collect(session, second_item)
    first_audio = next(e.at for e in events if e.type is EventType.AUDIO_OUTPUT)
    preamble, answer = received
    return preamble, answer, first_audio


async def _truncations_applied(session: s2s.Session) -> list[s2s.SessionEvent]:
    """Speak over the answer; the next answer proves the server took our edits before it."""
    await stream(session, utterance(0.6, 24000), 24000)
    events = await collect(session, lambda e: e.type is EventType.INTERRUPTED)
    return events + await collect(session, turn_end())


async def test_barge_in_during_the_preamble_truncates_it_and_deletes_the_answer(
    openai_emulator,
):
    async with await s2s.new("openai_realtime", _config(openai_emulator)).start() as session:
        await session.send_text(QUESTION)
        preamble, answer, _ = await _both_items_arrive(session)
        session.report_playback(preamble, 300)
        events = await _truncations_applied(session)
        interrupted = next(e for e in events if e.type is EventType.INTERRUPTED)
        assert interrupted.item_id == preamble
        history = session.snapshot().conversation
    items = _server_items(openai_emulator)
    assert items[preamble][0] == 300 and PREAMBLE.startswith(items[preamble][1])
    assert 0 < len(items[preamble][1]) < len(PREAMBLE)
    assert answer not in items
    edits = [
        json.loads(f)
        for f in openai_emulator.sessions[-1].frames_in
        if isinstance(f, str) and ('"conversation.item.truncate"' in f or '.delete"' in f)
    ]
    assert [(e["type"], e["item_id"]) for e in edits] == [
        ("conversation.item.truncate", preamble),
        ("conversation.item.delete", answer),
    ]
    # our history says what the caller heard: the cut preamble, no answer
    assert not history.has_item(answer)
    ours = next(m for m in history.messages() if m.item_id == preamble)
    assert 0 < len(ours.text) < len(PREAMBLE)


async def test_barge_in_during_the_answer_leaves_the_preamble_alone(openai_emulator):
    async with await s2s.new("openai_realtime", _config(openai_emulator)).start() as session:
        await session.send_text(QUESTION)
        preamble, answer, _ = await _both_items_arrive(session, answer_ms=400)
        session.report_playback(answer, 200)  # the preamble was played in full
        events = await _truncations_applied(session)
        assert next(e for e in events if e.type is EventType.INTERRUPTED).item_id == answer
        history = session.snapshot().conversation
    ours = {m.item_id: m.text for m in history.messages()}
    assert ours[preamble] == PREAMBLE and 0 < len(ours[answer]) < len(QUESTION)
    items = _server_items(openai_emulator)
    assert items[preamble] == (1080.0, PREAMBLE)
    assert items[answer][0] == 200 and 0 < len(items[answer][1]) < len(QUESTION)


async def test_wall_clock_interrupt_during_the_preamble(openai_emulator):
    async with await s2s.new("openai_realtime", _config(openai_emulator)).start() as session:
        await session.send_text(QUESTION)
        preamble, answer, first = await _both_items_arrive(session)
        await _sleep_until(first + 0.4)
        await session.interrupt()
        await session.send_text("ok")
        await collect(session, turn_end())
    items = _server_items(openai_emulator)
    assert 350 <= items[preamble][0] < 1080  # about the 0.4 s heard of the 1.08 s preamble
    assert answer not in items


async def test_wall_clock_interrupt_during_the_answer(openai_emulator):
    async with await s2s.new("openai_realtime", _config(openai_emulator)).start() as session:
        await session.send_text(QUESTION)
        preamble, answer, first = await _both_items_arrive(session)
        await _sleep_until(first + 1.08 + 0.4)  # the preamble, then 0.4 s of the answer
        await session.interrupt()
        await session.send_text("ok")
        await collect(session, turn_end())
    items = _server_items(openai_emulator)
    assert items[preamble] == (1080.0, PREAMBLE)
    assert 350 <= items[answer][0] <= 1500  # about 0.4 s of the answer


async def _sleep_until(when: float) -> None:
    await asyncio.sleep(max(0.0, when - time.monotonic()))


async def test_the_emulator_truncates_and_deletes_either_item(openai_emulator):
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    url = openai_emulator.url + "?model=gpt-realtime-2"
    async with websockets.connect(url, additional_headers=headers) as ws:

        async def send(message: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps(message))
            while (reply := json.loads(await ws.recv()))["type"] == "rate_limits.updated":
                pass
            return reply

        await ws.recv()  # session.created
        await ws.send(json.dumps({"type": "response.create"}))
        async with asyncio.timeout(5):
            while (event := json.loads(await ws.recv()))["type"] != "response.done":
                pass
        first, second = (item["id"] for item in event["response"]["output"])
        error = await send(
            {
                "type": "conversation.item.truncate",
                "item_id": first,
                "content_index": 0,
                "audio_end_ms": 1081,
            }
        )
        assert error["type"] == "error" and error["error"]["param"] == "audio_end_ms"
        assert "1080ms is already shorter than 1081ms" in error["error"]["message"]
        for item_id in (first, second):
            truncated = await send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 500,
                }
            )
            assert truncated["type"] == "conversation.item.truncated"
        deleted = await send({"type": "conversation.item.delete", "item_id": first})
        assert deleted == {**deleted, "type": "conversation.item.deleted", "item_id": first}
    items = _server_items(openai_emulator)
    assert list(items) == [second] and items[second][0] == 500
