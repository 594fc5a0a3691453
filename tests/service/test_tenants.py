"""Tenants on the real stack: isolation on every session route, quotas, capacity, no leaks.

Real Ray, real redis-server, the OpenAI emulator; three tenants and an admin (see
``tests/service/stack.py``). The module's cluster offers ``SESSION_SLOTS`` session slots, so
the burst test can exhaust them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import InvalidStatus

from deployments.stack import LocalStack
from s2s.service import keys

from ..conftest import SECOND
from ..helpers import utterance
from .stack import (
    ACME_KEY,
    ADMIN_KEY,
    GLOBEX_KEY,
    GLOBEX_MAX_LIVE,
    GLOBEX_PER_MINUTE,
    INITECH_KEY,
    Call,
    http_client,
    open_call,
    turn_completed,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SESSION_SLOTS = 24


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
        for _ in range(8):
            for body in bad_bodies:
                statuses.append((await http.post("/v1/sessions", json=body)).status_code)
        for _ in range(20):  # valid at the edge; the provider refuses initech's own key
            reply = await initech.post("/v1/sessions", json={})
            assert reply.status_code == 502, reply.text
            assert reply.json()["error"]["code"] == "provider_auth"
            assert "sk-initech" not in reply.text
            statuses.append(reply.status_code)
    assert len(statuses) == 100 and set(statuses) <= {400, 403, 502}
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


async def test_a_burst_of_creates_is_refused_fast_when_slots_run_out(base, ws_base, stack):
    async with http_client(base) as http, http_client(base, ADMIN_KEY) as admin:
        live_calls = [await create(http, sample_rate=16000) for _ in range(4)]
        calls = [await open_call(ws_base, s["session_id"]) for s in live_calls]
        pcm = utterance(0.8, 16000)
        quiet = await asyncio.gather(*(turn_time(c, pcm) for c in calls))
        live = len((await admin.get("/v1/sessions")).json()["sessions"])
        free = SESSION_SLOTS - live

        async def one() -> tuple[int, float, httpx.Response]:
            started = time.monotonic()
            reply = await http.post("/v1/sessions", json={"sample_rate": 16000})
            return reply.status_code, time.monotonic() - started, reply

        burst = asyncio.gather(*(one() for _ in range(200)))
        during = await asyncio.gather(*(turn_time(c, pcm) for c in calls))
        results = await burst
        ok = [r for r in results if r[0] == 201]
        refused = [r for r in results if r[0] != 201]
        assert len(ok) == free, [r[2].text for r in refused if r[0] != 503][:3]
        assert all(r[0] == 503 for r in refused)
        assert all(r[2].json()["error"]["code"] == "at_capacity" for r in refused)
        assert all(int(r[2].headers["Retry-After"]) >= 1 for r in refused)
        assert session_actors(stack, "PENDING_CREATION") == []
        refused_s = sorted(r[1] for r in refused)
        print(
            f"\nburst: 200 creates, {free} free slots -> {len(ok)} created, {len(refused)} "
            f"refused; refusal median {statistics.median(refused_s) * 1000:.0f} ms, "
            f"max {refused_s[-1] * 1000:.0f} ms; live calls' turn time "
            f"quiet {statistics.median(quiet) * 1000:.0f} ms (max {max(quiet) * 1000:.0f}), "
            f"during the burst {statistics.median(during) * 1000:.0f} ms "
            f"(max {max(during) * 1000:.0f})"
        )
        for call in calls:
            await call.ws.close()
        for sid in [s["session_id"] for s in live_calls] + [r[2].json()["session_id"] for r in ok]:
            await http.delete(f"/v1/sessions/{sid}")
