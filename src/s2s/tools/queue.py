"""Tool calls and results on Redis Streams.

* Calls: ``XADD s2s:tools:<pool>:calls`` by the session actor; the pool's workers read them
  with ``XREADGROUP`` in one consumer group and ``XACK`` only after the result is written, so a
  call whose worker dies stays pending and is reclaimed (``XAUTOCLAIM``) by another worker.
  Delivery is therefore at-least-once.
* Results: ``XADD s2s:{<sid>}:tool_results`` by the worker; the session actor reads them and
  applies each call id at most once (a duplicate from a re-run is dropped), so results land
  exactly once.

:func:`submit` tries a call again (twice, quickly) when the connection fails: a pooled connection
that Redis closed (it restarted, or failed over) fails the first command sent on it. A call
submitted twice that way is run twice at worst, which at-least-once delivery allows anyway.

Entries are msgpack maps of the dataclass fields. Unpacking tolerates version skew during a
rolling upgrade: a field an older writer did not send takes its default, and a field a newer
writer added is ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack

from ..service import keys
from ..service.redis_client import is_connection_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "ToolOutcome",
    "ToolRequest",
    "post_result",
    "read_results",
    "submit",
]

CALLS_MAXLEN = 100_000
RESULTS_MAXLEN = 1_000


def _known_fields(cls: type[Any], raw: bytes) -> dict[str, Any]:
    """The entry's fields that ``cls`` has (unknown ones, from a newer writer, are dropped)."""
    data = msgpack.unpackb(raw, raw=False)
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} entry must be a map, not {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """One tool call for a pool's workers.

    ``tenant`` and ``metadata`` (the session's caller metadata: JSON-like data) reach tools that
    take a :class:`~s2s.tools.context.ToolContext`; an entry without them (an older writer) gets
    ``""`` and ``{}``. ``traceparent`` is the W3C trace context of the actor's ``s2s.tool_call``
    span (``""``: the call is not traced, or an older writer), so the worker's span joins the
    call's trace (:mod:`s2s.service.tracing`).
    """

    session_id: str
    call_id: str
    name: str
    arguments: str
    pool: str
    deadline: float  # unix seconds; after this the session has already answered with an error
    tenant: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    traceparent: str = ""

    def pack(self) -> bytes:
        return bytes(msgpack.packb(asdict(self), use_bin_type=True))

    @classmethod
    def unpack(cls, raw: bytes) -> ToolRequest:
        """Raise ValueError/TypeError for an entry that is not a well-formed request."""
        data = _known_fields(cls, raw)
        if data.get("tenant") is None:
            data["tenant"] = ""
        if data.get("metadata") is None:
            data["metadata"] = {}
        if data.get("traceparent") is None:
            data["traceparent"] = ""
        if not isinstance(data["tenant"], str) or not isinstance(data["metadata"], dict):
            raise ValueError("a ToolRequest's tenant must be a string and its metadata a map")
        if not isinstance(data["traceparent"], str):
            raise ValueError("a ToolRequest's traceparent must be a string")
        return cls(**data)


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
        return cls(**_known_fields(cls, raw))


#: Pauses before the second and third try of a submission whose connection failed.
SUBMIT_RETRY_DELAYS_S = (0.05, 0.25)


async def submit(redis: Redis, request: ToolRequest) -> None:
    for delay in (*SUBMIT_RETRY_DELAYS_S, None):
        try:
            await redis.xadd(
                keys.tool_calls(request.pool),
                {"r": request.pack()},
                maxlen=CALLS_MAXLEN,
                approximate=True,
            )
        except Exception as exc:
            if delay is None or not is_connection_error(exc):
                raise
            await asyncio.sleep(delay)
        else:
            return


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
