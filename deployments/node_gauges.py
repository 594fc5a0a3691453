"""What ``GET /metrics`` shows: the cluster totals from Redis, and gauges read at scrape time.

* ``s2s_node_live_sessions{node}``: live sessions per Ray node, from the live-session set and
  the media channel each live actor advertises with its lease (it carries the actor's
  ``node_id``); a session whose advertisement has lapsed counts under ``node="unknown"``.
* ``s2s_node_free_session_slots{node}``: the session-slot resource (``sessions.resource``)
  available on each alive Ray node, 0 on a full one.
* ``s2s_redis_up``: the page answers even when Redis does not (then without the Redis-backed
  series, and ``s2s_redis_up 0``), so an alert on it can fire.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from s2s.log import logger
from s2s.service import keys
from s2s.service.metrics import Metrics
from s2s.service.metrics_render import NodeGauges, render
from s2s.service.state import SessionStore

__all__ = ["free_slots_per_node", "live_sessions_per_node", "scrape"]

log = logger.getChild("ingress")

#: Bound on each source a scrape reads (Redis, Ray's control store).
SOURCE_TIMEOUT_S = 2.0


async def live_sessions_per_node(store: SessionStore) -> dict[str, int]:
    """Live sessions by the Ray node their actor advertises (``unknown`` if none)."""
    counts: Counter[str] = Counter()
    for media in await store.advertised_media_many(await store.live()):
        node = media.get("node_id") if media is not None else None
        counts[str(node) if node else "unknown"] += 1
    return dict(counts)


def free_slots_per_node(resource: str) -> dict[str, float]:
    """The ``resource`` units available on each alive Ray node that offers it (blocking: Ray's
    control store answers; call it off the event loop)."""
    import ray
    from ray._private.state import available_resources_per_node

    available: dict[str, dict[str, float]] = available_resources_per_node()  # type: ignore[no-untyped-call]
    free: dict[str, float] = {}
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if not node.get("Alive") or resource not in (node.get("Resources") or {}):
            continue
        node_id = str(node["NodeID"])
        free[node_id] = float(available.get(node_id, {}).get(resource, 0.0))
    return free


async def scrape(redis: Any, store: SessionStore, metrics: Metrics, resource: str) -> bytes:
    """The ``/metrics`` page: this replica's counters flushed, the cluster totals and the
    scrape-time gauges; whatever Redis or Ray cannot give is left out and logged."""
    free: dict[str, float] = {}
    try:
        free = await asyncio.wait_for(
            asyncio.to_thread(free_slots_per_node, resource), SOURCE_TIMEOUT_S
        )
    except Exception as exc:
        log.warning("metrics: Ray did not give the free session slots: %r", exc)
    try:
        async with asyncio.timeout(SOURCE_TIMEOUT_S):
            await redis.ping()  # before the flush: a flush that fails loses the counters
            await metrics.flush(redis)
            fields = await redis.hgetall(keys.METRICS)
            per_node = await live_sessions_per_node(store)
    except Exception as exc:
        log.warning("metrics: Redis does not answer: %r", exc)
        return render({}, None, nodes=NodeGauges(free_slots=free), redis_up=False)
    return render(fields, sum(per_node.values()), nodes=NodeGauges(per_node, free))
