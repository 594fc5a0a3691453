"""The call feed (``GET /v1/calls/feed``) against a real redis-server, without Ray: snapshot
then changes, tenant scoping, admins, and a subscription Redis drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from deployments.calls_feed import MAX_FEEDS, CallsFeed, summary_of
from deployments.errors import ApiError
from deployments.tenancy import Principal
from s2s.service import keys
from s2s.service.state import SessionStore


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    kind = ""
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            out.append((kind, json.loads(line[6:])))
    return out


async def _next_event(stream: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    """The feed's next event (comments and keep-alives skipped)."""
    async with asyncio.timeout(10):
        while True:
            chunk = await anext(stream)
            events = _events(chunk)
            if events:
                return events[0]


async def _live(store: SessionStore, session_id: str, tenant: str) -> None:
    await store.create(session_id, {"tenant": tenant, "provider": "openai_realtime"})
    await store.lease(session_id, 30, tenant=tenant)


async def _publish(redis: Redis, summary: dict[str, Any]) -> None:
    text = json.dumps(summary)
    await redis.publish(keys.tenant_calls(summary["tenant"]), text)
    await redis.publish(keys.ALL_CALLS, text)


async def test_a_tenants_feed_sends_its_calls_and_nobody_elses(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=60)
    await _live(store, "acme-call-1", "acme")
    await _live(store, "globex-call-1", "globex")
    await store.update("acme-call-1", call={"state": "model_speaking", "turns": 2})
    feed = CallsFeed(redis, store, keepalive_s=5)
    stream = feed.stream(Principal("acme"))
    kind, snapshot = await _next_event(stream)
    assert kind == "snapshot"
    assert [c["session_id"] for c in snapshot["calls"]] == ["acme-call-1"]
    assert snapshot["calls"][0]["state"] == "model_speaking"
    assert snapshot["calls"][0]["turns"] == 2
    # globex's summary goes to globex's channel; a forged one on acme's channel is dropped too
    await _publish(redis, {"session_id": "globex-call-1", "tenant": "globex", "turns": 1})
    await redis.publish(keys.tenant_calls("acme"), json.dumps({"tenant": "globex", "x": 1}))
    await redis.publish(keys.tenant_calls("acme"), "not json")
    await _publish(redis, {"session_id": "acme-call-1", "tenant": "acme", "turns": 3})
    kind, change = await _next_event(stream)
    assert kind == "call" and change == {"session_id": "acme-call-1", "tenant": "acme", "turns": 3}
    await stream.aclose()  # type: ignore[attr-defined]


async def test_an_admins_feed_sees_every_tenant(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=60)
    await _live(store, "acme-call-2", "acme")
    await _live(store, "globex-call-2", "globex")
    stream = CallsFeed(redis, store, keepalive_s=5).stream(Principal(None, admin=True))
    _, snapshot = await _next_event(stream)
    assert {c["session_id"] for c in snapshot["calls"]} == {"acme-call-2", "globex-call-2"}
    await _publish(redis, {"session_id": "globex-call-2", "tenant": "globex", "ended": True})
    _, change = await _next_event(stream)
    assert change["session_id"] == "globex-call-2" and change["ended"] is True
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_dropped_subscription_comes_back_with_a_fresh_snapshot(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=60)
    await _live(store, "acme-call-3", "acme")
    stream = CallsFeed(redis, store, keepalive_s=0.5).stream(Principal("acme"))
    kind, _ = await _next_event(stream)
    assert kind == "snapshot"
    await _live(store, "acme-call-4", "acme")  # starts while the feed is cut off
    await redis.client_kill_filter(_type="pubsub")
    kind, snapshot = await _next_event(stream)
    assert kind == "snapshot"
    assert {c["session_id"] for c in snapshot["calls"]} == {"acme-call-3", "acme-call-4"}
    await stream.aclose()  # type: ignore[attr-defined]


async def test_a_replica_refuses_feeds_past_its_limit(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=60)
    feed = CallsFeed(redis, store, keepalive_s=5)
    streams = [feed.stream(Principal("acme")) for _ in range(MAX_FEEDS)]
    for stream in streams:
        await anext(stream)  # each is open (it counts once it started)
    with pytest.raises(ApiError) as refused:
        feed.admit()
    assert refused.value.status == 503 and refused.value.retry_after
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    feed.admit()  # closing them freed the places


def test_a_summary_falls_back_on_the_session_record() -> None:
    meta = {
        "session_id": "s1",
        "tenant": "acme",
        "provider": "gemini_live",
        "created_at": 100.0,
        "status": "closed",
        "metadata": {"caller": "+1555"},
    }
    summary = summary_of(meta)
    assert summary["state"] == "ended" and summary["ended"] is True
    assert summary["started_at"] == 100.0 and summary["metadata"] == {"caller": "+1555"}
    published = summary_of({**meta, "status": "live", "call": {"state": "tool_running"}})
    assert published["state"] == "tool_running" and "ended" not in published
