"""OpenTelemetry traces of calls: one trace per call, across the session actor and tool workers.

Spans (attributes in brackets):

* ``s2s.call``, the root, in the session actor for the whole call [``s2s.session_id``,
  ``s2s.tenant``, ``s2s.provider``, ``s2s.model``, ``s2s.resumed``; at the end
  ``s2s.close_reason``, ``s2s.turns``, ``s2s.barge_ins``]. Events on it:
  ``s2s.session_resumed`` [``s2s.reason``] and ``s2s.provider_switched`` [``s2s.from``,
  ``s2s.to``]. A replacement actor (the call moved after its actor was lost) starts its own
  ``s2s.call`` span as a child of its predecessor's (whose traceparent is kept in the session
  record's ``trace`` field), with ``s2s.resumed=true``: one trace for the whole call.
* ``s2s.turn``, a child of the call, from the moment the caller stopped speaking (or sent
  text) until the turn completed [``s2s.turn``, ``s2s.response_latency_ms``,
  ``s2s.interrupted``, ``s2s.turn_reason``].
* ``s2s.tool_call``, a child of its turn, in the actor: from the model's call to its result
  [``s2s.tool``, ``s2s.call_id``, ``s2s.pool``, ``s2s.worker``, ``s2s.outcome``].
* ``s2s.tool.run``, in the tool worker process, a child of the actor's ``s2s.tool_call``: the
  W3C ``traceparent`` travels in the call's queue entry (``ToolRequest.traceparent``)
  [``s2s.tool``, ``s2s.call_id``, ``s2s.session_id``, ``s2s.tenant``, ``s2s.pool``,
  ``s2s.attempt``, ``s2s.worker``, ``s2s.outcome``].

Sampling is ``ParentBased(TraceIdRatioBased(sample_ratio))``: a call is sampled or not at its
start, and everything under it (the replacement actor, the workers) follows that decision.
Spans are exported over OTLP/HTTP in batches; :meth:`Tracing.shutdown` flushes them when the
call or the worker ends. The resource names the service (``service.name``), the process
(``process.pid``, ``host.name``) and its role (``s2s.role``: ``session`` or ``tool-worker``).

Nothing here imports OpenTelemetry until :func:`setup_tracing` is called with tracing enabled,
so processes that do not trace never load it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .call_records import ToolStat, TurnRecord
from .config import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = ["CallTrace", "Tracing", "parse_headers", "setup_tracing"]

_NS = 1_000_000_000


def _ns(unix_s: float) -> int:
    return int(unix_s * _NS)


def parse_headers(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` (the OTLP convention) as a dict; blanks are skipped.

    Raises:
        ValueError: an entry without ``=``.
    """
    headers: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError("OTLP headers are key=value pairs separated by commas")
        headers[key.strip()] = value.strip()
    return headers


def setup_tracing(
    settings: TracingSettings,
    role: str,
    *,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> Tracing | None:
    """This process's tracing (None when ``settings.enabled`` is false: nothing is imported).

    ``exporter`` replaces the OTLP exporter and exports each span as it ends (tests use the
    SDK's ``InMemorySpanExporter``). The collector's headers come from the variable
    ``settings.headers_env`` names.
    """
    if not settings.enabled:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    env = os.environ if environ is None else environ
    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "process.pid": os.getpid(),
            "host.name": socket.gethostname(),
            "s2s.role": role,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        headers = parse_headers(env.get(settings.headers_env, ""))
        otlp = OTLPSpanExporter(endpoint=settings.otlp_endpoint, headers=headers, timeout=10)
        provider.add_span_processor(BatchSpanProcessor(otlp, schedule_delay_millis=2000))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


class Tracing:
    """One process's tracer provider, and the W3C trace-context conversions it needs."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("s2s")

    def start_span(
        self,
        name: str,
        *,
        parent: Span | str | None = None,
        attributes: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> Span:
        """A span (ended by the caller) under ``parent``: a span, a ``traceparent``, or none
        (a new trace); ``at`` is its start in unix seconds (default: now)."""
        from opentelemetry import trace

        if isinstance(parent, str):
            context = self.context(parent)
        elif parent is not None:
            context = trace.set_span_in_context(parent)
        else:
            context = None
        return self.tracer.start_span(
            name,
            context=context,
            attributes=dict(attributes or {}),
            start_time=None if at is None else _ns(at),
        )

    @staticmethod
    def context(traceparent: str) -> Any:
        """The OpenTelemetry context a ``traceparent`` header carries (empty if malformed)."""
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        return TraceContextTextMapPropagator().extract({"traceparent": traceparent})

    @staticmethod
    def traceparent(span: Span) -> str:
        """The W3C ``traceparent`` of ``span`` (its sampling decision included)."""
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
        return carrier.get("traceparent", "")

    @staticmethod
    def ids(span: Span) -> tuple[str, str] | None:
        """``(trace_id, span_id)`` in hex, for log lines; None for an invalid span."""
        context = span.get_span_context()
        if not context.is_valid:
            return None
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    @contextlib.contextmanager
    def tool_run(self, traceparent: str, attributes: Mapping[str, Any]) -> Iterator[Span | None]:
        """The worker's ``s2s.tool.run`` span around a call, current while it runs (so log
        lines carry it); nothing without a ``traceparent`` (the call is not traced)."""
        if not traceparent:
            yield None
            return
        with self.tracer.start_as_current_span(
            "s2s.tool.run", context=self.context(traceparent), attributes=dict(attributes)
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Export what is left and stop (blocking: bounded by the exporter's timeout)."""
        self.provider.shutdown()


class CallTrace:
    """The spans of one call in its session actor, driven by the call's
    :class:`~.call_watch.CallWatch` changes."""

    def __init__(
        self,
        tracing: Tracing,
        *,
        session_id: str,
        tenant: str,
        provider: str,
        model: str,
        parent: str = "",
        at: float | None = None,
    ) -> None:
        self.tracing = tracing
        self.call = tracing.start_span(
            "s2s.call",
            parent=parent or None,
            attributes={
                "s2s.session_id": session_id,
                "s2s.tenant": tenant,
                "s2s.provider": provider,
                "s2s.model": model,
                "s2s.resumed": bool(parent),
            },
            at=at,
        )
        self._turns: dict[int, Span] = {}
        self._open_turn: int | None = None
        self._tools: dict[str, Span] = {}

    @property
    def traceparent(self) -> str:
        """The call span's ``traceparent`` (kept in the session record for a replacement)."""
        return Tracing.traceparent(self.call)

    def ids(self) -> tuple[str, str] | None:
        return Tracing.ids(self.call)

    def turn_opened(self, number: int, at: float) -> None:
        span = self.tracing.start_span(
            "s2s.turn", parent=self.call, attributes={"s2s.turn": number}, at=at
        )
        self._turns[number] = span
        self._open_turn = number

    def turn_completed(self, record: TurnRecord, at: float) -> None:
        span = self._turns.pop(record.turn, None)
        if span is None:  # opened before this actor took the call over
            span = self.tracing.start_span(
                "s2s.turn", parent=self.call, attributes={"s2s.turn": record.turn}, at=at
            )
        if self._open_turn == record.turn:
            self._open_turn = None
        if record.response_latency_ms is not None:
            span.set_attribute("s2s.response_latency_ms", record.response_latency_ms)
        span.set_attribute("s2s.interrupted", record.interrupted)
        span.set_attribute("s2s.turn_reason", record.reason)
        span.end(end_time=_ns(at))

    def tool_started(self, stat: ToolStat, at: float, pool: str = "") -> str:
        """Start the call's ``s2s.tool_call`` span; returns the ``traceparent`` for the worker."""
        parent = self._turns.get(self._open_turn) if self._open_turn is not None else None
        span = self.tracing.start_span(
            "s2s.tool_call",
            parent=parent or self.call,
            attributes={"s2s.tool": stat.name, "s2s.call_id": stat.call_id, "s2s.pool": pool},
            at=at,
        )
        self._tools[stat.call_id] = span
        return Tracing.traceparent(span)

    def tool_traceparent(self, call_id: str) -> str:
        span = self._tools.get(call_id)
        return "" if span is None else Tracing.traceparent(span)

    def tool_finished(self, stat: ToolStat, at: float) -> None:
        span = self._tools.pop(stat.call_id, None)
        if span is None:
            return
        span.set_attribute("s2s.outcome", stat.outcome)
        span.set_attribute("s2s.worker", stat.worker)
        if stat.latency_ms is not None:
            span.set_attribute("s2s.latency_ms", stat.latency_ms)
        if stat.is_error:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, f"{stat.name} answered with an error"))
        span.end(end_time=_ns(at))

    def event(self, name: str, attributes: Mapping[str, Any], at: float) -> None:
        """An event on the call span (``s2s.session_resumed``, ``s2s.provider_switched``)."""
        self.call.add_event(name, dict(attributes), timestamp=_ns(at))

    def end(self, at: float, reason: str, attributes: Mapping[str, Any] | None = None) -> None:
        """End every span still open (tools without a result, the open turn) and the call."""
        for span in [*self._tools.values(), *self._turns.values()]:
            span.set_attribute("s2s.ended_by", "call_end")
            span.end(end_time=_ns(at))
        self._tools.clear()
        self._turns.clear()
        self.call.set_attribute("s2s.close_reason", reason)
        for key, value in (attributes or {}).items():
            self.call.set_attribute(key, value)
        self.call.end(end_time=_ns(at))
