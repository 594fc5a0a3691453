"""Session records in Redis: who is live, what each session is, and how to continue it.

* ``s2s:sessions:live`` (sorted set): session id -> lease expiry. A session actor refreshes its
  lease while it runs; an entry whose lease ran out belongs to a dead actor.
* ``s2s:{sid}:meta`` (hash, msgpack values): provider, model, creation time, caller metadata,
  status, close reason.
* ``s2s:{sid}:media`` (msgpack, expires with the lease): where the live actor's media channel
  listens, so an ingress outside the actor's Ray cluster (a rollout) can still reach it.
* ``s2s:{sid}:state`` (msgpack): the :class:`~s2s.protocol.Continuation` (history, pending tool
  calls, uncommitted caller audio), the event sequence number and the open tool calls, saved at
  turn ends: what a replacement actor needs to carry the call on.

Secrets (API keys) are never written here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgpack

from . import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SessionStore"]


def _pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def _unpack(raw: Any) -> Any:
    return None if raw is None else msgpack.unpackb(raw, raw=False)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: Statuses after which a session's record only waits for its TTL.
ENDED = frozenset({"closed", "failed"})

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


class SessionStore:
    """Reads and writes session records (any process: actors, replicas, tools)."""

    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def create(self, session_id: str, meta: dict[str, Any]) -> bool:
        """Write a new session's record; False (nothing written) if the id is already taken."""
        record = {**meta, "session_id": session_id, "created_at": time.time(), "status": "starting"}
        args: list[Any] = []
        for name, value in record.items():
            args += [name, _pack(value)]
        claimed = await self._redis.eval(_CLAIM, 1, keys.session_meta(session_id), *args)
        return bool(claimed)

    async def update(self, session_id: str, **fields: Any) -> None:
        """Change fields; an ended status (closed, failed) starts the record's TTL."""
        key = keys.session_meta(session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={k: _pack(v) for k, v in fields.items()})
            if fields.get("status") in ENDED:
                pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def meta(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(keys.session_meta(session_id))
        if not raw:
            return None
        return {_text(k): _unpack(v) for k, v in raw.items()}

    async def lease(
        self,
        session_id: str,
        seconds: float,
        media: dict[str, Any] | None = None,
        tenant: str | None = None,
    ) -> None:
        """Renew the session's lease (and its tenant's count of it); with ``media``, advertise
        its channel for as long."""
        expiry = time.time() + seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.LIVE_SESSIONS, {session_id: expiry})
            if tenant:
                pipe.zadd(keys.tenant_live(tenant), {session_id: expiry})
            if media is not None:
                pipe.set(keys.session_media(session_id), _pack(media), px=int(seconds * 1000))
            await pipe.execute()

    async def release(self, session_id: str, tenant: str | None = None) -> None:
        """The call ended: it leaves the live sets and stops advertising its channel."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.LIVE_SESSIONS, session_id)
            if tenant:
                pipe.zrem(keys.tenant_live(tenant), session_id)
            pipe.delete(keys.session_media(session_id))
            await pipe.execute()

    async def claim(self, session_id: str, token: str) -> None:
        """Make the actor with media ``token`` the call's owner (a replacement takes over)."""
        await self._redis.set(keys.session_owner(session_id), token, ex=self._ttl_s)

    async def revoke(self, session_id: str) -> None:
        """No actor owns the call until a replacement claims it (the old one is fenced off)."""
        await self._redis.set(keys.session_owner(session_id), "-", ex=self._ttl_s)

    async def owner(self, session_id: str) -> str | None:
        """The owning actor's media token, ``-`` if revoked, None if never claimed."""
        value = await self._redis.get(keys.session_owner(session_id))
        return None if value is None else _text(value)

    async def advertised_media(self, session_id: str) -> dict[str, Any] | None:
        """The media channel a live actor advertises (None once its lease has run out)."""
        value = _unpack(await self._redis.get(keys.session_media(session_id)))
        return value if isinstance(value, dict) else None

    async def advertised_media_many(
        self, session_ids: list[str], batch: int = 500
    ) -> list[dict[str, Any] | None]:
        """:meth:`advertised_media` of each session, in order, read ``batch`` per pipeline."""
        found: list[dict[str, Any] | None] = []
        for start in range(0, len(session_ids), batch):
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids[start : start + batch]:
                    pipe.get(keys.session_media(session_id))
                replies = await pipe.execute()
            for raw in replies:
                value = _unpack(raw)
                found.append(value if isinstance(value, dict) else None)
        return found

    async def live(self, tenant: str | None = None) -> list[str]:
        """Sessions (of ``tenant``; None: every tenant) whose lease has not run out, oldest
        lease first."""
        key = keys.LIVE_SESSIONS if tenant is None else keys.tenant_live(tenant)
        members = await self._redis.zrangebyscore(key, time.time(), "+inf")
        return [_text(m) for m in members]

    async def expired(self) -> list[str]:
        members = await self._redis.zrangebyscore(keys.LIVE_SESSIONS, "-inf", time.time())
        return [_text(m) for m in members]

    async def save_state(self, session_id: str, state: dict[str, Any]) -> None:
        await self._redis.set(keys.session_state(session_id), _pack(state), ex=self._ttl_s)

    async def load_state(self, session_id: str) -> dict[str, Any] | None:
        value = _unpack(await self._redis.get(keys.session_state(session_id)))
        return value if isinstance(value, dict) else None
