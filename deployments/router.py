"""Finding a session's actor and its media channel from an ingress replica.

The router keeps, per session, the actor handle and one media channel, in bounded caches that
drop a session's entries when the call ends (:meth:`SessionRouter.forget`) or when the cache is
full (least recently used first). Every Ray call it makes has a timeout, and the blocking ones
(``ray.get_actor``, actor creation, ``ray.kill``) run in a small thread pool, never on the
replica's event loop.

Nothing the caller sent is lost when a channel fails. A channel that fails by itself (the actor
died, was frozen or partitioned: its heartbeats stop; or it dropped) is recovered at once in the
background: the actor is probed (``ping`` within :data:`PROBE_S`); one that does not answer is
killed and replaced from its saved state, and the frames the old channel never got acknowledged
are resent on the new one, where the actor's input positions drop what it already had.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors import SessionHandle, SessionSpec, get_or_create, lookup
from s2s.errors import ProviderConnectionError
from s2s.log import logger
from s2s.service.config import ServiceConfig
from s2s.service.media import Endpoint, MediaClient
from s2s.service.state import ENDED, SessionStore

from .errors import ApiError, error_for

__all__ = ["BoundedCache", "SessionRouter"]

log = logger.getChild("ingress")

#: Seconds a suspect actor has to answer a ping before it is replaced.
PROBE_S = 1.0


class BoundedCache[K, V]:
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int, on_evict: Callable[[V], None] | None = None) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size
        self._on_evict = on_evict

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            _, evicted = self._items.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(evicted)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class SessionRouter:
    """Actor lookup, replacement and media channels for one replica."""

    def __init__(self, config: ServiceConfig, store: SessionStore, *, cache_size: int = 10_000):
        self.config = config
        self.store = store
        self.timeout = config.serve.actor_call_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s2s-ray")
        self._actors: BoundedCache[str, SessionHandle] = BoundedCache(cache_size)
        self._channels: BoundedCache[str, MediaClient] = BoundedCache(
            cache_size, on_evict=lambda c: _close_later(c)
        )
        self._locks: BoundedCache[str, asyncio.Lock] = BoundedCache(cache_size)
        #: Frames of a failed channel waiting for the next one (per session).
        self._orphans: BoundedCache[str, list[tuple[int | None, bytes]]] = BoundedCache(cache_size)
        self._metas: BoundedCache[str, dict[str, Any]] = BoundedCache(cache_size)
        #: The node a session's failed actor ran on: its replacement goes elsewhere.
        self._avoid: BoundedCache[str, str] = BoundedCache(cache_size)
        self._recoveries: set[asyncio.Task[None]] = set()
        self._starts = asyncio.Semaphore(config.serve.max_concurrent_starts)
        #: Recoveries done: (session id, seconds from the failure to a working channel).
        self.recovered: list[tuple[str, float]] = []

    # -- Ray, off the event loop -----------------------------------------------------------------

    async def run_blocking[T](self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the router's thread pool, bounded by the actor-call timeout."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._pool, fn, *args), self.timeout)

    async def lookup(self, session_id: str) -> SessionHandle | None:
        """The live actor of ``session_id`` (cached), or None."""
        handle = self._actors.get(session_id)
        if handle is None:
            handle = await self.run_blocking(lookup, session_id, self.config)
            if handle is not None:
                self._actors.put(session_id, handle)
        return handle

    async def call(
        self, handle: SessionHandle, method: str, *args: Any, within: float | None = None
    ) -> Any:
        """``handle.method.remote(*args)``, awaited with a timeout."""
        ref = getattr(handle, method).remote(*args)
        return await asyncio.wait_for(ref, within or self.timeout)

    async def start(self, spec: SessionSpec, avoid_node: str | None = None) -> dict[str, Any]:
        """Create (or join) the session's actor and start it, bounded by ``start_timeout_s``.

        At most ``serve.max_concurrent_starts`` run at once; the wait counts against the
        timeout. On any failure the actor is killed (its slot and name freed) and an ApiError
        raised.
        """
        handle: SessionHandle | None = None
        try:
            async with asyncio.timeout(self.config.serve.start_timeout_s), self._starts:
                created = await self.run_blocking(get_or_create, spec, self.config, avoid_node)
                handle = created
                info: dict[str, Any] = await created.start.remote()
        except BaseException as exc:
            if handle is None:
                handle = await self.lookup(spec.session_id)  # created after the timeout hit?
            if handle is not None:
                await self.kill(handle)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise error_for(exc) from exc
        self._actors.put(spec.session_id, handle)
        return info

    async def kill(self, handle: SessionHandle) -> None:
        """End an actor at once (a start that failed or timed out); never raises."""
        with contextlib.suppress(Exception):
            await self.run_blocking(lambda: ray.kill(handle, no_restart=True))

    # -- routing ---------------------------------------------------------------------------------

    async def actor(self, session_id: str, meta: dict[str, Any]) -> SessionHandle:
        """The session's actor; a replacement (continuing the saved call) if the actor died."""
        handle = await self.lookup(session_id)
        if handle is not None:
            return handle
        if meta.get("status") in ENDED:
            raise ApiError(
                410,
                "closed",
                f"session {session_id!r} has ended ({meta.get('closed_reason', 'closed')})",
            )
        log.warning(
            "session %s has no actor; starting a replacement from its saved state", session_id
        )
        await self.start(SessionSpec.from_dict(meta["spec"]), self._avoid.pop(session_id))
        handle = self._actors.get(session_id)
        assert handle is not None
        return handle

    async def outside_channel(self, session_id: str) -> MediaClient | None:
        """A channel to a live actor this cluster's Ray cannot see, or None.

        During a rollout a reconnecting caller lands on the new cluster while the call's actor
        still runs on the old one. Its media channel, advertised in Redis for as long as its
        lease, is reachable across clusters; starting a replacement instead would give the call
        two actors. An advertisement nobody answers belongs to a dead actor: None.
        """
        if await self.lookup(session_id) is not None:
            return None
        media = await self.store.advertised_media(session_id)
        if media is None:
            return None
        endpoint = Endpoint.from_dict(media)
        client = self._client(session_id, endpoint)
        try:
            await client.connect()
        except ProviderConnectionError:
            log.warning("session %s: its advertised actor does not answer", session_id)
            return None
        log.info(
            "session %s: its actor runs outside this cluster; reached at %s:%d",
            session_id,
            endpoint.host,
            endpoint.port,
        )
        return client

    def _client(self, session_id: str, endpoint: Endpoint) -> MediaClient:
        return MediaClient(endpoint, on_lost=lambda client, why: self._lost(session_id, why))

    async def channel(self, session_id: str, meta: dict[str, Any]) -> MediaClient:
        """A working channel to the session's actor (a replacement's, if it died), carrying
        first whatever a failed channel had not got acknowledged."""
        self._metas.put(session_id, meta)
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks.put(session_id, lock)
        async with lock:
            client = self._channels.get(session_id)
            if client is not None and client.connected:
                return client
            carried = self._orphans.pop(session_id) or []
            if client is not None:
                carried += client.unacked()
                self._channels.pop(session_id)
            try:
                client = await self._connect(session_id, meta)
                await client.adopt(carried)
            except BaseException:
                if carried:
                    self._orphans.put(session_id, carried)
                raise
            if carried:
                log.info(
                    "session %s: %d frames not yet saved by the actor resent on a new channel",
                    session_id,
                    len(carried),
                )
            self._channels.put(session_id, client)
            return client

    async def _connect(self, session_id: str, meta: dict[str, Any]) -> MediaClient:
        outside = await self.outside_channel(session_id)
        if outside is not None:
            return outside
        for attempt in range(2):
            handle = await self.actor(session_id, meta)
            try:
                endpoint = await self.call(handle, "media_endpoint")
                client = self._client(session_id, Endpoint.from_dict(endpoint))
                await client.connect()
            except (RayActorError, ProviderConnectionError, TimeoutError) as exc:
                self._actors.pop(session_id)
                if attempt:
                    raise error_for(exc) from exc
                await asyncio.sleep(0.2)
                continue
            return client
        raise ApiError(503, "session_unavailable", "cannot reach the session", retry_after=1)

    def _lost(self, session_id: str, reason: str) -> None:
        """A channel failed by itself: recover it now, not at the caller's next frame."""
        channel = self._channels.get(session_id)
        if channel is not None and channel.bye is not None:
            log.info("session %s: its actor closed the channel (%s)", session_id, channel.bye)
            return
        log.warning("session %s: media channel lost (%s); recovering", session_id, reason)
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self._recover(session_id))
            self._recoveries.add(task)
            task.add_done_callback(self._recoveries.discard)

    async def _recover(self, session_id: str) -> None:
        began = time.monotonic()
        try:
            meta = await self.store.meta(session_id) or self._metas.get(session_id)
            if meta is None or meta.get("status") in ENDED:
                await self.forget(session_id)
                return
            handle = self._actors.get(session_id)
            if handle is not None and not await self._answers(handle):
                log.warning("session %s: its actor does not answer; replacing it", session_id)
                self._actors.pop(session_id)
                media = await self.store.advertised_media(session_id)
                if media is not None and media.get("node_id"):
                    self._avoid.put(session_id, str(media["node_id"]))
                await self.store.revoke(session_id)  # fenced off, should it wake up
                await self.kill(handle)
            await self.channel(session_id, meta)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the caller's next frame tries again
            log.warning("session %s: recovery failed: %r", session_id, exc)
            return
        took = time.monotonic() - began
        self.recovered.append((session_id, took))
        del self.recovered[:-100]
        log.info("session %s: media channel recovered in %.2f s", session_id, took)

    async def _answers(self, handle: SessionHandle) -> bool:
        try:
            return bool(await self.call(handle, "ping", within=PROBE_S))
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    def acked_position(self, session_id: str) -> int:
        """The input position the session's actor has saved with its state (0 if unknown): a
        client may forget what it sent up to here."""
        channel = self._channels.get(session_id)
        return channel.durable if channel is not None else 0

    async def input_position(self, session_id: str, meta: dict[str, Any]) -> int:
        """Where a (re)connecting client resumes its input: after the highest position the
        session's actor has saved with its state. Input resent between that and what the actor
        already handled is dropped by the actor (and kept here for a replacement)."""
        channel = await self.channel(session_id, meta)
        return channel.durable

    async def send(
        self,
        session_id: str,
        meta: dict[str, Any],
        kind: str,
        payload: Any = None,
        received_at: float | None = None,
        *,
        position: int | None = None,
        confirm: bool = False,
    ) -> None:
        """Send one input to the session's actor; with ``confirm``, return once it is handled.

        Raises ApiError 503 if the session cannot be reached (the frame is then kept for the
        next channel only if it had been written).
        """
        for attempt in range(2):
            channel = await self.channel(session_id, meta)
            try:
                number = await channel.send(kind, payload, received_at, position)
            except ProviderConnectionError:  # closed before the frame was written: send again
                if attempt:
                    raise ApiError(
                        503, "session_unavailable", "the session's channel dropped", retry_after=1
                    ) from None
                continue
            if confirm:
                await self._confirm(session_id, meta, channel, number)
            return

    async def _confirm(
        self, session_id: str, meta: dict[str, Any], channel: MediaClient, number: int
    ) -> None:
        """Wait until frame ``number`` is handled, following it to the next channel if this one
        fails first (it is resent there, with everything else unacknowledged)."""
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    await channel.wait_acked(number)
                except ProviderConnectionError:
                    channel = await self.channel(session_id, meta)
                    await channel.wait_acked(channel.sent)
        except (ProviderConnectionError, TimeoutError) as exc:
            raise ApiError(
                503, "session_unavailable", "the session did not confirm the input", retry_after=1
            ) from exc

    async def forget(self, session_id: str) -> None:
        """Drop everything this replica holds for a session (its call ended)."""
        self._actors.pop(session_id)
        self._locks.pop(session_id)
        self._orphans.pop(session_id)
        self._metas.pop(session_id)
        channel = self._channels.pop(session_id)
        if channel is not None:
            await channel.close()

    async def aclose(self) -> None:
        for task in list(self._recoveries):
            task.cancel()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._actors.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _close_later(channel: MediaClient) -> None:
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().create_task(channel.close())
