"""Subscribing to session events without losing any: live pub/sub, gaps filled from the log.

One :class:`SubscriptionHub` per process holds one Redis pub/sub connection for all its
subscriptions. :meth:`SubscriptionHub.subscribe` yields a session's envelopes strictly in
sequence order, starting after the sequence number the caller already has:

1. it subscribes to the live channel first (so nothing published meanwhile is missed),
2. reads what it missed from the replay log,
3. then forwards live envelopes, skipping duplicates; a jump in ``seq`` (pub/sub dropped
   something, or the connection was re-established) is filled from the log.

If the log no longer holds the missing range (it is capped), an ``events_lost`` envelope says
which sequence numbers are gone instead of skipping them silently.

``events_lost`` markers are also in the log itself, written by the publisher for events it had
to drop while Redis was unreachable (see :mod:`~s2s.service.eventlog`): the marker for ``f..l``
has ``seq`` ``l`` and stands for all of ``f..l``, so it fills that gap instead of opening one
(no second, bogus loss is reported). A subscriber whose position is inside the range gets the
marker narrowed to the part it has not seen, so every sequence number reaches it exactly once.

Redis going away does not end a subscription: pub/sub reconnects (redis-py's own retries, else
a new connection), every (re)subscription makes the channel's subscribers check the log, and a
log read that fails is retried with backoff until Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..log import logger
from . import keys
from .envelope import Envelope
from .eventlog import read_log

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["SubscriberTooSlow", "SubscriptionHub", "queued_size"]

log = logger.getChild("subscribe")

#: Live envelopes held per subscriber before it must catch up from the log instead.
QUEUE_LIMIT = 4096
#: Bytes (audio, plus a fixed cost per envelope) held per subscriber, by default.
QUEUE_BYTES = 4 * 1024 * 1024
#: What one queued envelope is counted as, beyond its audio.
ENVELOPE_COST = 256


class SubscriberTooSlow(Exception):
    """A subscription made with ``on_overflow="raise"`` fell further behind than its bound."""

    def __init__(self, session_id: str, queued_bytes: int) -> None:
        super().__init__(
            f"subscriber of {session_id} is {queued_bytes} bytes behind the live events"
        )
        self.session_id = session_id
        self.queued_bytes = queued_bytes


def queued_size(envelope: Envelope) -> int:
    """What an envelope is counted as while it waits for a subscriber."""
    audio = envelope.audio
    return ENVELOPE_COST + (len(audio) if audio is not None else 0)


@dataclass(eq=False, slots=True)
class _Subscriber:
    limit: int = QUEUE_BYTES
    queue: asyncio.Queue[Envelope | None] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0
    overflowed: bool = False


class SubscriptionHub:
    """Multiplexes many session subscriptions over one pub/sub connection."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub | None = None
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def queued_bytes(self) -> int:
        """Bytes of live events waiting for this process's subscribers (see :func:`queued_size`)."""
        return sum(sub.queued_bytes for subs in self._subscribers.values() for sub in subs)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _add(self, channel: str, sub: _Subscriber) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            if channel not in self._subscribers:
                self._subscribers[channel] = set()
                await self._pubsub.subscribe(channel)
            self._subscribers[channel].add(sub)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._run_reader())

    async def _remove(self, channel: str, sub: _Subscriber) -> None:
        async with self._lock:
            subs = self._subscribers.get(channel)
            if subs is None:
                return
            subs.discard(sub)
            if not subs:
                del self._subscribers[channel]
                if self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    async def _run_reader(self) -> None:
        """:meth:`_read`, restarted after an unexpected failure (logged): subscribers are woken
        to catch up from the log, so a bug in one message's handling never freezes a feed."""
        while self._subscribers:
            try:
                await self._read()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the event reader failed; restarting it")
                for subs in list(self._subscribers.values()):
                    for sub in subs:
                        sub.queue.put_nowait(None)
                await asyncio.sleep(0.5)

    async def _read(self) -> None:
        failures = 0
        down_since = 0.0
        while self._subscribers:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: resubscribe and let everyone catch up
                failures += 1
                if failures == 1:
                    down_since = time.monotonic()
                    log.warning("pub/sub connection failed (%s); resubscribing", exc)
                await asyncio.sleep(min(1.0, 0.05 * 2**failures))
                if not await self._resubscribe():
                    log.debug("resubscribing failed; will retry")
                continue
            if failures and message is not None:
                log.warning("pub/sub is back after %.1f s", time.monotonic() - down_since)
                failures = 0
            if message is None:
                continue
            channel = message.get("channel")
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if message.get("type") == "subscribe":
                # A (re)subscription, possibly by redis-py's own reconnect: whatever was
                # published while the connection was down is only in the log.
                for sub in self._subscribers.get(channel, ()):
                    sub.queue.put_nowait(None)
                continue
            if message.get("type") != "message":
                continue
            try:
                envelope = Envelope.unpack(message["data"])
            except Exception:
                log.exception("dropping an undecodable envelope on %s", channel)
                continue
            size = queued_size(envelope)
            for sub in list(self._subscribers.get(channel, ())):
                if sub.queue.qsize() >= QUEUE_LIMIT or sub.queued_bytes + size > sub.limit:
                    if not sub.overflowed:  # it will catch up from the log, or be cut off
                        sub.overflowed = True
                        sub.queue.put_nowait(None)  # wakes it up to notice
                else:
                    sub.queued_bytes += size
                    sub.queue.put_nowait(envelope)

    async def _resubscribe(self) -> bool:
        """A new pub/sub connection for every channel (False: Redis did not take it yet).

        Its subscribe confirmations make the subscribers check the log (see :meth:`_read`)."""
        async with self._lock:
            with contextlib.suppress(Exception):
                if self._pubsub is not None:
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = self._redis.pubsub()
            channels = list(self._subscribers)
            if channels:
                try:
                    await self._pubsub.subscribe(*channels)
                except Exception:
                    return False
            return True

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        session_id: str,
        after_seq: int = 0,
        *,
        max_queued_bytes: int = QUEUE_BYTES,
        on_overflow: Literal["catch_up", "raise"] = "catch_up",
    ) -> AsyncIterator[AsyncIterator[Envelope]]:
        """``async with hub.subscribe(sid, after_seq) as events: async for e in events: ...``

        Live envelopes wait for the subscriber in a queue of at most ``max_queued_bytes``
        (see :func:`queued_size`). Past it the subscriber either catches up from the log when
        it reads again (``"catch_up"``, a dashboard) or gets :class:`SubscriberTooSlow` at its
        next read (``"raise"``, a socket that should be closed so its client resumes later).
        """
        channel = keys.events_channel(session_id)
        sub = _Subscriber(limit=max_queued_bytes)
        await self._add(channel, sub)
        try:
            yield self._iterate(session_id, sub, after_seq, on_overflow == "raise")
        finally:
            await self._remove(channel, sub)

    async def _iterate(
        self, session_id: str, sub: _Subscriber, after_seq: int, strict: bool
    ) -> AsyncIterator[Envelope]:
        last = after_seq
        async for envelope in self._catch_up(session_id, last, None):
            last = envelope.seq
            yield envelope
        while True:
            item = await sub.queue.get()
            if item is not None:
                sub.queued_bytes -= queued_size(item)
            if sub.overflowed and strict:
                raise SubscriberTooSlow(session_id, sub.limit)
            if item is None or sub.overflowed:
                sub.overflowed = False
                async for envelope in self._catch_up(session_id, last, None):
                    last = envelope.seq
                    yield envelope
                if item is None:
                    continue
            if item.seq <= last:
                continue  # already delivered (from the log or twice)
            first = _first_seq(item)
            if first > last + 1:
                async for envelope in self._catch_up(session_id, last, first - 1):
                    last = envelope.seq
                    yield envelope
            item = _from(item, last + 1)
            last = item.seq
            yield item

    async def _catch_up(
        self, session_id: str, last: int, until: int | None
    ) -> AsyncIterator[Envelope]:
        found = await self._read_log(session_id, last, until)
        expected = last + 1
        for envelope in found:
            if _first_seq(envelope) > expected:
                yield _lost(session_id, expected, _first_seq(envelope) - 1)
            yield _from(envelope, expected)
            expected = envelope.seq + 1
        if until is not None and expected <= until:
            yield _lost(session_id, expected, until)

    async def _read_log(self, session_id: str, last: int, until: int | None) -> list[Envelope]:
        """:func:`read_log`, retried (with backoff) while Redis does not answer."""
        failures = 0
        started = time.monotonic()
        while True:
            try:
                found = await read_log(self._redis, session_id, last, until_seq=until)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning(
                        "session %s: reading the replay log failed (%s); retrying",
                        session_id,
                        exc,
                    )
                await asyncio.sleep(min(1.0, 0.05 * 2**failures))
                continue
            if failures:
                log.warning(
                    "session %s: read the replay log after %.1f s of failures",
                    session_id,
                    time.monotonic() - started,
                )
            return found


def _first_seq(envelope: Envelope) -> int:
    """The first sequence number ``envelope`` stands for (an ``events_lost`` covers a range)."""
    if envelope.type != "events_lost":
        return envelope.seq
    first = envelope.data.get("first")
    return first if isinstance(first, int) and 0 < first <= envelope.seq else envelope.seq


def _from(envelope: Envelope, expected: int) -> Envelope:
    """``envelope``, an ``events_lost`` narrowed to start at ``expected`` if it began before."""
    if envelope.type != "events_lost" or _first_seq(envelope) >= expected:
        return envelope
    data = {**envelope.data, "first": expected}
    return Envelope(envelope.session_id, envelope.seq, envelope.ts, envelope.type, data)


def _lost(session_id: str, first: int, last: int) -> Envelope:
    log.warning("session %s: events %d-%d are no longer in the replay log", session_id, first, last)
    return Envelope(session_id, last, 0.0, "events_lost", {"first": first, "last": last})
