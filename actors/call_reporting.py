"""What a session actor tells the world about its call as it happens: turns, a call summary,
contact-centre metrics and traces.

:class:`CallReporter` feeds the call's :class:`~s2s.service.call_watch.CallWatch` (every event
the actor publishes, the caller's text, every tool result applied) and acts on what changed:

* a ``turn`` envelope in the session's event log when a turn completes
  (:class:`~s2s.service.call_records.TurnRecord`);
* the call summary (:class:`~s2s.service.call_records.CallSummary`) in the session record's
  ``call`` field and, as JSON, on the tenant's calls channel (``s2s:tenants:<t>:calls``) and on
  ``s2s:calls``; at most one per 250 ms (the last change always goes out), and once with
  ``ended: true`` when the call ends;
* metrics: ``s2s_response_latency_seconds``, ``s2s_first_audio_seconds``, ``s2s_barge_ins``
  (by provider); and, through :func:`count_event`, what single events count: model audio,
  provider errors by code, resumptions, failovers;
* with ``observability.tracing`` on, the call's spans (:class:`~s2s.service.tracing.CallTrace`),
  whose ``traceparent`` is kept in the record's ``trace`` field for a replacement actor and
  travels with each tool call to the worker.

Reporting never ends a call: a summary Redis could not take is logged and the next one
(which carries everything) tries again, and any other failure of the reporting is logged with
its traceback while the call goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from s2s.errors import S2SError
from s2s.events import EventType, SessionEvent
from s2s.log import logger, tenant_var, trace_var
from s2s.service import keys
from s2s.service.call_watch import CallWatch, Change, SummaryPacer
from s2s.service.config import ServiceConfig
from s2s.service.eventlog import EventLog
from s2s.service.metrics import Metrics
from s2s.service.state import SessionStore
from s2s.service.tracing import CallTrace, Tracing, setup_tracing
from s2s.tasks import TaskSet

from .spec import SessionSpec

__all__ = ["CallReporter", "count_event"]

log = logger.getChild("actor")

#: Longest wait for the last spans to reach the collector when the call ends.
TRACE_FLUSH_S = 5.0


def count_event(metrics: Metrics, event: SessionEvent, provider: str) -> None:
    """Count what ``event`` (from ``provider``, the call's current one) adds to the metrics."""
    kind = event.type
    if kind is EventType.AUDIO_OUTPUT:
        metrics.inc("s2s_audio_out_seconds", event.duration_ms / 1000, provider=provider)
    elif kind is EventType.ERROR and event.error is not None:
        code = str(event.error.code or type(event.error).__name__)
        metrics.inc("s2s_provider_errors", provider=provider, code=code)
    elif kind is EventType.SESSION_RESUMED:
        metrics.inc("s2s_session_resumptions", provider=provider, reason=event.reason or "")
    elif kind is EventType.PROVIDER_SWITCHED:
        metrics.inc(
            "s2s_provider_failovers",
            from_provider=str(event.data.get("from", "")),
            to_provider=provider,
            reason=event.reason or "",
        )


class CallReporter:
    def __init__(
        self,
        session_id: str,
        spec: SessionSpec,
        service: ServiceConfig,
        *,
        model: str,
        store: SessionStore,
        redis: Any,
        events: EventLog,
        metrics: Metrics,
        tasks: TaskSet,
        previous: dict[str, Any] | None = None,
    ) -> None:
        """``previous``: the session record a lost actor left (its ``call`` summary, whose
        counts carry on, and its ``trace``); None for a new call."""
        self.session_id = session_id
        self._spec = spec
        self._store = store
        self._redis = redis
        self._events = events
        self._metrics = metrics
        self._tasks = tasks
        old = previous or {}
        summary = old.get("call") if isinstance(old.get("call"), dict) else None
        now = time.time()
        self.watch = CallWatch(
            session_id,
            spec.tenant,
            spec.provider,
            model,
            now,
            summary if previous is not None else None,
        )
        if previous is not None:
            self.watch.reconnecting(now)
        self._pacer = SummaryPacer()
        self._summary_due: asyncio.TimerHandle | None = None
        self._tick_due: asyncio.TimerHandle | None = None
        self._write_lock = asyncio.Lock()
        self._finished = False
        self._ended = (0.0, "")
        self.tracing: Tracing | None = setup_tracing(service.observability.tracing, "session")
        self.trace: CallTrace | None = None
        if self.tracing is not None:
            self.trace = CallTrace(
                self.tracing,
                session_id=session_id,
                tenant=spec.tenant,
                provider=spec.provider,
                model=model,
                parent=str(old.get("trace") or "") if previous is not None else "",
                at=now,
            )
        tenant_var.set(spec.tenant or "-")
        trace_var.set(self.trace.ids() if self.trace is not None else None)

    async def begin(self) -> None:
        """Record the call's trace for a replacement and publish the first summary."""
        if self.trace is not None:
            await self._store.update(self.session_id, trace=self.trace.traceparent)
        self._summary_soon()

    # -- inputs from the actor ---------------------------------------------------------------

    def started(self, provider: str, model: str) -> None:
        self._guarded(lambda: self.watch.started(time.time(), provider, model or None))

    def event(self, event: SessionEvent) -> None:
        self._guarded(lambda: self.watch.event(event, time.time()))

    def text_sent(self) -> None:
        self._guarded(lambda: self.watch.text_sent(time.time()))

    def tool_result(self, result: dict[str, Any]) -> None:
        """A ``tool_result`` the actor published (the envelope's data)."""
        self._guarded(
            lambda: self.watch.tool_result(
                str(result["call_id"]),
                time.time(),
                latency_ms=float(result.get("latency_ms") or 0.0),
                worker=str(result.get("worker") or result.get("source") or ""),
                is_error=bool(result.get("is_error")),
            )
        )

    def tool_traceparent(self, call_id: str) -> str:
        """The ``traceparent`` to send with a tool call ("" when the call is not traced)."""
        return self.trace.tool_traceparent(call_id) if self.trace is not None else ""

    def silence(self) -> None:
        """Publish nothing more (a replacement has taken the call over)."""
        self._finished = True
        for handle in (self._summary_due, self._tick_due):
            if handle is not None:
                handle.cancel()

    def ended(self, reason: str, error: S2SError | None) -> None:
        """The call ended: the open turn completes (its ``turn`` envelope is published now,
        before ``session_closed``); :meth:`close` then sends the rest."""
        if self._finished:
            return
        self.silence()
        when = time.time()
        self._ended = (when, reason)
        self._guarded(lambda: self.watch.ended(when, reason, error.to_dict() if error else None))

    async def close(self) -> None:
        """After :meth:`ended`: the last summary (``ended: true``) goes out, the spans end and
        are exported (bounded by :data:`TRACE_FLUSH_S`)."""
        try:
            await self._write_summary()
        except Exception as exc:
            log.warning("could not publish the call's last summary: %s", exc)
        trace, self.trace = self.trace, None
        if trace is not None:
            at, reason = self._ended
            attributes = {"s2s.turns": self.watch.turns, "s2s.barge_ins": self.watch.barge_ins}
            try:
                trace.end(at, reason, attributes)
            except Exception:
                log.exception("ending the call's spans failed")
        await self.shutdown()

    async def shutdown(self) -> None:
        """Export the spans still buffered and stop tracing (bounded by :data:`TRACE_FLUSH_S`)."""
        tracing, self.tracing = self.tracing, None
        if tracing is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(tracing.shutdown), TRACE_FLUSH_S)
        except Exception as exc:
            log.warning("could not export the call's last spans: %r", exc)

    # -- acting on changes ---------------------------------------------------------------------

    def _guarded(self, step: Callable[[], Change]) -> None:
        """Apply one input; a failure of the reporting is logged, never the call's end."""
        try:
            self._apply(step())
        except Exception:
            log.exception("reporting on the call failed; the call goes on")

    def _apply(self, change: Change) -> None:
        at = time.time()
        provider = self.watch.provider
        trace = self.trace
        if change.opened is not None and trace is not None:
            trace.turn_opened(change.opened, at)
        if change.response_latency_ms is not None:
            seconds = change.response_latency_ms / 1000
            self._metrics.observe("s2s_response_latency_seconds", seconds, provider=provider)
        if change.first_audio_ms is not None:
            seconds = change.first_audio_ms / 1000
            self._metrics.observe("s2s_first_audio_seconds", seconds, provider=provider)
        if change.barge_in:
            self._metrics.inc("s2s_barge_ins", provider=provider)
        if trace is not None and change.tool_started is not None:
            pool = self._spec.tool_pools.get(change.tool_started.name, "")
            trace.tool_started(change.tool_started, at, pool)
        if trace is not None and change.tool_finished is not None:
            trace.tool_finished(change.tool_finished, at)
        for record in change.completed:
            self._events.publish("turn", record.to_dict())
            if trace is not None:
                trace.turn_completed(record, at)
        if trace is not None and change.resumed is not None:
            trace.event("s2s.session_resumed", {"s2s.reason": change.resumed}, at)
        if trace is not None and change.switched is not None:
            old, new = change.switched
            trace.event("s2s.provider_switched", {"s2s.from": old, "s2s.to": new}, at)
        if change.summary and not self._finished:
            self._summary_soon()
        self._tick_later(at)

    def _tick_later(self, at: float) -> None:
        """Wake the watch when the model's audio will have played out (its state changes)."""
        if self._tick_due is not None:
            self._tick_due.cancel()
            self._tick_due = None
        when = self.watch.next_tick(at)
        if when is None or self._finished:
            return
        self._tick_due = asyncio.get_running_loop().call_later(
            max(0.0, when - at) + 0.01, lambda: self._guarded(lambda: self.watch.tick(time.time()))
        )

    def _summary_soon(self) -> None:
        delay = self._pacer.changed(time.monotonic())
        if delay is None:
            return  # a summary is due: it will carry this change
        self._summary_due = asyncio.get_running_loop().call_later(
            delay, lambda: self._tasks.spawn(self._publish_summary())
        )

    async def _publish_summary(self) -> None:
        self._summary_due = None
        if self._finished:
            return
        try:
            await self._write_summary()
        except Exception as exc:  # Redis hiccup: the next change publishes everything again
            log.warning("could not publish the call summary: %s", exc)

    async def _write_summary(self) -> None:
        async with self._write_lock:  # one write at a time, each with the newest summary
            self._pacer.published(time.monotonic())
            summary = self.watch.summary(time.time()).to_dict()
            await self._store.update(self.session_id, call=summary)
            message = json.dumps(summary)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.publish(keys.tenant_calls(self._spec.tenant), message)
                pipe.publish(keys.ALL_CALLS, message)
                await pipe.execute()
