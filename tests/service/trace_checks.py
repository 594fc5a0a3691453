"""Traces, turn stats and call summaries of a real call through the whole stack (collected by
``test_console.py``, which runs the browser and trace tests on one stack).

The stack runs with tracing on (every call sampled) and exports over OTLP/HTTP to a receiver
this module runs on loopback. One call has a spoken turn, then a turn whose answer needs a tool
the tool-worker process runs: the trace holds the call span, its turn spans and the tool span
the worker process recorded, under the actor's tool-call span. The call's ``turn`` envelopes,
its summary (in the session record and on the tenant's calls channel) and the scrape-time
gauges on ``/metrics`` are checked on the same call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from s2s.service import keys
from s2s.service.state import SessionStore

from ..conftest import SECOND
from ..helpers import utterance
from .otlp_receiver import OtlpReceiver, ReceivedSpan
from .stack import ADMIN_KEY, Call, http_client, open_call, tool_result, turn_completed

__all__ = [
    "observability",
    "otlp",
    "test_a_call_is_one_trace_with_turns_a_worker_span_and_a_published_summary",
]

RATE = 16000


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def observability(otlp: OtlpReceiver) -> dict[str, Any]:
    """The stack's ``observability`` section: every call traced, exported to ``otlp``."""
    return {"tracing": {"enabled": True, "sample_ratio": 1.0, "otlp_endpoint": otlp.url}}


async def speak(call: Call, pcm: bytes) -> None:
    step = RATE // 50 * 2  # 20 ms frames
    for start in range(0, len(pcm), step):
        await call.ws.send(pcm[start : start + step])


async def summaries_until_ended(
    redis: Redis, subscribed: asyncio.Event, call: list[str], into: list[dict]
) -> None:
    """The call summaries the default tenant's channel carries (subscribed before the call is
    created), until the last one of the call named in ``call``."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keys.tenant_calls("default"))
        subscribed.set()
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            summary = json.loads(message["data"])
            into.append(summary)
            if summary["ended"] and summary["session_id"] in call:
                return


def one_trace(session_id: str) -> Any:
    """The call's spans once the call, two turns, the tool call and the worker's run are in."""

    def found(spans: list[ReceivedSpan]) -> dict[str, Any] | None:
        calls = [s for s in spans if s.attributes.get("s2s.session_id") == session_id]
        if not calls:
            return None
        trace = [s for s in spans if s.trace_id == calls[0].trace_id]
        named = {
            name: [s for s in trace if s.name == name]
            for name in ("s2s.call", "s2s.turn", "s2s.tool_call", "s2s.tool.run")
        }
        if len(named["s2s.turn"]) < 2 or not all(named.values()):
            return None
        return named

    return found


async def test_a_call_is_one_trace_with_turns_a_worker_span_and_a_published_summary(
    base, ws_base, stack, otlp
):
    async with Redis.from_url(stack.info.redis_url) as redis:
        await check_one_call(base, ws_base, stack, otlp, redis)


async def check_one_call(base: str, ws_base: str, stack: Any, otlp: OtlpReceiver, redis: Redis):
    summaries: list[dict] = []
    target: list[str] = []
    subscribed = asyncio.Event()
    listener = asyncio.create_task(summaries_until_ended(redis, subscribed, target, summaries))
    await asyncio.wait_for(subscribed.wait(), 10 * SECOND)
    async with http_client(base) as http:
        reply = await http.post(
            "/v1/sessions", json={"sample_rate": RATE, "tools": ["lookup_order"]}
        )
        assert reply.status_code == 201, reply.text
        session_id = reply.json()["session_id"]
        target.append(session_id)
        call = await open_call(ws_base, session_id)
        await speak(call, utterance(1.0, RATE))  # a spoken turn
        await call.until(turn_completed)
        await call.ws.send(
            json.dumps({"type": "text", "text": 'call lookup_order {"order_id": "A-7"}'})
        )
        result = await call.until(tool_result)
        await call.until(turn_completed)
        assert (await http.delete(f"/v1/sessions/{session_id}")).status_code == 200
        await call.until(lambda e: e["type"] == "session_closed")
        await call.ws.close()
        await asyncio.wait_for(listener, 15 * SECOND)

    # the turn envelopes: the spoken turn, then the one that needed the tool
    turns = [e for e in call.events if e["type"] == "turn"]
    assert [t["turn"] for t in turns] == [1, 2]
    assert all(t["response_latency_ms"] > 0 and not t["interrupted"] for t in turns)
    assert all(t["first_audio_at"] > t["opened_at"] for t in turns)
    assert turns[0]["tools"] == [] and turns[1]["reason"] == "completed"
    (tool,) = turns[1]["tools"]
    assert tool["name"] == "lookup_order" and tool["call_id"] == result["call_id"]
    assert tool["worker"] == result["worker"] and tool["is_error"] is False
    # the call summary: in the session record, and on the tenant's channel as it changed
    meta = await SessionStore(redis, ttl_s=60).meta(session_id)
    assert meta is not None
    summary = meta["call"]
    assert summary["ended"] and summary["state"] == "ended" and summary["turns"] == 2
    assert summary["tenant"] == "default" and summary["provider"] == "openai_realtime"
    assert summary["first_audio_ms"] > 0 and summary["last_response_latency_ms"] > 0
    assert summary["errors"] == 0 and summary["last_error"] is None
    published = [s for s in summaries if s["session_id"] == session_id]
    assert published[-1] == summary  # the last one published is the one recorded
    assert len(published) >= 3 and not any(s["ended"] for s in published[:-1])
    assert [s["turns"] for s in published] == sorted(s["turns"] for s in published)
    paced = published[:-1]  # the last, "ended", goes out at once
    assert all(b["updated_at"] - a["updated_at"] >= 0.2 for a, b in itertools.pairwise(paced))
    assert meta["trace"].startswith("00-")

    # one trace: call -> turns, turn -> tool call -> the worker process's run
    spans = await asyncio.to_thread(otlp.wait_for, one_trace(session_id), 20 * SECOND)
    (call_span,) = spans["s2s.call"]
    assert call_span.parent_span_id == "" and call_span.attributes["s2s.tenant"] == "default"
    assert call_span.attributes["s2s.resumed"] is False
    assert call_span.attributes["s2s.provider"] == "openai_realtime"
    assert meta["trace"].split("-")[1:3] == [call_span.trace_id, call_span.span_id]
    turn_spans = {s.attributes["s2s.turn"]: s for s in spans["s2s.turn"]}
    assert sorted(turn_spans) == [1, 2]
    assert all(s.parent_span_id == call_span.span_id for s in turn_spans.values())
    assert turn_spans[2].attributes["s2s.response_latency_ms"] == turns[1]["response_latency_ms"]
    (tool_span,) = spans["s2s.tool_call"]
    assert tool_span.parent_span_id == turn_spans[2].span_id
    assert tool_span.attributes["s2s.tool"] == "lookup_order"
    (run,) = spans["s2s.tool.run"]
    assert run.parent_span_id == tool_span.span_id
    assert run.attributes["s2s.call_id"] == result["call_id"]
    assert run.resource["s2s.role"] == "tool-worker"
    assert run.resource["process.pid"] in stack.worker_pids().values()
    assert run.resource["process.pid"] != call_span.resource["process.pid"]

    # the contact-centre metrics and the scrape-time gauges
    async with httpx.AsyncClient(base_url=base, timeout=30 * SECOND) as http:
        scrape = await http.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert scrape.status_code == 200
    text = scrape.text
    # (other calls on the same stack count too: this call's two turns are at least in)
    counted = re.search(
        r's2s_response_latency_seconds_count\{provider="openai_realtime"\} (\S+)', text
    )
    assert counted is not None and float(counted.group(1)) >= 2
    assert 's2s_first_audio_seconds_count{provider="openai_realtime"}' in text
    assert "s2s_node_free_session_slots{node=" in text
    assert "s2s_redis_up 1.0" in text
