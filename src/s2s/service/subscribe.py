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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..log import logger
from . import keys
from .envelope import Envelope
from .eventlog import read_log

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["SubscriptionHub"]

log = logger.getChild("subscribe")

#: Live envelopes held per subscriber before it must catch up from the log instead.
QUEUE_LIMIT = 4096


@dataclass(eq=False, slots=True)
class _Subscriber:
    queue: asyncio.Queue[Envelope | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False


class SubscriptionHub:
    """Multiplexes many session subscriptions over one pub/sub connection."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub | None = None
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

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
                self._reader = asyncio.get_running_loop().create_task(self._read())

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

    async def _read(self) -> None:
        failures = 0
        while self._subscribers:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: resubscribe and let everyone catch up
                failures += 1
                log.warning("pub/sub connection failed (%s); resubscribing", exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**failures))
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            try:
                envelope = Envelope.unpack(message["data"])
            except Exception:
                log.exception("dropping an undecodable envelope on %s", channel)
                continue
            for sub in list(self._subscribers.get(channel, ())):
                if sub.queue.qsize() >= QUEUE_LIMIT:
                    sub.overflowed = True  # it will catch up from the log
                else:
                    sub.queue.put_nowait(envelope)

    async def _resubscribe(self) -> None:
        async with self._lock:
            with contextlib.suppress(Exception):
                if self._pubsub is not None:
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = self._redis.pubsub()
            channels = list(self._subscribers)
            if channels:
                try:
                    await self._pubsub.subscribe(*channels)
                except Exception as exc:
                    log.warning("resubscribe failed (%s); will retry", exc)
            for subs in self._subscribers.values():
                for sub in subs:
                    sub.queue.put_nowait(None)  # "check the log now"

    @contextlib.asynccontextmanager
    async def subscribe(
        self, session_id: str, after_seq: int = 0
    ) -> AsyncIterator[AsyncIterator[Envelope]]:
        """``async with hub.subscribe(sid, after_seq) as events: async for e in events: ...``"""
        channel = keys.events_channel(session_id)
        sub = _Subscriber()
        await self._add(channel, sub)
        try:
            yield self._iterate(session_id, sub, after_seq)
        finally:
            await self._remove(channel, sub)

    async def _iterate(
        self, session_id: str, sub: _Subscriber, after_seq: int
    ) -> AsyncIterator[Envelope]:
        last = after_seq
        async for envelope in self._catch_up(session_id, last, None):
            last = envelope.seq
            yield envelope
        while True:
            item = await sub.queue.get()
            if item is None or sub.overflowed:
                sub.overflowed = False
                async for envelope in self._catch_up(session_id, last, None):
                    last = envelope.seq
                    yield envelope
                if item is None:
                    continue
            if item.seq <= last:
                continue  # already delivered (from the log or twice)
            if item.seq > last + 1:
                async for envelope in self._catch_up(session_id, last, item.seq - 1):
                    last = envelope.seq
                    yield envelope
            last = item.seq
            yield item

    async def _catch_up(
        self, session_id: str, last: int, until: int | None
    ) -> AsyncIterator[Envelope]:
        found = await read_log(self._redis, session_id, last, until_seq=until)
        expected = last + 1
        for envelope in found:
            if envelope.seq > expected:
                yield _lost(session_id, expected, envelope.seq - 1)
            yield envelope
            expected = envelope.seq + 1
        if until is not None and expected <= until:
            yield _lost(session_id, expected, until)


def _lost(session_id: str, first: int, last: int) -> Envelope:
    log.warning("session %s: events %d-%d are no longer in the replay log", session_id, first, last)
    return Envelope(session_id, last, 0.0, "events_lost", {"first": first, "last": last})
