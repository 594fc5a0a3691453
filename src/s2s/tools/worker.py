"""A tool-worker process: runs one pool's calls from its Redis Stream.

``s2s tool-worker --pool NAME`` runs :class:`ToolWorker` until SIGTERM/SIGINT, then finishes
the calls in progress (acknowledging them) before exiting. Several workers share a pool through
the consumer group; each claims calls another worker left unacknowledged for ``claim_idle_s``
(a worker that died mid-call), and sends a call that failed ``max_deliveries`` times to the
dead-letter stream with an error result for the model.

A worker heartbeats the calls it is running (``XCLAIM ... JUSTID`` every third of
``claim_idle_s`` resets their idle time), so a call that legitimately runs longer than
``claim_idle_s`` is not taken from a live worker and run twice; only a dead worker's calls go
idle long enough to be reclaimed.

Each run gets a :class:`~s2s.tools.context.ToolContext` built from the request (tenant, session,
call id, delivery count, caller metadata, deadline) for the tools that take one. A tool raising
:class:`~s2s.tools.decorator.ToolError` answers with its message as an error result.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..log import logger
from ..service import keys
from ..service.config import RedisSettings, ToolPoolSettings
from ..service.metrics import Metrics
from .context import ToolContext
from .decorator import ToolArgumentError, ToolError
from .queue import ToolOutcome, ToolRequest, post_result
from .registry import ToolRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["GROUP", "ToolWorker"]

log = logger.getChild("tool_worker")

GROUP = "workers"


class ToolWorker:
    """Consumes one pool's call stream."""

    def __init__(
        self,
        redis: Redis,
        pool: str,
        settings: ToolPoolSettings,
        registry: ToolRegistry,
        *,
        result_ttl_s: int = 3600,
        name: str | None = None,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.settings = settings
        self.registry = registry
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._stream = keys.tool_calls(pool)
        self._result_ttl_s = result_ttl_s
        self._running: set[asyncio.Task[None]] = set()
        self._in_progress: set[Any] = set()  # entry ids this worker is running
        self._metrics = Metrics()
        self.completed = 0

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: another worker made it first
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        log.info(
            "tool worker %s serving pool %r: %s",
            self.name,
            self.pool,
            ", ".join(self.registry.names),
        )
        claim_every = max(0.2, self.settings.claim_idle_s / 2)
        heartbeat_every = self.settings.claim_idle_s / 3
        next_claim = time.monotonic()
        next_flush = time.monotonic() + 5
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(stop, heartbeat_every))
        while not stop.is_set():
            free = self.settings.concurrency - len(self._running)
            if free <= 0:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED, timeout=1.0)
                continue
            if time.monotonic() >= next_claim:
                await self._claim(free)
                next_claim = time.monotonic() + claim_every
                continue
            reply: Any = await self.redis.xreadgroup(
                GROUP,
                self.name,
                {self._stream: ">"},
                count=free,
                block=int(min(1000, claim_every * 1000)),
            )
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._start(entry_id, fields, delivered=1)
            if time.monotonic() >= next_flush:
                await self._metrics.flush(self.redis)
                next_flush = time.monotonic() + 5
        if self._running:
            log.info("finishing %d calls before exiting", len(self._running))
            await asyncio.wait(self._running)
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await self._metrics.flush(self.redis)

    async def _heartbeat(self, stop: asyncio.Event, every: float) -> None:
        """Keep the calls in progress ours: reset their idle time before anyone may claim them."""
        while True:
            await asyncio.sleep(every)
            ids = list(self._in_progress)
            if not ids:
                continue
            try:
                await self.redis.xclaim(self._stream, GROUP, self.name, 0, ids, justid=True)
            except Exception as exc:  # Redis hiccup: the next beat tries again
                log.warning("heartbeat for %d calls failed: %s", len(ids), exc)

    async def _claim(self, count: int) -> None:
        reply: Any = await self.redis.xautoclaim(
            self._stream,
            GROUP,
            self.name,
            int(self.settings.claim_idle_s * 1000),
            start_id="0-0",
            count=count,
        )
        claimed = reply[1] if reply else []
        for entry_id, fields in claimed:
            if not fields:
                continue  # deleted by trimming
            delivered = await self._deliveries(entry_id)
            log.warning(
                "reclaimed call %s from a worker that did not finish it (attempt %d)",
                entry_id,
                delivered,
            )
            self._start(entry_id, fields, delivered=delivered)

    async def _deliveries(self, entry_id: Any) -> int:
        info: Any = await self.redis.xpending_range(
            self._stream, GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(info[0]["times_delivered"]) if info else 1

    def _start(self, entry_id: Any, fields: dict[bytes, bytes], *, delivered: int) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(entry_id, fields, delivered))
        self._running.add(task)
        self._in_progress.add(entry_id)

        def finished(done: asyncio.Task[None]) -> None:
            self._running.discard(done)
            self._in_progress.discard(entry_id)

        task.add_done_callback(finished)

    async def _handle(self, entry_id: Any, fields: dict[bytes, bytes], delivered: int) -> None:
        try:
            request = ToolRequest.unpack(fields[b"r"])
        except Exception:
            log.exception("dropping a malformed call entry %s", entry_id)
            await self.redis.xack(self._stream, GROUP, entry_id)
            return
        started = time.time()
        remaining = request.deadline - started
        if remaining <= 0:  # the session already told the model this call timed out
            await self.redis.xack(self._stream, GROUP, entry_id)
            self._metrics.inc(
                "s2s_tool_calls", pool=self.pool, tool=request.name, outcome="expired"
            )
            return
        if delivered > self.settings.max_deliveries:
            await self._dead_letter(entry_id, request, delivered)
            return
        context = ToolContext(
            tenant=request.tenant,
            session_id=request.session_id,
            call_id=request.call_id,
            attempt=delivered,
            metadata=request.metadata,
            deadline=request.deadline,
        )
        content, is_error, outcome = await self._run(request, context, remaining)
        result = ToolOutcome(
            request.call_id, content, is_error, self.name, (time.time() - started) * 1000, delivered
        )
        await post_result(self.redis, request.session_id, result, self._result_ttl_s)
        await self.redis.xack(self._stream, GROUP, entry_id)  # only after the result is safe
        self.completed += 1
        self._metrics.inc("s2s_tool_calls", pool=self.pool, tool=request.name, outcome=outcome)

    async def _run(
        self, request: ToolRequest, context: ToolContext, remaining: float
    ) -> tuple[str, bool, str]:
        if request.name not in self.registry:
            return f"tool {request.name!r} is not served by pool {self.pool!r}", True, "unknown"
        tool = self.registry.get(request.name)
        try:
            content = await asyncio.wait_for(tool.run(request.arguments, context), remaining)
        except ToolArgumentError as exc:
            return f"invalid arguments for {request.name}: {exc}", True, "bad_arguments"
        except ToolError as exc:
            return str(exc) or f"{request.name} refused the call", True, "refused"
        except TimeoutError:
            return (
                f"{request.name} did not finish within {self.settings.timeout_s:g} s",
                True,
                "timeout",
            )
        except Exception as exc:
            log.exception("tool %s failed", request.name)
            return f"{request.name} failed: {type(exc).__name__}: {exc}", True, "error"
        return content, False, "ok"

    async def _dead_letter(self, entry_id: Any, request: ToolRequest, delivered: int) -> None:
        log.error(
            "call %s (%s) failed %d times; moving it to the dead-letter stream",
            request.call_id,
            request.name,
            delivered - 1,
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(keys.tool_dead_letters(self.pool), {"r": request.pack(), "worker": self.name})
            await pipe.execute()
        message = f"{request.name} could not be run (it failed {delivered - 1} times)"
        outcome = ToolOutcome(request.call_id, message, True, self.name, 0.0, delivered)
        await post_result(self.redis, request.session_id, outcome, self._result_ttl_s)
        await self.redis.xack(self._stream, GROUP, entry_id)
        self._metrics.inc(
            "s2s_tool_calls", pool=self.pool, tool=request.name, outcome="dead_letter"
        )


async def run_worker(
    redis_url: str,
    pool: str,
    settings: ToolPoolSettings,
    result_ttl_s: int = 3600,
    redis_settings: RedisSettings | None = None,
) -> None:
    """Serve ``pool`` until SIGINT/SIGTERM (the body of ``s2s tool-worker``)."""
    from ..service.redis_client import connect
    from ..signals import stop_on_signals

    registry = ToolRegistry.from_modules(settings.modules)
    redis = connect(redis_settings or RedisSettings(), redis_url)
    stop = stop_on_signals()
    worker = ToolWorker(redis, pool, settings, registry, result_ttl_s=result_ttl_s)
    try:
        await worker.run(stop)
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()
