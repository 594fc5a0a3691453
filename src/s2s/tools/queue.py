"""Tool calls and results on Redis Streams.

* Calls: ``XADD s2s:tools:<pool>:calls`` by the session actor; the pool's workers read them
  with ``XREADGROUP`` in one consumer group and ``XACK`` only after the result is written, so a
  call whose worker dies stays pending and is reclaimed (``XAUTOCLAIM``) by another worker.
  Delivery is therefore at-least-once.
* Results: ``XADD s2s:{<sid>}:tool_results`` by the worker; the session actor reads them and
  applies each call id at most once (a duplicate from a re-run is dropped), so results land
  exactly once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from ..service import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["ToolOutcome", "ToolRequest", "post_result", "read_results", "submit"]

CALLS_MAXLEN = 100_000
RESULTS_MAXLEN = 1_000


@dataclass(frozen=True, slots=True)
class ToolRequest:
    session_id: str
    call_id: str
    name: str
    arguments: str
    pool: str
    deadline: float  # unix seconds; after this the session has already answered with an error

    def pack(self) -> bytes:
        return bytes(msgpack.packb(asdict(self), use_bin_type=True))

    @classmethod
    def unpack(cls, raw: bytes) -> ToolRequest:
        return cls(**msgpack.unpackb(raw, raw=False))


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call_id: str
    content: str
    is_error: bool
    worker: str
    duration_ms: float
    attempt: int

    def pack(self) -> bytes:
        return bytes(msgpack.packb(asdict(self), use_bin_type=True))

    @classmethod
    def unpack(cls, raw: bytes) -> ToolOutcome:
        return cls(**msgpack.unpackb(raw, raw=False))


async def submit(redis: Redis, request: ToolRequest) -> None:
    await redis.xadd(
        keys.tool_calls(request.pool), {"r": request.pack()}, maxlen=CALLS_MAXLEN, approximate=True
    )


async def post_result(redis: Redis, session_id: str, outcome: ToolOutcome, ttl_s: int) -> None:
    key = keys.tool_results(session_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"o": outcome.pack()}, maxlen=RESULTS_MAXLEN, approximate=True)
        pipe.expire(key, ttl_s)
        await pipe.execute()


async def read_results(
    redis: Redis, session_id: str, last_id: str, block_ms: int
) -> tuple[str, list[ToolOutcome]]:
    """Results after ``last_id`` (waiting up to ``block_ms``); returns the new last id."""
    reply: Any = await redis.xread({keys.tool_results(session_id): last_id}, block=block_ms)
    outcomes: list[ToolOutcome] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            raw = fields.get(b"o")
            if raw is not None:
                outcomes.append(ToolOutcome.unpack(raw))
    return last_id, outcomes


def now() -> float:
    return time.time()
