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

With tracing on (``observability.tracing``), a call whose request carries a ``traceparent`` runs
inside an ``s2s.tool.run`` span, a child of the session actor's ``s2s.tool_call`` span (same
trace; sampled as the call was), and its log lines carry the trace and span ids.

**Redis faults.** No loop of the worker dies of an exception: the reading loop and the
heartbeat log the first failure of a run (a Redis error as a warning, anything else with its
traceback) and retry with a capped backoff, logging again when they recover; a consumer group
that vanished (a Redis restarted without its data) is created again. A call's own writes (its
result, then its ``XACK``) are retried until the call's deadline, the log lines carrying the
session id; a call that still could not be acknowledged stays pending and is reclaimed later
(expired by then, it is just acknowledged). After an outage, ``XAUTOCLAIM`` may hand this worker
a call it is still running (its heartbeats could not reach Redis): that call is not started a
second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..log import logger, session_id_var
from ..service import keys
from ..service.config import RedisSettings, ToolPoolSettings, TracingSettings
from ..service.metrics import Metrics
from ..service.redis_client import is_redis_error
from ..service.tracing import Tracing, setup_tracing
from .context import ToolContext
from .decorator import ToolArgumentError, ToolError
from .queue import ToolOutcome, ToolRequest, post_result
from .registry import ToolRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["GROUP", "ToolWorker"]

log = logger.getChild("tool_worker")

GROUP = "workers"

_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0


def _backoff(failures: int) -> float:
    return min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2.0 ** min(failures, 10))


class _Supervisor:
    """Tracks one loop's run of failures: logs its start and its end once, not per retry."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0
        self._since = 0.0

    def failed(self, exc: Exception) -> float:
        """Log (the first failure of a run); the delay before the next try."""
        self.failures += 1
        if self.failures == 1:
            self._since = time.monotonic()
            if is_redis_error(exc):
                log.warning("%s failed (%s: %s); retrying", self.what, type(exc).__name__, exc)
            else:
                log.exception("%s failed unexpectedly; retrying", self.what)
        else:
            log.debug("%s failed again (%r)", self.what, exc)
        return _backoff(self.failures)

    def succeeded(self) -> None:
        if self.failures:
            log.warning(
                "%s works again after %.1f s (%d failures)",
                self.what,
                time.monotonic() - self._since,
                self.failures,
            )
            self.failures = 0


async def _sleep_unless(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


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
        tracing: Tracing | None = None,
    ) -> None:
        self.redis = redis
        self.tracing = tracing
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
        self.recoveries = 0  # runs of failures the reading loop came back from
        self.kept_own = 0  # calls XAUTOCLAIM handed back while this worker still ran them

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: another worker made it first
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        supervisor = _Supervisor(f"tool worker {self.name}: creating the consumer group")
        while not stop.is_set():
            try:
                await self.ensure_group()
            except Exception as exc:  # Redis not there yet: wait for it
                await _sleep_unless(stop, supervisor.failed(exc))
                continue
            supervisor.succeeded()
            break
        if stop.is_set():
            return
        log.info(
            "tool worker %s serving pool %r: %s",
            self.name,
            self.pool,
            ", ".join(self.registry.names),
        )
        heartbeat = asyncio.get_running_loop().create_task(
            self._heartbeat(self.settings.claim_idle_s / 3)
        )
        try:
            await self._serve(stop)
        finally:
            if self._running:
                log.info("finishing %d calls before exiting", len(self._running))
                await asyncio.wait(self._running)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            try:
                await self._metrics.flush(self.redis)
            except Exception as exc:
                log.warning("could not flush the tool metrics on exit: %s", exc)

    async def _serve(self, stop: asyncio.Event) -> None:
        """The reading loop: new calls, and calls other workers left (supervised)."""
        supervisor = _Supervisor(f"tool worker {self.name}: reading pool {self.pool!r}")
        claim_every = max(0.2, self.settings.claim_idle_s / 2)
        next_claim = time.monotonic()
        next_flush = time.monotonic() + 5
        while not stop.is_set():
            try:
                free = self.settings.concurrency - len(self._running)
                if free <= 0:
                    await asyncio.wait(
                        self._running, return_when=asyncio.FIRST_COMPLETED, timeout=1.0
                    )
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
                    next_flush = time.monotonic() + 5
                    await self._metrics.flush(self.redis)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = supervisor.failed(exc)
                if "NOGROUP" in str(exc):  # the stream or group is gone (Redis lost its data)
                    with contextlib.suppress(Exception):
                        await self.ensure_group()
                await _sleep_unless(stop, delay)
                continue
            if supervisor.failures:
                supervisor.succeeded()
                self.recoveries += 1
                next_claim = time.monotonic()  # look for calls left while Redis was away

    async def _heartbeat(self, every: float) -> None:
        """Keep the calls in progress ours: reset their idle time before anyone may claim them."""
        supervisor = _Supervisor(f"tool worker {self.name}: heartbeat")
        while True:
            await asyncio.sleep(every if not supervisor.failures else _backoff(supervisor.failures))
            ids = list(self._in_progress)
            if not ids:
                continue
            try:
                await self.redis.xclaim(self._stream, GROUP, self.name, 0, ids, justid=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis hiccup: the next beat tries again, sooner
                supervisor.failed(exc)
                continue
            supervisor.succeeded()

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
            if entry_id in self._in_progress:
                self.kept_own += 1  # ours, still running: its heartbeats missed Redis a while
                continue
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
        """Run one call; nothing it raises is lost (it is logged, the call stays pending)."""
        try:
            await self._process(entry_id, fields, delivered)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s failed unexpectedly; it stays pending for a reclaim", entry_id)

    async def _retry(self, what: str, op: Callable[[], Awaitable[object]], until: float) -> bool:
        """Run ``op`` until it succeeds (True) or ``until`` (unix seconds) passes (False)."""
        failures = 0
        while True:
            try:
                await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if time.time() >= until:
                    log.error("%s failed %d times, giving up: %s", what, failures, exc)
                    return False
                if failures == 1:
                    log.warning("%s failed (%s: %s); retrying", what, type(exc).__name__, exc)
                await asyncio.sleep(_backoff(failures))
                continue
            if failures:
                log.warning("%s succeeded after %d failures", what, failures)
            return True

    async def _ack(self, entry_id: Any, until: float) -> bool:
        return await self._retry(
            f"acknowledging call {entry_id!r}",
            lambda: self.redis.xack(self._stream, GROUP, entry_id),
            until,
        )

    async def _process(self, entry_id: Any, fields: dict[bytes, bytes], delivered: int) -> None:
        try:
            request = ToolRequest.unpack(fields[b"r"])
        except Exception:
            log.exception("dropping a malformed call entry %s", entry_id)
            await self._ack(entry_id, time.time() + 30)
            return
        session_id_var.set(request.session_id)  # this task's log lines carry the session
        started = time.time()
        remaining = request.deadline - started
        if remaining <= 0:  # the session already told the model this call timed out
            await self._ack(entry_id, time.time() + 30)
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
        content, is_error, outcome = await self._traced_run(request, context, remaining)
        result = ToolOutcome(
            request.call_id, content, is_error, self.name, (time.time() - started) * 1000, delivered
        )
        posted = await self._retry(
            f"posting the result of call {request.call_id} (session {request.session_id})",
            lambda: post_result(self.redis, request.session_id, result, self._result_ttl_s),
            request.deadline,  # after it, the session has answered the model without us
        )
        # Acknowledge only once the result is safe; a call left pending is reclaimed (expired
        # by then, it is only acknowledged).
        if not posted or not await self._ack(entry_id, request.deadline):
            return
        self.completed += 1
        self._metrics.inc("s2s_tool_calls", pool=self.pool, tool=request.name, outcome=outcome)

    async def _traced_run(
        self, request: ToolRequest, context: ToolContext, remaining: float
    ) -> tuple[str, bool, str]:
        """:meth:`_run`, inside the call's ``s2s.tool.run`` span when it is traced."""
        if self.tracing is None or not request.traceparent:
            return await self._run(request, context, remaining)
        attributes = {
            "s2s.tool": request.name,
            "s2s.call_id": request.call_id,
            "s2s.session_id": request.session_id,
            "s2s.tenant": request.tenant,
            "s2s.pool": self.pool,
            "s2s.attempt": context.attempt,
            "s2s.worker": self.name,
        }
        with self.tracing.tool_run(request.traceparent, attributes) as span:
            content, is_error, outcome = await self._run(request, context, remaining)
            if span is not None:
                span.set_attribute("s2s.outcome", outcome)
                if is_error:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR, outcome))
        return content, is_error, outcome

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
        dead = keys.tool_dead_letters(self.pool)
        entry: dict[Any, Any] = {"r": request.pack(), "worker": self.name}
        message = f"{request.name} could not be run (it failed {delivered - 1} times)"
        outcome = ToolOutcome(request.call_id, message, True, self.name, 0.0, delivered)
        until = request.deadline
        if not (
            await self._retry(
                f"dead-lettering call {request.call_id}",
                lambda: self.redis.xadd(dead, entry),
                until,
            )
            and await self._retry(
                f"posting the error result of call {request.call_id}",
                lambda: post_result(self.redis, request.session_id, outcome, self._result_ttl_s),
                until,
            )
            and await self._ack(entry_id, until)
        ):
            return
        self._metrics.inc(
            "s2s_tool_calls", pool=self.pool, tool=request.name, outcome="dead_letter"
        )


async def run_worker(
    redis_url: str,
    pool: str,
    settings: ToolPoolSettings,
    result_ttl_s: int = 3600,
    redis_settings: RedisSettings | None = None,
    tracing_settings: TracingSettings | None = None,
) -> None:
    """Serve ``pool`` until SIGINT/SIGTERM (the body of ``s2s tool-worker``); with tracing on,
    the spans still buffered are exported before it returns."""
    from ..service.redis_client import connect
    from ..signals import stop_on_signals

    registry = ToolRegistry.from_modules(settings.modules)
    tracing = setup_tracing(tracing_settings or TracingSettings(), "tool-worker")
    redis = connect(redis_settings or RedisSettings(), redis_url)
    stop = stop_on_signals()
    worker = ToolWorker(redis, pool, settings, registry, result_ttl_s=result_ttl_s, tracing=tracing)
    try:
        await worker.run(stop)
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()
        if tracing is not None:
            try:
                await asyncio.to_thread(tracing.shutdown)
            except Exception as exc:
                log.warning("could not export the last spans on exit: %s", exc)
