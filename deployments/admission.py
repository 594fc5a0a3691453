"""Admission control: a tenant's quotas and the cluster's free session slots, in one atomic step.

One Lua script decides, on the shared Redis, so every ingress replica counts the same calls and
concurrent creates cannot overshoot a limit. A session counts from admission on: it takes a
place in the global live set (``s2s:sessions:live``, which its actor keeps leasing) and in its
tenant's live set, and its creation is recorded in the tenant's one-minute window. A start that
fails gives the places back (:meth:`Admission.release`); the actor gives them back when the call
ends; a place whose lease ran out (a dead actor) no longer counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s2s.service import keys
from s2s.service.config import QuotaSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Admission", "Refusal"]

#: KEYS: global live, tenant live, tenant creates. ARGV: now, session id, lease expiry,
#: capacity, max live, creates per minute (a negative limit is no limit).
_ADMIT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60)
local per_minute = tonumber(ARGV[6])
if per_minute >= 0 and redis.call('ZCARD', KEYS[3]) >= per_minute then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {'creates_per_minute', tostring(tonumber(oldest[2]) + 60 - now)}
end
local max_live = tonumber(ARGV[5])
if max_live >= 0 and redis.call('ZCARD', KEYS[2]) >= max_live then
  return {'max_live_sessions', '5'}
end
local capacity = tonumber(ARGV[4])
if capacity >= 0 and redis.call('ZCOUNT', KEYS[1], now, '+inf') >= capacity then
  return {'capacity', '2'}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[2] .. '@' .. ARGV[1])
redis.call('EXPIRE', KEYS[3], 120)
return {'ok', '0'}
"""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a create was refused, and when trying again may succeed."""

    limit: str
    """``creates_per_minute``, ``max_live_sessions`` or ``capacity``."""
    retry_after_s: float


class Admission:
    """Admits sessions against quotas and capacity (any process with the service's Redis)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script: Any = redis.register_script(_ADMIT)

    async def admit(
        self,
        session_id: str,
        tenant: str,
        quotas: QuotaSettings,
        *,
        capacity: int | None,
        lease_s: float,
    ) -> Refusal | None:
        """Take a place for ``session_id``, or say which limit stops it (nothing taken then)."""
        now = time.time()
        reply = await self._script(
            keys=[keys.LIVE_SESSIONS, keys.tenant_live(tenant), keys.tenant_creates(tenant)],
            args=[
                repr(now),
                session_id,
                repr(now + lease_s),
                -1 if capacity is None else capacity,
                -1 if quotas.max_live_sessions is None else quotas.max_live_sessions,
                -1 if quotas.creates_per_minute is None else quotas.creates_per_minute,
            ],
        )
        verdict, retry = (v.decode() if isinstance(v, bytes) else str(v) for v in reply)
        if verdict == "ok":
            return None
        return Refusal(verdict, max(1.0, float(retry)))

    async def full(self, capacity: int | None) -> bool:
        """A cheap early check: every slot is taken now (admit() still decides atomically)."""
        if capacity is None:
            return False
        return int(await self._redis.zcount(keys.LIVE_SESSIONS, time.time(), "+inf")) >= capacity

    async def release(self, session_id: str, tenant: str) -> None:
        """Give back the places of a session that did not start (its creation still counts)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.LIVE_SESSIONS, session_id)
            pipe.zrem(keys.tenant_live(tenant), session_id)
            await pipe.execute()
