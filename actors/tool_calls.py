"""A session actor's tool calls: routed to worker pools, each answered to the model exactly once.

The ledger keeps every call the model made and has not had answered (``pending``: worker calls
with their pool and deadline, and client-side calls), the ids it answered recently
(``answered``, bounded) and how far it has read the session's result stream (``cursor``). A
result is applied by sending it to the session *first* and only then marking the call answered,
so a send that fails leaves the call pending. Duplicates (a revived worker's second result, a
client sending a result twice, a result after the timeout's error result) are dropped. A call's
timeout is armed before it is submitted, so a submission stuck on Redis still ends in a result.

Across a replacement actor: the state saved after every applied result carries ``pending``,
``answered`` and ``cursor``; a result the dead actor applied after its last save is found in the
replay log (:meth:`ToolLedger.reconcile`) and given to the new provider session without being
published twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import s2s
from s2s.errors import InvalidInputError, SessionClosedError
from s2s.log import logger
from s2s.service.config import ServiceConfig
from s2s.service.envelope import Envelope
from s2s.service.eventlog import EventLog
from s2s.service.metrics import Metrics
from s2s.tasks import TaskSet
from s2s.tools.queue import ToolRequest, read_results, submit

from .spec import SessionSpec

__all__ = ["ToolLedger"]

log = logger.getChild("actor")

#: Answered call ids remembered to recognise duplicates.
ANSWERED_KEPT = 256


class ToolLedger:
    def __init__(
        self,
        session_id: str,
        spec: SessionSpec,
        service: ServiceConfig,
        *,
        redis: Any,
        session: s2s.Session,
        events: EventLog,
        metrics: Metrics,
        tasks: TaskSet,
        saved: dict[str, Any],
        save_now: Callable[[], Awaitable[None]],
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``on_result`` hears of every result given to the model (the ``tool_result`` data)."""
        self.session_id = session_id
        self._spec = spec
        self._service = service
        self._redis = redis
        self._session = session
        self._events = events
        self._metrics = metrics
        self._tasks = tasks
        self._save_now = save_now
        self._on_result = on_result
        self.pending: dict[str, dict[str, Any]] = dict(saved.get("pending_tools") or {})
        self.answered: list[str] = list(saved.get("answered_tools") or [])
        self.cursor: str = str(saved.get("tool_cursor") or "0-0")
        self._lock = asyncio.Lock()

    def state(self) -> dict[str, Any]:
        return {
            "pending_tools": self.pending,
            "answered_tools": self.answered,
            "tool_cursor": self.cursor,
        }

    async def reconcile(self, published: list[Envelope]) -> None:
        """After a replacement: results the dead actor published after its last save (from the
        replay log) go to the new provider session, without a second ``tool_result`` event; the
        timeouts of the calls still pending are armed again."""
        for envelope in published:
            call_id = str(envelope.data.get("call_id", ""))
            if envelope.type == "tool_result" and call_id in self.pending:
                await self._session.send_tool_result(
                    s2s.ToolResult(
                        call_id,
                        str(envelope.data.get("content", "")),
                        bool(envelope.data.get("is_error", False)),
                    )
                )
                self._answer(call_id)
                log.info("result for %s was applied before the replacement; carried over", call_id)
        for call_id, pending in self.pending.items():
            if pending.get("pool"):
                self._arm_timeout(call_id, max(0.0, pending["deadline"] - time.time()))

    async def route(self, call: s2s.ToolCall, traceparent: str = "") -> None:
        """Track a call the model made; submit it to its pool (client tools wait for the client).
        ``traceparent``: the call's tool span, for the worker's span to join the trace."""
        pool = self._spec.tool_pools.get(call.name)
        if pool is None:
            self.pending[call.id] = {"name": call.name, "pool": None, "started": time.time()}
            return
        timeout = self._service.tool_pools[pool].timeout_s
        deadline = time.time() + timeout
        self.pending[call.id] = {
            "name": call.name,
            "pool": pool,
            "deadline": deadline,
            "started": time.time(),
        }
        self._arm_timeout(call.id, timeout)
        request = ToolRequest(
            self.session_id,
            call.id,
            call.name,
            call.arguments,
            pool,
            deadline,
            tenant=self._spec.tenant,
            metadata=self._spec.metadata,
            traceparent=traceparent,
        )
        await submit(self._redis, request)

    def cancelled(self, call_ids: tuple[str, ...] | list[str]) -> None:
        for call_id in call_ids:
            if self.pending.pop(call_id, None) is not None:
                self._remember(call_id)

    def _arm_timeout(self, call_id: str, delay: float) -> None:
        async def expire() -> None:
            await asyncio.sleep(delay)
            pending = self.pending.get(call_id)
            if pending is not None:
                timeout = self._service.tool_pools[pending["pool"]].timeout_s
                await self.apply(
                    call_id,
                    f"{pending['name']} did not answer within {timeout:g} s; "
                    "tell the caller it is unavailable right now",
                    True,
                    source="timeout",
                )

        self._tasks.spawn(expire())

    async def read(self, closing: Callable[[], bool]) -> None:
        """Apply results from the session's result stream until ``closing()``."""
        while not closing():
            try:
                cursor, outcomes = await read_results(
                    self._redis, self.session_id, self.cursor, 1000
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading tool results failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for outcome in outcomes:
                await self.apply(
                    outcome.call_id,
                    outcome.content,
                    outcome.is_error,
                    source="worker",
                    worker=outcome.worker,
                    attempt=outcome.attempt,
                )
            self.cursor = cursor

    async def apply(
        self,
        call_id: str,
        content: str,
        is_error: bool,
        *,
        source: str,
        worker: str = "",
        attempt: int = 1,
    ) -> bool:
        """Give the model a result, once per call id; False for a duplicate or late result.

        A client's result for a call the model never made (or that a worker pool serves) is an
        InvalidInputError; a duplicate of one already answered is dropped quietly.
        """
        async with self._lock:
            pending = self.pending.get(call_id)
            if pending is None or (source == "client" and pending.get("pool")):
                if source == "client" and call_id not in self.answered:
                    raise InvalidInputError(
                        f"tool_result for {call_id!r}: the model has no pending client tool "
                        "call with that id"
                    )
                log.info("dropping a duplicate or late result for %s (from %s)", call_id, source)
                return False
            try:
                await self._session.send_tool_result(s2s.ToolResult(call_id, content, is_error))
            except SessionClosedError:
                return False  # still pending: a replacement will apply it
            self._answer(call_id)
            latency = time.time() - pending["started"]
            result = {
                "call_id": call_id,
                "name": pending["name"],
                "content": content,
                "is_error": is_error,
                "source": source,
                "worker": worker,
                "attempt": attempt,
                "latency_ms": round(latency * 1000, 1),
            }
            self._events.publish("tool_result", result)
            if self._on_result is not None:
                self._on_result(result)
            if pending.get("pool"):
                self._metrics.observe(
                    "s2s_tool_latency_seconds", latency, pool=pending["pool"], tool=pending["name"]
                )
        try:
            await self._save_now()
        except Exception as exc:  # Redis down: the periodic save catches up
            log.warning("saving state after the result for %s failed: %s", call_id, exc)
        return True

    def _answer(self, call_id: str) -> None:
        self.pending.pop(call_id, None)
        self._remember(call_id)

    def _remember(self, call_id: str) -> None:
        self.answered.append(call_id)
        del self.answered[:-ANSWERED_KEPT]
