"""The distributed service on a real local Ray, a real redis-server and the OpenAI emulator.

One stack serves the whole module (starting Ray and Serve takes ~10 s): an ingress replica,
session actors, two tool-worker processes per pool (``default`` and ``slow``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import websockets
from redis.asyncio import Redis
from starlette.requests import Request
from websockets.exceptions import ConnectionClosed, InvalidStatus

from actors.handles import lookup
from actors.session_actor import ray_actor_name
from deployments.ingress import Ingress
from deployments.stack import LocalStack
from s2s.service.config import ServiceConfig
from s2s.service.subscribe import SubscriptionHub

from ..conftest import SECOND
from ..helpers import utterance
from .stack import (
    ADMIN_KEY,
    API_KEY,
    METRICS_KEY,
    Call,
    EmulatorThread,
    http_client,
    open_call,
    tool_result,
    turn_completed,
)

pytestmark = pytest.mark.slow
#: Two workers per pool: the worker tests kill one while the other keeps serving.
TOOL_WORKERS = 2


async def create(http: httpx.AsyncClient, **body: object) -> dict:
    reply = await http.post("/v1/sessions", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def stream_audio(call: Call, pcm: bytes, rate: int) -> None:
    step = rate // 50 * 2
    for start in range(0, len(pcm), step):
        await call.ws.send(pcm[start : start + step])


async def test_a_rest_session_streams_audio_and_gets_audio_back(base, ws_base):
    async with http_client(base) as http:
        session = await create(http, sample_rate=16000, metadata={"caller": "+44 20 7946 0000"})
        assert session["stream_url"].startswith("ws://") and session["sample_rate"] == 16000
        call = await open_call(ws_base, session["session_id"])
        await stream_audio(call, utterance(1.2, 16000), 16000)
        await call.until(turn_completed)
        await call.ws.close()
        assert call.kinds()[0] == "session_started"
        assert "speech_started" in call.kinds() and "audio_output" in call.kinds()
        transcripts = [
            e["text"] for e in call.events if e["type"] == "transcript" and e.get("final")
        ]
        assert transcripts[0].startswith("[") and transcripts[-1].startswith("I heard")
        assert len(call.audio) / 2 / 16000 > 1.0  # a second of 16 kHz reply audio
        assert call.seqs == sorted(call.seqs) and len(set(call.seqs)) == len(call.seqs)
        listed = (await http.get("/v1/sessions")).json()["sessions"]
        assert session["session_id"] in [s["session_id"] for s in listed]
        detail = (await http.get(f"/v1/sessions/{session['session_id']}")).json()
        assert detail["metadata"] == {"caller": "+44 20 7946 0000"}
        assert detail["live"]["audio_in_s"] > 1.0 and detail["live"]["status"] == "live"
        await http.delete(f"/v1/sessions/{session['session_id']}")


async def test_sse_and_pub_sub_subscribers_see_the_same_events_in_order(base, stack):
    async with http_client(base) as http:
        session = await create(http)
        sid = session["session_id"]
        redis = Redis.from_url(stack.info.redis_url)
        hub = SubscriptionHub(redis)
        pubsub_seen: list[tuple[int, str]] = []
        sse_seen: list[tuple[int, str]] = []

        async def via_pubsub() -> None:
            async with hub.subscribe(sid, 0) as envelopes:
                async for envelope in envelopes:
                    pubsub_seen.append((envelope.seq, envelope.type))
                    if envelope.type == "session_closed":
                        return

        async def via_sse() -> None:
            async with http.stream("GET", f"/v1/sessions/{sid}/events") as reply:
                assert reply.status_code == 200
                seq, kind = None, None
                async for line in reply.aiter_lines():
                    if line.startswith("id: "):
                        seq = int(line[4:])
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line == "" and seq is not None:
                        sse_seen.append((seq, kind))
                        if kind == "session_closed":
                            return
                        seq = None

        listeners = [asyncio.create_task(via_pubsub()), asyncio.create_task(via_sse())]
        await asyncio.sleep(0.5)
        await http.post(f"/v1/sessions/{sid}/text", json={"text": "hello supervisors"})
        await asyncio.sleep(1.5)
        await http.delete(f"/v1/sessions/{sid}")
        await asyncio.wait_for(asyncio.gather(*listeners), 20 * SECOND)
        await hub.close()
        await redis.aclose()
    assert pubsub_seen == sse_seen
    assert [s for s, _ in sse_seen] == list(range(1, len(sse_seen) + 1))
    kinds = [k for _, k in sse_seen]
    assert kinds[0] == "session_started" and kinds[-1] == "session_closed"
    assert "transcript" in kinds and "audio_output" in kinds


async def test_a_tool_call_runs_in_a_separate_worker_process(base, ws_base, stack, emulator):
    worker_pids = set(stack.worker_pids().values())
    async with http_client(base) as http:
        session = await create(http, tools=["slow_echo"])
        call = await open_call(ws_base, session["session_id"])
        await call.ws.send(
            json.dumps(
                {"type": "text", "text": 'call slow_echo {"text": "hi there", "seconds": 0.1}'}
            )
        )
        result = await call.until(tool_result)
        answer = await call.until(turn_completed)
        await call.ws.close()
        await http.delete(f"/v1/sessions/{session['session_id']}")
    content = json.loads(result["content"])
    assert content["echo"] == "hi there" and content["pid"] in worker_pids
    assert content["pid"] != os.getpid() and result["source"] == "worker"
    transcripts = [e["text"] for e in call.events if e["type"] == "transcript" and e.get("final")]
    assert transcripts[-1].startswith("The slow_echo tool returned")
    assert answer["type"] == "turn_end"


def _outputs_sent_for(emulator: EmulatorThread, call_id: str) -> int:
    return sum(
        1
        for f in emulator.frames_in()
        if f["type"] == "conversation.item.create"
        and f["item"].get("type") == "function_call_output"
        and f["item"].get("call_id") == call_id
    )


async def _wait_for_marker(marker: Path, count: int) -> list[int]:
    async with asyncio.timeout(15 * SECOND):
        while True:
            pids = [int(p) for p in marker.read_text().split()] if marker.exists() else []
            if len(pids) >= count:
                return pids
            await asyncio.sleep(0.05)


async def _start_slow_call(
    http: httpx.AsyncClient, ws_base: str, text: str, marker: Path
) -> tuple[dict, Call]:
    """A session whose model calls slow_echo (1.5 s) on a worker that records its pid."""
    session = await create(http, tools=["slow_echo"])
    call = await open_call(ws_base, session["session_id"])
    args = {"text": text, "seconds": 1.5, "marker": str(marker)}
    await call.ws.send(json.dumps({"type": "text", "text": f"call slow_echo {json.dumps(args)}"}))
    return session, call


async def test_a_worker_killed_mid_call_is_replaced_and_the_result_lands_once(
    base, ws_base, stack, emulator, tmp_path
):
    marker = tmp_path / "started"
    async with http_client(base) as http:
        session, call = await _start_slow_call(http, ws_base, "survivor", marker)
        (first,) = await _wait_for_marker(marker, 1)
        os.kill(first, signal.SIGKILL)  # dies mid-call, without acknowledging it
        result = await call.until(tool_result, timeout=30)
        await call.until(turn_completed)
        await asyncio.sleep(1.0)
        await call.ws.close()
        await http.delete(f"/v1/sessions/{session['session_id']}")
    pids = [int(p) for p in marker.read_text().split()]
    assert pids[0] == first and len(pids) == 2 and pids[1] != first  # run again elsewhere
    assert json.loads(result["content"])["pid"] == pids[1] and result["attempt"] == 2
    assert [e["type"] for e in call.events].count("tool_result") == 1
    call_id = result["call_id"]
    assert _outputs_sent_for(emulator, call_id) == 1  # the model got the result once
    async with asyncio.timeout(10 * SECOND):  # the supervisor replaced the dead worker
        while first in stack.worker_pids().values():
            await asyncio.sleep(0.1)
    assert len(stack.worker_pids()) == 4


async def test_a_duplicate_result_from_a_revived_worker_is_dropped(
    base, ws_base, emulator, tmp_path
):
    marker = tmp_path / "started"
    async with http_client(base) as http:
        session, call = await _start_slow_call(http, ws_base, "twice", marker)
        (paused,) = await _wait_for_marker(marker, 1)
        os.kill(paused, signal.SIGSTOP)  # stalls: another worker reclaims and finishes
        try:
            result = await call.until(tool_result, timeout=30)
        finally:
            os.kill(paused, signal.SIGCONT)  # wakes up, finishes, posts a second result
        await call.until(turn_completed)
        await asyncio.sleep(2.5)
        detail = (await http.get(f"/v1/sessions/{session['session_id']}")).json()
        await call.ws.close()
        await http.delete(f"/v1/sessions/{session['session_id']}")
    assert len(await _wait_for_marker(marker, 2)) == 2  # the tool really ran twice
    assert [e["type"] for e in call.events].count("tool_result") == 1
    assert _outputs_sent_for(emulator, result["call_id"]) == 1
    assert detail["live"]["pending_tool_calls"] == []


async def test_a_slow_tool_gets_an_error_result_instead_of_hanging_the_call(base, ws_base):
    async with http_client(base) as http:
        session = await create(http, tools=["wait"])
        call = await open_call(ws_base, session["session_id"])
        await call.ws.send(json.dumps({"type": "text", "text": 'call wait {"seconds": 8}'}))
        started = time.monotonic()
        result = await call.until(tool_result)
        waited = time.monotonic() - started
        await call.until(turn_completed)
        await call.ws.close()
        await http.delete(f"/v1/sessions/{session['session_id']}")
    # the session's timer and the worker's own deadline both fire at 3 s; one result is applied
    assert result["is_error"] and result["source"] in ("timeout", "worker")
    assert "within 3 s" in result["content"]
    assert [e["type"] for e in call.events].count("tool_result") == 1
    assert 2.5 < waited < 8


async def test_a_client_that_reconnects_with_its_last_sequence_number_misses_nothing(base, ws_base):
    async with http_client(base) as http:
        session = await create(http, sample_rate=24000)
        sid = session["session_id"]
        first = await open_call(ws_base, sid)
        await stream_audio(first, utterance(1.0, 24000), 24000)
        await first.until(lambda e: e["type"] == "audio_output")  # mid-answer
        last = first.seqs[-1]
        await first.ws.close()  # the client's network drops
        await asyncio.sleep(1.0)  # the answer keeps going meanwhile
        second = await open_call(ws_base, sid, last_seq=last)
        await second.until(turn_completed)
        await second.ws.close()
        reference = await open_call(ws_base, sid, last_seq=0)  # everything, from the log
        await reference.until(turn_completed)
        await reference.ws.close()
        await http.delete(f"/v1/sessions/{sid}")
    combined = first.seqs + second.seqs
    assert combined == reference.seqs  # no gap, no duplicate, same order
    assert bytes(first.audio + second.audio) == bytes(reference.audio)


async def test_closing_frees_the_actor(base, stack):
    async with http_client(base) as http:
        session = await create(http)
        sid = session["session_id"]
        namespace = stack.config.sessions.namespace
        assert ray.get_actor(ray_actor_name(sid), namespace=namespace)
        closed = (await http.delete(f"/v1/sessions/{sid}")).json()
        assert closed == {"session_id": sid, "status": "closed", "reason": "closed_by_client"}
        async with asyncio.timeout(10 * SECOND):
            while True:
                try:
                    ray.get_actor(ray_actor_name(sid), namespace=namespace)
                except ValueError:
                    break  # the name is free
                await asyncio.sleep(0.1)
        listed = (await http.get("/v1/sessions")).json()["sessions"]
        assert sid not in [s["session_id"] for s in listed]
        gone = await http.post(f"/v1/sessions/{sid}/text", json={"text": "hello?"})
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "closed"


async def test_a_replacement_actor_continues_the_call_from_saved_state(base, ws_base, stack):
    async with http_client(base) as http:
        session = await create(http)
        sid = session["session_id"]
        call = await open_call(ws_base, sid)
        await call.ws.send(json.dumps({"type": "text", "text": "my reference is QX-42"}))
        await call.until(turn_completed)
        await asyncio.sleep(1.0)  # the state snapshot is taken
        namespace = stack.config.sessions.namespace
        ray.kill(ray.get_actor(ray_actor_name(sid), namespace=namespace), no_restart=True)
        await asyncio.sleep(0.5)
        await call.ws.close()
        again = await open_call(ws_base, sid, last_seq=call.seqs[-1])
        await again.ws.send(json.dumps({"type": "text", "text": "recall"}))
        await again.until(turn_completed)
        await again.ws.close()
        await http.delete(f"/v1/sessions/{sid}")
    started = [e for e in again.events if e["type"] == "session_started"]
    assert started and started[0]["resumed"] is True
    transcripts = [e["text"] for e in again.events if e["type"] == "transcript" and e.get("final")]
    assert transcripts[-1] == 'Earlier you said: "my reference is QX-42".'


def _ingress_of_the_next_cluster(stack: LocalStack) -> tuple[Any, ServiceConfig]:
    """An ingress sharing the stack's Redis whose Ray cannot see the stack's session actors, as
    on the new cluster of a rollout (here: another actor namespace)."""
    config = stack.config.with_overrides(
        sessions={**stack.config.sessions.model_dump(), "namespace": "s2s-next-cluster"}
    )
    plain = next(  # the class under Serve's ASGI wrapper (whose __init__ is async)
        c
        for c in inspect.getmro(Ingress.func_or_class)
        if c.__module__ == Ingress.func_or_class.__module__
        and not inspect.iscoroutinefunction(c.__init__)
    )
    return plain(config.model_dump()), config


async def test_during_a_rollout_the_next_clusters_ingress_reaches_the_running_actor(
    base, ws_base, stack, emulator
):
    async with http_client(base) as http:
        sid = (await create(http))["session_id"]
        call = await open_call(ws_base, sid)
        await call.until(lambda e: e["type"] == "session_started")
        ingress, next_cluster = _ingress_of_the_next_cluster(stack)
        try:
            meta = await ingress.store.meta(sid)
            await ingress.router.send(sid, meta, "text", "my reference is RX-7")
            await call.until(turn_completed)
            assert lookup(sid, next_cluster) is None, "a second actor was started for the call"
            request = Request(
                {
                    "type": "http",
                    "method": "DELETE",
                    "path": f"/v1/sessions/{sid}",
                    "headers": [(b"authorization", f"Bearer {API_KEY}".encode())],
                    "query_string": b"",
                }
            )
            response = await ingress.delete_session(sid, request)
            closed = await call.until(lambda e: e["type"] == "session_closed")
        finally:
            await ingress.aclose()
            await call.ws.close()
    assert json.loads(response.body)["status"] == "closing"
    assert closed["reason"] == "closed_by_client"
    texts = [
        part.get("text")
        for frame in emulator.frames_in()
        if frame.get("type") == "conversation.item.create"
        for part in frame["item"].get("content", [])
    ]
    assert "my reference is RX-7" in texts
    assert [e["type"] for e in call.events].count("session_started") == 1
    async with asyncio.timeout(10 * SECOND):
        while lookup(sid, stack.config) is not None:
            await asyncio.sleep(0.1)


async def test_bad_input_gets_clear_errors(base, ws_base):
    async with httpx.AsyncClient(base_url=base, timeout=30) as anonymous:
        assert (await anonymous.get("/v1/sessions")).status_code == 401
        wrong = await anonymous.get("/v1/sessions", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert (await anonymous.get("/healthz")).status_code == 200
    with pytest.raises((InvalidStatus, ConnectionClosed)) as denied:
        async with websockets.connect(f"{ws_base}/v1/sessions/x/stream") as ws:
            await ws.recv()
    if isinstance(denied.value, InvalidStatus):
        assert denied.value.response.status_code == 401
    else:
        assert denied.value.rcvd.code == 4401
    async with http_client(base) as http:
        assert (await http.get("/v1/sessions/nope-0000")).status_code == 404
        malformed = await http.get("/v1/sessions/nope")
        assert malformed.status_code == 400 and "8-64 letters" in malformed.text
        missing = await http.post("/v1/sessions/nope-0000/text", json={"text": "hi"})
        assert (
            missing.status_code == 404
            and "no session 'nope-0000'" in missing.json()["error"]["message"]
        )
        for body, message in (
            ({"provider": "acme"}, "provider 'acme' is not offered here"),
            ({"tools": ["launch_rocket"]}, "unknown tool(s) launch_rocket"),
            ({"sample_rate": 96000}, "sample_rate"),
            ({"extra": {"base_url": "ws://evil"}}, "may not set base_url"),
            ({"volume": 11}, "volume: Extra inputs are not permitted"),
        ):
            reply = await http.post("/v1/sessions", json=body)
            assert reply.status_code == 400 and message in reply.json()["error"]["message"], (
                reply.text
            )
        session = await create(http)
        sid = session["session_id"]
        odd = await http.post(f"/v1/sessions/{sid}/audio", content=b"\x00\x01\x02")
        assert odd.status_code == 400 and "odd number of bytes" in odd.json()["error"]["message"]
        call = await open_call(ws_base, sid)
        await call.ws.send("{not json")
        await call.ws.send(json.dumps({"type": "playback", "item_id": "x"}))
        await call.ws.send(json.dumps({"type": "dance"}))
        await call.ws.send(json.dumps({"type": "tool_result", "call_id": "nope", "content": "1"}))
        await call.ws.send(json.dumps({"type": "text", "text": "still here?"}))
        await call.until(turn_completed)  # the connection stayed up and works
        assert len(call.errors) == 3 and all(e["type"] == "error" for e in call.errors)
        assert "played_ms" in call.errors[1]["error"]["message"]
        session_errors = [e for e in call.events if e["type"] == "error"]
        assert "no pending client tool call" in session_errors[0]["error"]["message"]
        await call.ws.send(bytes(40000))  # over the 32000-byte limit
        with pytest.raises(ConnectionClosed) as closed:
            await call.until(lambda e: False)
        assert closed.value.rcvd.code == 1009 and "32000-byte limit" in closed.value.rcvd.reason
        await http.delete(f"/v1/sessions/{sid}")

    async def attach_to_unknown_session() -> None:
        call = await open_call(ws_base, "0000000000unknown")
        await call.ws.recv()

    with pytest.raises((InvalidStatus, ConnectionClosed)):
        await attach_to_unknown_session()


async def test_http_alternatives_push_audio_text_and_interrupt(base):
    async with http_client(base) as http:
        session = await create(http, sample_rate=16000)
        sid = session["session_id"]
        pushed = await http.post(f"/v1/sessions/{sid}/audio", content=utterance(1.0, 16000))
        assert pushed.status_code == 202
        assert (await http.post(f"/v1/sessions/{sid}/interrupt")).status_code == 202
        assert (
            await http.post(f"/v1/sessions/{sid}/playback", json={"item_id": "i", "played_ms": 5})
        ).status_code == 202
        text = await http.post(f"/v1/sessions/{sid}/text", json={"text": "typed"})
        assert text.status_code == 202
        await asyncio.sleep(2.0)
        kinds = []
        async with http.stream("GET", f"/v1/sessions/{sid}/events?audio=false") as reply:
            async for line in reply.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    kinds.append(event["type"])
                    assert "audio" not in event
                    if event["type"] == "transcript" and event.get("text") == 'You said: "typed".':
                        break
        await http.delete(f"/v1/sessions/{sid}")
    assert "speech_started" in kinds and "transcript" in kinds


async def test_twenty_sessions_at_once_all_complete(base, ws_base):
    async def one(index: int, http: httpx.AsyncClient) -> float:
        session = await create(http, sample_rate=16000)
        call = await open_call(ws_base, session["session_id"])
        await stream_audio(call, utterance(0.8, 16000, seed=index), 16000)
        await call.until(turn_completed, timeout=60)
        await call.ws.close()
        await http.delete(f"/v1/sessions/{session['session_id']}")
        return len(call.audio) / 2 / 16000

    async with http_client(base) as http:
        started = time.monotonic()
        replies = await asyncio.gather(*(one(i, http) for i in range(20)))
        elapsed = time.monotonic() - started
    assert len(replies) == 20 and all(seconds > 0.5 for seconds in replies)
    print(f"20 concurrent sessions completed in {elapsed:.1f} s")


async def test_health_and_metrics(base, ws_base):
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/metrics")).status_code == 401
        tenant = await http.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
        assert tenant.status_code == 403
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        text = (await http.get("/metrics", headers=admin)).text
        reader = {"Authorization": f"Bearer {METRICS_KEY}"}
        scraped = (await http.get("/metrics", headers=reader)).text
        types = [line for line in text.splitlines() if line.startswith("# TYPE")]
        assert types and types == [
            line for line in scraped.splitlines() if line.startswith("# TYPE")
        ]
        # a metrics key reads /metrics and nothing else: no call is listed, heard or steered
        refused = await asyncio.gather(
            http.get("/v1/sessions", headers=reader),
            http.post("/v1/sessions", headers=reader, json={}),
            http.get("/v1/sessions/any-id", headers=reader),
            http.post("/v1/sessions/any-id/text", headers=reader, json={"text": "hi"}),
            http.get("/v1/sessions/any-id/events", headers=reader),
            http.get("/v1/calls/feed", headers=reader),
            http.get("/openapi.json", headers=reader),
        )
        for reply in refused:
            assert reply.status_code == 403, (reply.request.url, reply.text)
            assert "/metrics only" in reply.json()["error"]["message"], reply.text
    with pytest.raises(InvalidStatus) as denied:
        await open_call(ws_base, "any-id", key=METRICS_KEY)
    assert denied.value.response.status_code == 403
    for name in (
        "s2s_live_sessions",
        "s2s_sessions_started_total",
        "s2s_audio_in_seconds_total",
        "s2s_audio_out_seconds_total",
        "s2s_added_latency_seconds_bucket",
        "s2s_tool_latency_seconds_bucket",
    ):
        assert name in text, name


async def test_an_idle_call_is_closed_and_its_actor_freed(stack):
    from actors import SessionSpec, get_or_create

    config = stack.config.with_overrides(
        sessions={**stack.config.sessions.model_dump(), "idle_timeout_s": 1.0}
    )
    spec = SessionSpec(
        session_id="idle-session-0001",
        provider="openai_realtime",
        config={
            "voice": None,
            "model": None,
            "instructions": None,
            "tools": [],
            "sample_rate": 24000,
            "extra": {},
        },
        tenant="default",
    )
    handle = get_or_create(spec, config)
    await handle.start.remote()
    redis = Redis.from_url(stack.info.redis_url)
    hub = SubscriptionHub(redis)
    async with hub.subscribe(spec.session_id) as envelopes:
        async with asyncio.timeout(15 * SECOND):
            async for envelope in envelopes:
                if envelope.type == "session_closed":
                    assert envelope.data["reason"] == "idle_timeout"
                    break
    await hub.close()
    await redis.aclose()
    async with asyncio.timeout(10 * SECOND):  # the actor frees its name right after closing
        while lookup(spec.session_id, config) is not None:
            await asyncio.sleep(0.1)
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor(ray_actor_name(spec.session_id), namespace=config.sessions.namespace)


def test_the_session_actor_uses_the_session_slot_resource(stack):
    resources = ray.cluster_resources()
    assert resources.get(stack.config.sessions.resource) == stack.config.sessions.slots_per_node
    assert API_KEY in stack.config.auth.api_keys
