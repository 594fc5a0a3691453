"""Tenants on the real stack: isolation on every session route, quotas, capacity, no leaks.

Real Ray, real redis-server, the OpenAI emulator; three tenants and an admin (see
``tests/service/stack.py``). The module's cluster offers ``SESSION_SLOTS`` session slots, so
the burst test can exhaust them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed, InvalidStatus

from deployments.stack import LocalStack
from s2s.service import keys

from ..conftest import SECOND
from ..helpers import utterance
from ..strategies import control_like, json_values, session_like
from .stack import (
    ACME_KEY,
    ADMIN_KEY,
    API_KEY,
    GLOBEX_KEY,
    GLOBEX_MAX_LIVE,
    GLOBEX_PER_MINUTE,
    INITECH_KEY,
    ROOT,
    Call,
    http_client,
    open_call,
    turn_completed,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SESSION_SLOTS = 12


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await http.post("/v1/sessions", json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def session_actors(stack: LocalStack, state: str = "ALIVE") -> list[dict[str, Any]]:
    """Session actors in ``state``, from the GCS actor table (the stack runs no dashboard, so
    ``ray.util.state`` has no server to ask)."""
    from ray._private import state as ray_state

    return [
        actor
        for actor in ray_state.actors().values()  # type: ignore[no-untyped-call]
        if actor["ActorClassName"] == "SessionActor" and actor["State"] == state
    ]


async def wait_for_no_actors(stack: LocalStack, alive_before: int) -> int:
    async with asyncio.timeout(30 * SECOND):
        while True:
            alive = len(session_actors(stack))
            if alive <= alive_before:
                return alive
            await asyncio.sleep(0.25)


async def test_every_session_route_is_isolated_between_tenants(base, ws_base, emulator):
    acme_http, globex_http = http_client(base, ACME_KEY), http_client(base, GLOBEX_KEY)
    admin_http = http_client(base, ADMIN_KEY)
    async with acme_http, globex_http, admin_http:
        acme = await create(acme_http, metadata={"caller": "+44 20 7946 0001"})
        globex = await create(globex_http, metadata={"caller": "+1 555 0100"})
        pairs = [(globex_http, acme["session_id"]), (acme_http, globex["session_id"])]
        for intruder, sid in pairs:
            base_path = f"/v1/sessions/{sid}"
            attempts = [
                intruder.get(base_path),
                intruder.post(base_path + "/text", json={"text": "INJECTED by another tenant"}),
                intruder.post(base_path + "/audio", content=bytes(640)),
                intruder.post(base_path + "/interrupt"),
                intruder.post(base_path + "/playback", json={"item_id": "x", "played_ms": 1}),
                intruder.post(base_path + "/tool_results", json={"call_id": "c", "content": "1"}),
                intruder.get(base_path + "/events"),
                intruder.delete(base_path),
            ]
            for reply in await asyncio.gather(*attempts):
                assert reply.status_code == 404, (reply.request.url, reply.text)
                assert reply.json()["error"]["message"] == f"no session {sid!r}"
            key = ACME_KEY if intruder is acme_http else GLOBEX_KEY
            with pytest.raises(InvalidStatus) as denied:
                await open_call(ws_base, sid, key=key)
            assert denied.value.response.status_code == 404
            taken = await intruder.post("/v1/sessions", json={"session_id": sid})
            assert taken.status_code == 409 and "is taken" in taken.json()["error"]["message"]
        listed = {
            name: {s["session_id"] for s in (await client.get("/v1/sessions")).json()["sessions"]}
            for name, client in (
                ("acme", acme_http),
                ("globex", globex_http),
                ("admin", admin_http),
            )
        }
        assert acme["session_id"] in listed["acme"] and globex["session_id"] not in listed["acme"]
        assert (
            globex["session_id"] in listed["globex"] and acme["session_id"] not in listed["globex"]
        )
        assert {acme["session_id"], globex["session_id"]} <= listed["admin"]
        seen = (await admin_http.get(f"/v1/sessions/{acme['session_id']}")).json()
        assert seen["tenant"] == "acme" and seen["metadata"] == {"caller": "+44 20 7946 0001"}
        assert "spec" not in seen and "redis" not in json.dumps(seen)
        forbidden = await admin_http.post("/v1/sessions", json={})
        assert forbidden.status_code == 403
        # The owner's call still works, and nothing the intruder sent reached it.
        call = await open_call(ws_base, acme["session_id"], key=ACME_KEY)
        await call.ws.send(json.dumps({"type": "text", "text": "hello from the owner"}))
        await call.until(turn_completed)
        await call.ws.close()
        texts = json.dumps(emulator.frames_in())
        assert "hello from the owner" in texts and "INJECTED" not in texts
        assert (await acme_http.delete(f"/v1/sessions/{acme['session_id']}")).status_code == 200
        assert (await globex_http.delete(f"/v1/sessions/{globex['session_id']}")).status_code == 200


async def test_a_session_id_is_never_revived_or_reattached(base):
    async with http_client(base, ACME_KEY) as acme:
        first = await create(acme, session_id="acme-call-000001", tools=["lookup_order"])
        again = await acme.post(
            "/v1/sessions", json={"session_id": "acme-call-000001", "instructions": "other"}
        )
        assert again.status_code == 200 and again.json()["existing"] is True
        assert again.json()["tools"] == first["tools"] == ["lookup_order"]
        await acme.delete("/v1/sessions/acme-call-000001")
        revived = await acme.post("/v1/sessions", json={"session_id": "acme-call-000001"})
        assert revived.status_code == 410 and "has ended" in revived.json()["error"]["message"]
        other_tools = await acme.post("/v1/sessions", json={"tools": ["transfer_to_agent"]})
        assert other_tools.status_code == 400 and "unknown tool" in other_tools.text


async def test_quotas_refuse_with_429_and_retry_after(base):
    async with http_client(base, GLOBEX_KEY) as globex:
        used = 1  # the isolation test created one globex session in this minute
        replies = await asyncio.gather(*(globex.post("/v1/sessions", json={}) for _ in range(5)))
        used += GLOBEX_MAX_LIVE
        created = [r.json()["session_id"] for r in replies if r.status_code == 201]
        refused = [r for r in replies if r.status_code != 201]
        assert len(created) == GLOBEX_MAX_LIVE, [r.text for r in replies]
        for reply in refused:
            assert reply.status_code == 429 and reply.json()["error"]["code"] == "too_many_sessions"
            assert "limit of 2 live sessions" in reply.json()["error"]["message"]
            assert int(reply.headers["Retry-After"]) >= 1
        for sid in created:
            await globex.delete(f"/v1/sessions/{sid}")
        while used < GLOBEX_PER_MINUTE:
            sid = (await create(globex))["session_id"]
            await globex.delete(f"/v1/sessions/{sid}")
            used += 1
        limited = await globex.post("/v1/sessions", json={})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert "6 session creations per minute" in limited.json()["error"]["message"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        nova = await globex.post("/v1/sessions", json={"provider": "nova"})
        assert nova.status_code in (400, 403)
    async with http_client(base, ACME_KEY) as acme:  # another tenant is not affected
        sid = (await create(acme))["session_id"]
        await acme.delete(f"/v1/sessions/{sid}")


async def test_refused_creates_leak_no_actor_and_no_record(base, stack):
    alive_before = len(session_actors(stack))
    bad_bodies: list[dict[str, Any]] = [
        {"extra": {"volume": 11}},
        {"extra": {"rotate_after_s": 5}},
        {"extra": {"base_url": "ws://127.0.0.1:1"}},
        {"extra": {"vad_threshold": 7}},
        {"voice": "v" * 5000},
        {"voice": "marin?x=1"},
        {"model": "gpt-realtime&evil=1"},
        {"provider": "acme"},
        {"instructions": "x" * 40_000},
        {"metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
    ]
    statuses: list[int] = []
    async with http_client(base) as http, http_client(base, INITECH_KEY) as initech:
        for _ in range(4):
            for body in bad_bodies:
                statuses.append((await http.post("/v1/sessions", json=body)).status_code)
        for _ in range(4):  # valid at the edge; the provider refuses initech's own key
            reply = await initech.post("/v1/sessions", json={})
            assert reply.status_code == 502, reply.text
            assert reply.json()["error"]["code"] == "provider_auth"
            assert "sk-initech" not in reply.text
            statuses.append(reply.status_code)
    assert len(statuses) == 44 and set(statuses) <= {400, 403, 502}
    alive_after = await wait_for_no_actors(stack, alive_before)
    assert alive_after <= alive_before  # no extra actor (an earlier call may still end)
    assert session_actors(stack, "PENDING_CREATION") == []
    assert stack.info is not None
    redis = Redis.from_url(stack.info.redis_url)
    try:
        live = {m.decode() for m in await redis.zrange(keys.LIVE_SESSIONS, 0, -1)}
        async for key in redis.scan_iter(match="s2s:{*}:meta", count=1000):
            sid = key.decode().split("{")[1].split("}")[0]
            if sid not in live:
                assert await redis.ttl(key) > 0, f"stray record {key!r} never expires"
        assert await redis.zcard(keys.tenant_live("initech")) == 0
    finally:
        await redis.aclose()


async def turn_time(call: Call, pcm: bytes) -> float:
    """Seconds from the caller's first word (sent in real time) to the end of the reply."""
    started = time.monotonic()
    for start in range(0, len(pcm), 640):
        await call.ws.send(pcm[start : start + 640])
        await asyncio.sleep(0.02)
    await call.until(turn_completed)
    return time.monotonic() - started


async def burst(base: str, n: int, path: str) -> list[list[Any]]:
    """``[status, seconds, body, Retry-After]`` of n concurrent requests from another process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.service.burst_client",
        base,
        API_KEY,
        str(n),
        path,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 180 * SECOND)
    assert process.returncode == 0
    return list(json.loads(out))


async def test_a_burst_of_creates_is_refused_fast_when_slots_run_out(base, ws_base, stack):
    async with http_client(base) as http, http_client(base, ADMIN_KEY) as admin:
        live_calls = [await create(http, sample_rate=16000) for _ in range(4)]
        calls = [await open_call(ws_base, s["session_id"]) for s in live_calls]
        pcm = utterance(0.8, 16000)
        quiet = await asyncio.gather(*(turn_time(c, pcm) for c in calls))
        live = len((await admin.get("/v1/sessions")).json()["sessions"])
        free = SESSION_SLOTS - live

        # The floor: 200 concurrent health checks through the same proxy on the same machine.
        floor = sorted(r[1] for r in await burst(base, 200, "/healthz"))
        results = await asyncio.gather(
            burst(base, 200, "/v1/sessions"),
            asyncio.gather(*(turn_time(c, pcm) for c in calls)),
        )
        results, during = results
        ok = [r for r in results if r[0] == 201]
        refused = [r for r in results if r[0] != 201]
        assert len(ok) == free, [r[2] for r in refused if r[0] != 503][:3]
        assert all(r[0] == 503 for r in refused), [r for r in refused if r[0] != 503][:3]
        assert all(r[2]["error"]["code"] == "at_capacity" for r in refused)
        assert all(int(r[3]) >= 1 for r in refused)  # Retry-After
        assert session_actors(stack, "PENDING_CREATION") == []
        refused_s = sorted(r[1] for r in refused)
        print(
            f"\nburst: 200 creates, {free} free slots -> {len(ok)} created, {len(refused)} "
            f"refused; refusal median {statistics.median(refused_s) * 1000:.0f} ms, "
            f"max {refused_s[-1] * 1000:.0f} ms (200 health checks at once: median "
            f"{statistics.median(floor) * 1000:.0f} ms, max {floor[-1] * 1000:.0f} ms); "
            f"live calls' turn time "
            f"quiet {statistics.median(quiet) * 1000:.0f} ms (max {max(quiet) * 1000:.0f}), "
            f"during the burst {statistics.median(during) * 1000:.0f} ms "
            f"(max {max(during) * 1000:.0f})"
        )
        for call in calls:
            await call.ws.close()
        for sid in [s["session_id"] for s in live_calls] + [r[2]["session_id"] for r in ok]:
            await http.delete(f"/v1/sessions/{sid}")


async def test_every_limit_has_a_clear_error_and_the_call_keeps_working(base, ws_base):
    async with http_client(base) as http, httpx.AsyncClient(base_url=base, timeout=30) as anon:
        non_ascii = await anon.get(
            "/v1/sessions", headers={"Authorization": "Bearer clé-ключ".encode()}
        )
        assert non_ascii.status_code == 401
        assert (await anon.get("/docs")).status_code == 404
        assert (await anon.get("/openapi.json")).status_code == 401
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert "/v1/sessions" in (await anon.get("/openapi.json", headers=admin)).json()["paths"]
        sid = (await create(http, sample_rate=16000))["session_id"]
        for last_seq in ("-1", "abc", str(2**64)):
            with pytest.raises(InvalidStatus) as denied:
                await open_call(ws_base, sid, last_seq=last_seq)
            assert denied.value.response.status_code == 400
        bad_id = await http.get(f"/v1/sessions/{sid}/events", headers={"Last-Event-ID": "x1"})
        assert bad_id.status_code == 400 and "Last-Event-ID" in bad_id.text
        too_big = await http.post(f"/v1/sessions/{sid}/audio", content=bytes(1_200_000))
        assert too_big.status_code == 413 and "limit" in too_big.json()["error"]["message"]
        long_text = await http.post(f"/v1/sessions/{sid}/text", json={"text": "x" * 9000})
        assert long_text.status_code == 400 and "text" in long_text.text
        call = await open_call(ws_base, sid)
        for message in (
            {"type": "text", "text": "x" * 9000},
            {"type": "playback", "item_id": "i", "played_ms": float("nan")},
            {"type": "playback", "item_id": "i", "played_ms": 1e300},
            {"type": "tool_result", "call_id": "c", "content": "x" * 100_001},
            {"type": "text", "text": 5},
        ):
            await call.ws.send(json.dumps(message))
        await call.ws.send(json.dumps({"type": "ping"}))
        await call.ws.send(json.dumps({"type": "text", "text": "still here?"}))
        await call.until(turn_completed)
        assert len(call.errors) == 6  # five refusals and the pong
        assert all(e["type"] in ("error", "pong") for e in call.errors)
        await call.ws.send(json.dumps({"type": "text", "text": "y" * 200_000}))
        with pytest.raises(ConnectionClosed) as closed:
            await call.until(lambda e: False)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        # refused by the proxy's frame parser (deployments/transport_limits.py), not by the
        # ingress after buffering the whole frame
        assert "text frame over" not in closed.value.rcvd.reason
        assert (await http.get(f"/v1/sessions/{sid}")).json()["status"] == "live"
        await http.delete(f"/v1/sessions/{sid}")


class LoopThread:
    """An event loop in a thread, so synchronous hypothesis tests can drive one live call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout * SECOND)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Any:
    thread = LoopThread()
    yield thread
    thread.stop()


frames = (
    control_like.filter(lambda m: m["type"] != "close").map(json.dumps)
    | st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.binary(max_size=64)
)


def test_no_frame_sequence_breaks_the_stream(base, ws_base, loop_thread):
    """Arbitrary frames on one live call: every bad one is an error frame, none a 500, a
    dropped call or a broken stream; afterwards the same socket still carries a turn."""
    http = loop_thread.run(_client(base))
    sid = loop_thread.run(create(http, sample_rate=16000))["session_id"]
    call = loop_thread.run(open_call(ws_base, sid))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames, min_size=1, max_size=5))
    def send(batch: list[str | bytes]) -> None:
        for frame in batch:
            loop_thread.run(call.ws.send(frame))
        loop_thread.run(call.ws.send(json.dumps({"type": "ping"})))
        loop_thread.run(_pong(call))

    try:
        send()
        loop_thread.run(call.ws.send(json.dumps({"type": "text", "text": "still here?"})))
        loop_thread.run(call.until(turn_completed, timeout=60))
        assert call.seqs == sorted(set(call.seqs)), "events out of order or repeated"
        assert "session_closed" not in call.kinds()
        assert loop_thread.run(http.get(f"/v1/sessions/{sid}")).json()["status"] == "live"
    finally:
        loop_thread.run(call.ws.close())
        loop_thread.run(http.delete(f"/v1/sessions/{sid}"))
        loop_thread.run(http.aclose())


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=session_like | json_values)
def test_no_create_body_gets_a_500(base, loop_thread, body):
    async def post() -> tuple[int, dict[str, Any]]:
        async with http_client(base) as http:
            reply = await http.post("/v1/sessions", content=json.dumps(body))
            if reply.status_code == 201:
                await http.delete(f"/v1/sessions/{reply.json()['session_id']}")
            return reply.status_code, reply.json()

    status, reply = loop_thread.run(post())
    assert status in (200, 201, 400, 403, 409, 410, 429, 503), reply
    assert status in (200, 201) or reply["error"]["message"]


async def _client(base: str) -> httpx.AsyncClient:
    return http_client(base)


async def _pong(call: Call) -> None:
    """Read until the pong that answers our ping (every frame before it is collected)."""
    async with asyncio.timeout(20 * SECOND):
        while True:
            frame = await call.ws.recv()
            if isinstance(frame, bytes):
                continue
            event = json.loads(frame)
            if "seq" in event:
                call.seqs.append(event["seq"])
                call.events.append(event)
            elif event.get("type") == "pong":
                return
            else:
                call.errors.append(event)


async def test_tools_learn_whose_call_it_is(base, ws_base):
    """The worker gets the tenant and the caller metadata: check_balance refuses an account
    that is not the caller's, through the whole path (model, actor, Redis, worker)."""
    async with http_client(base, ACME_KEY) as acme:
        sid = (await create(acme, metadata={"account_ids": ["111"]}))["session_id"]
        call = await open_call(ws_base, sid, key=ACME_KEY)
        results = []
        for account in ("999", "111"):
            ask = f"call check_balance {json.dumps({'account_id': account})}"
            await call.ws.send(json.dumps({"type": "text", "text": ask}))
            results.append(await call.until(lambda e: e["type"] == "tool_result"))
            await call.until(turn_completed)
        await call.ws.close()
        await acme.delete(f"/v1/sessions/{sid}")
    refused, answered = results
    assert refused["is_error"] and "does not belong to this caller" in refused["content"]
    assert not answered["is_error"] and json.loads(answered["content"])["account_id"] == "111"
