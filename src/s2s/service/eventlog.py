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
and go out together in the next script call (at most ``_BATCH_EVENTS`` envelopes and
``_BATCH_BYTES`` bytes, so one call never holds Redis for long), so a burst costs one round
trip, not one per event, and a lone event is never delayed by a timer.

**Redis unreachable.** Publishing never blocks and never raises because of Redis: the
publisher (the actor's event pump) only appends to a queue. A failed write is retried with a
capped, jittered backoff; each attempt is bounded by ``write_timeout_s``. The log warns once
when an outage starts, once if it has to drop events, and once when writing resumes (with
how long it took, how many envelopes were held and how many dropped), not per event.

**The bound.** The queue holds at most ``max_pending_events`` envelopes and
``max_pending_bytes`` encoded bytes (``redis.max_pending_events`` / ``redis.max_pending_bytes``;
audio envelopes are most of the bytes). Past either, the oldest envelopes that were never sent
are dropped. Their sequence numbers are not reused or skipped silently: the dropped run
``f..l`` becomes one ``events_lost`` envelope ``{"first": f, "last": l}`` in their place in the
queue, written to the log and published like any other envelope when writing resumes.

**Sequence numbers of the marker.** Every envelope of a session has its own ``seq`` (1, 2, 3,
... with no gaps), and the ``events_lost`` marker for ``f..l`` *takes the last one*: its stream
entry is ``l-0`` and its ``seq`` is ``l``; ``f..l-1`` have no entry. This is the same shape and
numbering as the markers :mod:`~s2s.service.subscribe` makes for a trimmed log, so every sequence
number appears exactly once in the log, either as its event or inside one marker's range, and
a subscriber that saw ``f-1`` and then receives the marker ``l`` knows there is no gap (it does
not report a second loss). No extra sequence number is ever consumed, so :attr:`EventLog.seq`
and a replacement actor's ``last_seq`` are unaffected.

Only envelopes that were never sent are dropped: a batch whose outcome is unknown (sent, no
reply) may already be in the log, so it stays queued until a write confirms it (it is at most
one batch, and it alone is retried until Redis takes it, so one outage makes one marker). The
marker therefore never covers a sequence number the log holds, and the script's "skip what the
log has" rule keeps a re-sent marker from being written twice.

:meth:`EventLog.silence` (an actor another one replaced) drops what is queued and writes
nothing more.

An envelope that cannot be encoded (a bug, not Redis) is logged and replaced the same way by an
``events_lost`` for its own sequence number.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import SessionEvent
from ..log import logger
from . import keys
from .envelope import Envelope

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EventLog", "EventLogStats", "last_seq", "read_log"]

log = logger.getChild("eventlog")

#: The defaults of ``redis.max_pending_events`` and ``redis.max_pending_bytes``.
MAX_PENDING_EVENTS = 2000
MAX_PENDING_BYTES = 8 * 2**20

#: One script call writes at most this many envelopes / bytes (at least one envelope).
_BATCH_EVENTS = 256
_BATCH_BYTES = 2**20

#: What a queued ``events_lost`` marker is counted as against ``max_pending_bytes``.
_MARKER_BYTES = 96

_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0

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


@dataclass(slots=True)
class _Item:
    """A queued envelope: encoded, or (``packed is None``) an ``events_lost`` for
    ``first..seq``."""

    seq: int
    packed: bytes | None
    first: int = 0

    @property
    def size(self) -> int:
        return len(self.packed) if self.packed is not None else _MARKER_BYTES


@dataclass(slots=True)
class EventLogStats:
    """What one :class:`EventLog`'s writer went through (logs, tests, metrics)."""

    written: int = 0
    """Envelopes (events and markers) the log took."""
    resent: int = 0
    """Envelopes sent again that the log already had (the reply to an earlier try was lost)."""
    failures: int = 0
    """Failed writes."""
    outages: int = 0
    """Runs of consecutive failed writes."""
    lost: int = 0
    """Events dropped past the bound (each inside an ``events_lost`` range)."""
    peak_pending: int = 0
    """Most envelopes held at once."""
    peak_pending_bytes: int = 0
    """Most encoded bytes held at once."""
    last_outage_s: float = 0.0
    """From the first failed write of the last outage to the next successful one."""
    recovered_at: float = 0.0
    """``time.monotonic()`` of that successful write."""


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
        max_pending_events: int = MAX_PENDING_EVENTS,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        write_timeout_s: float = 10.0,
    ) -> None:
        self._redis = redis
        self.session_id = session_id
        self._max_events = max_events
        self._ttl_s = ttl_s
        self._seq = start_seq
        self._max_pending = max(1, max_pending_events)
        self._max_pending_bytes = max(1, max_pending_bytes)
        self._batch_events = max(1, min(_BATCH_EVENTS, self._max_pending // 2))
        self._batch_bytes = max(1, min(_BATCH_BYTES, self._max_pending_bytes // 2))
        self._write_timeout_s = write_timeout_s
        self._pending: deque[_Item] = deque()
        self._pending_bytes = 0
        self._sent = 0  # the first ``_sent`` queued items were sent without a reply: never dropped
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._log_key = keys.event_log(session_id)
        self._channel = keys.events_channel(session_id)
        self._append: Any = redis.register_script(_APPEND)
        self.stats = EventLogStats()
        self._down_since: float | None = None  # first failure of the current outage
        self._failures = 0  # consecutive
        self._dropping = False  # warned about dropping since the last successful write
        self._outage_peak = 0
        self._outage_lost = 0
        self._silenced = False

    @property
    def seq(self) -> int:
        """The sequence number of the last envelope created."""
        return self._seq

    @property
    def pending(self) -> int:
        """Envelopes (and ``events_lost`` markers) not yet confirmed written."""
        return len(self._pending)

    def silence(self) -> None:
        """Write nothing more (an actor that another has replaced): pending envelopes are
        dropped, later ones are numbered but never written."""
        self._silenced = True
        self._pending.clear()
        self._pending_bytes = self._sent = 0
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()  # a batch already sent may still land; nothing after it
        self._idle.set()

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
        if self._silenced:
            return
        try:
            item = _Item(envelope.seq, envelope.pack())
        except Exception:
            log.exception(
                "session %s: envelope %d (%s) cannot be encoded; an events_lost takes its place",
                self.session_id,
                envelope.seq,
                envelope.type,
            )
            item = _Item(envelope.seq, None, envelope.seq)
            self.stats.lost += 1
        self._pending.append(item)
        self._pending_bytes += item.size
        self._shed()
        self._outage_peak = max(self._outage_peak, len(self._pending))
        self.stats.peak_pending = max(self.stats.peak_pending, len(self._pending))
        self.stats.peak_pending_bytes = max(self.stats.peak_pending_bytes, self._pending_bytes)
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def _shed(self) -> None:
        """Past the bound, fold the oldest never-sent envelopes into one ``events_lost``."""
        pending = self._pending
        while len(pending) > self._max_pending or self._pending_bytes > self._max_pending_bytes:
            i = self._sent
            if i >= len(pending):
                return  # only the batch in doubt is left: it is at most one batch
            head = pending[i]
            if head.packed is not None:  # an event becomes the marker for itself
                self._pending_bytes += _MARKER_BYTES - head.size
                head.packed, head.first = None, head.seq
                self._lost(1)
                continue
            if i + 1 >= len(pending):
                return
            following = pending[i + 1]
            del pending[i + 1]
            self._pending_bytes -= following.size
            head.seq = following.seq  # the marker now ends at the next one's last seq
            if following.packed is not None:
                self._lost(1)

    def _lost(self, count: int) -> None:
        self.stats.lost += count
        self._outage_lost += count
        if not self._dropping:
            self._dropping = True
            log.warning(
                "session %s: %d events (%d bytes) are waiting for Redis, over the bound of "
                "%d events / %d bytes; dropping the oldest (an events_lost envelope names them)",
                self.session_id,
                len(self._pending),
                self._pending_bytes,
                self._max_pending,
                self._max_pending_bytes,
            )

    async def flush(self) -> None:
        """Wait until everything published so far is in Redis."""
        await self._idle.wait()

    def _batch(self) -> list[_Item]:
        """The next items to send: everything in doubt, then more up to the batch limits.

        After a failure, only the batch in doubt is tried again, so an outage freezes that one
        batch and everything queued behind it can still be folded into a single marker."""
        if self._failures and self._sent:
            return [self._pending[i] for i in range(self._sent)]
        batch: list[_Item] = []
        size = 0
        for item in self._pending:
            if len(batch) >= self._sent and (
                len(batch) >= self._batch_events or (batch and size + item.size > self._batch_bytes)
            ):
                break
            batch.append(item)
            size += item.size
        return batch

    def _packed(self, item: _Item) -> bytes:
        if item.packed is not None:
            return item.packed
        data = {"first": item.first, "last": item.seq}
        return Envelope(self.session_id, item.seq, 0.0, "events_lost", data).pack()

    async def _write(self) -> None:
        while self._pending:
            try:
                batch = self._batch()
                self._sent = max(self._sent, len(batch))
                args: list[Any] = [self._channel, self._max_events, self._ttl_s]
                for item in batch:
                    args += [item.seq, self._packed(item)]
                async with asyncio.timeout(self._write_timeout_s):
                    written = await self._append(
                        keys=[self._log_key], args=args, client=self._redis
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down, paused or failing over: keep order, retry
                await asyncio.sleep(self._failed(exc))
                continue
            self._written(batch, int(written))
        self._idle.set()

    def _failed(self, exc: Exception) -> float:
        """Account for a failed write; the delay before the next try."""
        self.stats.failures += 1
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.stats.outages += 1
            log.warning(
                "session %s: writing events to Redis failed (%s: %s); holding them (up to %d "
                "events / %d bytes) and retrying until it works",
                self.session_id,
                type(exc).__name__,
                exc,
                self._max_pending,
                self._max_pending_bytes,
            )
        else:
            log.debug(
                "session %s: write attempt %d failed: %r", self.session_id, self._failures, exc
            )
        delay = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2.0 ** min(self._failures, 10))
        return delay * (0.5 + random.random() / 2)

    def _written(self, batch: list[_Item], written: int) -> None:
        for _ in range(min(len(batch), len(self._pending))):
            self._pending_bytes -= self._pending.popleft().size
        self._sent = 0
        self.stats.written += written
        self.stats.resent += len(batch) - written
        self._failures = 0
        if self._down_since is not None:
            self.stats.recovered_at = time.monotonic()
            self.stats.last_outage_s = self.stats.recovered_at - self._down_since
            log.warning(
                "session %s: Redis is taking events again after %.1f s; %d were held at most, "
                "%d dropped",
                self.session_id,
                self.stats.last_outage_s,
                self._outage_peak,
                self._outage_lost,
            )
            self._down_since = None
        if self._dropping and len(self._pending) < self._max_pending // 2:
            self._dropping = False
        if not self._pending:
            self._outage_peak = self._outage_lost = 0


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
