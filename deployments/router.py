"""Finding a session's actor and its media channel from an ingress replica.

The router keeps, per session, the actor handle and one media channel, in bounded caches that
drop a session's entries when the call ends (:meth:`SessionRouter.forget`) or when the cache is
full (least recently used first). Every Ray call it makes has a timeout, and the blocking ones
(``ray.get_actor``, actor creation, ``ray.kill``) run in a small thread pool, never on the
replica's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self._starts = asyncio.Semaphore(config.serve.max_concurrent_starts)

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

    async def start(self, spec: SessionSpec) -> dict[str, Any]:
        """Create (or join) the session's actor and start it, bounded by ``start_timeout_s``.

        At most ``serve.max_concurrent_starts`` run at once; the wait counts against the
        timeout. On any failure the actor is killed (its slot and name freed) and an ApiError
        raised.
        """
        handle: SessionHandle | None = None
        try:
            async with asyncio.timeout(self.config.serve.start_timeout_s), self._starts:
                created = await self.run_blocking(get_or_create, spec, self.config)
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
        await self.start(SessionSpec.from_dict(meta["spec"]))
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
        client = MediaClient(endpoint)
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

    async def channel(self, session_id: str, meta: dict[str, Any]) -> MediaClient:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks.put(session_id, lock)
        async with lock:
            client = self._channels.get(session_id)
            if client is not None and client.connected:
                return client
            outside = await self.outside_channel(session_id)
            if outside is not None:
                self._channels.put(session_id, outside)
                return outside
            for attempt in range(2):
                handle = await self.actor(session_id, meta)
                try:
                    endpoint = await self.call(handle, "media_endpoint")
                    client = MediaClient(Endpoint.from_dict(endpoint))
                    await client.connect()
                except (RayActorError, ProviderConnectionError, TimeoutError) as exc:
                    self._actors.pop(session_id)
                    if attempt:
                        raise error_for(exc) from exc
                    await asyncio.sleep(0.2)
                    continue
                self._channels.put(session_id, client)
                return client
        raise ApiError(503, "session_unavailable", "cannot reach the session", retry_after=1)

    async def send(
        self,
        session_id: str,
        meta: dict[str, Any],
        kind: str,
        payload: Any = None,
        received_at: float | None = None,
    ) -> None:
        for attempt in range(2):
            channel = await self.channel(session_id, meta)
            try:
                await channel.send(kind, payload, received_at)
                return
            except ProviderConnectionError:
                self._channels.pop(session_id)
                self._actors.pop(session_id)
                if attempt:
                    raise ApiError(
                        503, "session_unavailable", "the session's channel dropped", retry_after=1
                    ) from None

    async def forget(self, session_id: str) -> None:
        """Drop everything this replica holds for a session (its call ended)."""
        self._actors.pop(session_id)
        self._locks.pop(session_id)
        channel = self._channels.pop(session_id)
        if channel is not None:
            await channel.close()

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._actors.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _close_later(channel: MediaClient) -> None:
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().create_task(channel.close())
