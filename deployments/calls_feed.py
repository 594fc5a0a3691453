"""``GET /v1/calls/feed``: a tenant's live calls as Server-Sent Events (the console's call list).

One long response per watcher instead of a poll per call per second: session actors publish a
compact *call summary* (state, turns, last response latency, errors; see
:mod:`actors.call_reporting`) on their tenant's channel (``s2s:tenants:<t>:calls``) and on
``s2s:calls`` (which admins watch) whenever it changes, at most four times a second per call.

The feed subscribes first, then sends a ``snapshot`` of every live call the principal may see
(so nothing published meanwhile is missed; a summary that arrives twice is harmless, the newer
``updated_at`` wins), then one ``call`` event per summary. Should Redis drop the subscription,
the feed subscribes again and sends a fresh snapshot, so the watcher's list never silently goes
stale. A summary from another tenant can never reach a tenant's feed: the channel is the
tenant's own, and each summary's ``tenant`` is checked again before it is sent.

A replica serves at most :data:`MAX_FEEDS` feeds at once (each holds a Redis connection); past
that, new ones get a 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from s2s.log import logger
from s2s.service import keys
from s2s.service.redis_client import is_redis_error
from s2s.service.state import ENDED, SessionStore

from .errors import ApiError
from .tenancy import Principal

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["MAX_FEEDS", "CallsFeed", "summary_of"]

log = logger.getChild("ingress")

MAX_FEEDS = 64
#: Pause before subscribing again after Redis dropped a feed's subscription.
RESUBSCRIBE_S = 1.0
#: Caller metadata fields shown in the call list (the rest stays on the call's own page).
_META_FIELDS = ("provider", "model", "tenant", "created_at", "status", "metadata")


def summary_of(meta: dict[str, Any]) -> dict[str, Any]:
    """A call's summary for the list: what its actor last published (meta field ``call``),
    completed with what the session record says (caller metadata, creation time)."""
    published = meta.get("call")
    summary: dict[str, Any] = dict(published) if isinstance(published, dict) else {}
    summary.setdefault("session_id", meta.get("session_id"))
    summary.setdefault("state", "starting" if meta.get("status") == "starting" else "listening")
    summary.setdefault("started_at", meta.get("created_at"))
    for name in _META_FIELDS:
        if meta.get(name) is not None:
            summary.setdefault(name, meta[name])
    if meta.get("status") in ENDED:
        summary["ended"] = True
        summary["state"] = "ended"
    return summary


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class CallsFeed:
    """Serves call-list feeds for one replica."""

    def __init__(self, redis: Redis, store: SessionStore, *, keepalive_s: float) -> None:
        self._redis = redis
        self._store = store
        self._keepalive_s = keepalive_s
        self._open = 0

    def admit(self) -> None:
        """Refuse a feed beyond :data:`MAX_FEEDS` (called before the response starts)."""
        if self._open >= MAX_FEEDS:
            raise ApiError(503, "unavailable", "too many call feeds on this replica", retry_after=5)

    async def stream(self, principal: Principal) -> AsyncIterator[str]:
        """The feed's text: ``snapshot`` events, then ``call`` events, keep-alive comments."""
        channel = keys.ALL_CALLS if principal.admin else keys.tenant_calls(principal.tenant or "")
        self._open += 1
        try:
            yield ": connected\n\n"
            while True:
                pubsub = self._redis.pubsub()
                try:
                    await pubsub.subscribe(channel)
                    yield _event("snapshot", {"calls": await self._snapshot(principal)})
                    async for text in self._relay(pubsub, principal):
                        yield text
                except Exception as exc:
                    if not is_redis_error(exc):
                        raise
                    log.warning("call feed lost its subscription (%r); subscribing again", exc)
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                yield ": reconnecting\n\n"
                await asyncio.sleep(RESUBSCRIBE_S)
        finally:
            self._open -= 1

    async def _snapshot(self, principal: Principal) -> list[dict[str, Any]]:
        ids = await self._store.live(None if principal.admin else principal.tenant)
        metas = await asyncio.gather(*(self._store.meta(sid) for sid in ids))
        return [summary_of(m) for m in metas if m is not None and principal.owns(m.get("tenant"))]

    async def _relay(self, pubsub: Any, principal: Principal) -> AsyncIterator[str]:
        while True:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self._keepalive_s
            )
            if message is None:
                yield ": keep-alive\n\n"
                continue
            try:
                summary = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("dropping a malformed call summary on %s", message.get("channel"))
                continue
            if isinstance(summary, dict) and principal.owns(summary.get("tenant")):
                yield _event("call", summary)
