"""Publishing a session's events: a capped replay log (Redis Stream) plus live pub/sub.

Every envelope is written twice, by one Lua script per batch: ``XADD <log> <seq>-0`` (capped
with ``MAXLEN ~``) and ``PUBLISH <channel>``. Pub/sub is fast but drops messages for slow or
disconnected subscribers; the log lets any subscriber fetch exactly what it missed by sequence
number (the stream id *is* the sequence number).

The script is atomic and idempotent: it skips every envelope whose sequence number the log
already has. A batch whose reply was lost (a timeout, a dropped connection after Redis ran it)
is simply sent again: nothing is written or published twice, and no retry can fail with "ID
equal or smaller than the target stream top item".

:class:`EventLog` batches opportunistically: while one write is in flight, new envelopes queue
and go out together in the next pipeline, so a burst costs one round trip, not one per event, and
a lone event is never delayed by a timer. A Redis failure is retried; envelopes stay queued, in
order, until written.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..events import SessionEvent
from ..log import logger
from . import keys
from .envelope import Envelope

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EventLog", "last_seq", "read_log"]

log = logger.getChild("eventlog")

#: KEYS: the log. ARGV: channel, max events, TTL, then (seq, packed envelope) pairs in order.
_APPEND = """
local last = 0
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
local written = 0
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ARGV[i + 1])
    redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
    last = seq
    written = written + 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return written
"""


class EventLog:
    """The publisher side for one session (owned by its actor)."""

    def __init__(
        self,
        redis: Redis,
        session_id: str,
        *,
        max_events: int,
        ttl_s: int,
        start_seq: int = 0,
    ) -> None:
        self._redis = redis
        self.session_id = session_id
        self._max_events = max_events
        self._ttl_s = ttl_s
        self._seq = start_seq
        self._pending: list[Envelope] = []
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._log_key = keys.event_log(session_id)
        self._channel = keys.events_channel(session_id)
        self._append: Any = redis.register_script(_APPEND)

    @property
    def seq(self) -> int:
        """The sequence number of the last envelope created."""
        return self._seq

    def publish_event(self, event: SessionEvent) -> Envelope:
        self._seq += 1
        envelope = Envelope.from_event(self.session_id, self._seq, time.time(), event)
        self._queue(envelope)
        return envelope

    def publish(self, kind: str, data: dict[str, Any]) -> Envelope:
        """Publish a service envelope (``session_started``, ``tool_result``, ...)."""
        self._seq += 1
        envelope = Envelope(self.session_id, self._seq, time.time(), kind, data)
        self._queue(envelope)
        return envelope

    def _queue(self, envelope: Envelope) -> None:
        self._pending.append(envelope)
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def flush(self) -> None:
        """Wait until everything published so far is in Redis."""
        await self._idle.wait()

    async def _write(self) -> None:
        failures = 0
        while self._pending:
            batch = self._pending
            self._pending = []
            try:
                args: list[Any] = [self._channel, self._max_events, self._ttl_s]
                for envelope in batch:
                    args += [envelope.seq, envelope.pack()]
                await self._append(keys=[self._log_key], args=args, client=self._redis)
                failures = 0
            except asyncio.CancelledError:
                self._pending[:0] = batch
                raise
            except Exception as exc:  # Redis down or failing over: keep order, retry
                self._pending[:0] = batch
                failures += 1
                delay = min(2.0, 0.05 * 2**failures)
                log.warning(
                    "publishing %d events failed (%s); retrying in %.2f s", len(batch), exc, delay
                )
                await asyncio.sleep(delay)
        self._idle.set()


def _decode(entries: list[Any]) -> list[Envelope]:
    out = []
    for _entry_id, fields in entries:
        raw = fields.get(b"e") if isinstance(fields, dict) else None
        if raw is not None:
            out.append(Envelope.unpack(raw))
    return out


async def read_log(
    redis: Redis,
    session_id: str,
    after_seq: int,
    *,
    until_seq: int | None = None,
    count: int | None = None,
) -> list[Envelope]:
    """Envelopes with ``after_seq < seq <= until_seq`` from the replay log, oldest first."""
    end = f"{until_seq}-0" if until_seq is not None else "+"
    entries: Any = await redis.xrange(
        keys.event_log(session_id), f"{after_seq + 1}-0", end, count=count
    )
    return _decode(entries)


async def last_seq(redis: Redis, session_id: str) -> int:
    """The highest sequence number in the log (0 if empty): where a replacement actor resumes."""
    entries: Any = await redis.xrevrange(keys.event_log(session_id), count=1)
    return _decode(entries)[0].seq if entries else 0
