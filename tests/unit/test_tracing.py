"""Traces of a call: the session actor's reporter, fed a call's events, makes the call, turn and
tool spans (OpenTelemetry SDK, in-memory exporter); the tool worker's span joins the same trace
through the ``traceparent`` a ToolRequest carries; a replacement actor continues the trace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import s2s
from actors import call_reporting
from actors.call_reporting import CallReporter
from actors.spec import SessionSpec
from s2s.events import EventType, SessionEvent
from s2s.service import keys
from s2s.service.config import ServiceConfig, TracingSettings
from s2s.service.metrics import Metrics
from s2s.service.tracing import Tracing, parse_headers, setup_tracing
from s2s.tasks import TaskSet
from s2s.tools.queue import ToolRequest

SESSION = "trace-call-0001"


class FakeStore:
    """The session record's fields, as SessionStore.update writes them."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    async def update(self, session_id: str, **fields: Any) -> None:
        assert session_id == SESSION
        self.fields.update(fields)


class FakeRedis:
    """Records PUBLISHes made through a pipeline."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    @contextlib.asynccontextmanager
    async def _pipe(self) -> Any:
        outer = self

        class Pipe:
            def publish(self, channel: str, message: str) -> None:
                outer.published.append((channel, message))

            async def execute(self) -> list[int]:
                return [1]

        yield Pipe()

    def pipeline(self, transaction: bool = False) -> Any:
        return self._pipe()


class FakeEvents:
    """The session's event log: envelopes by kind; ``turned`` is set by each ``turn``."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.turned = asyncio.Event()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.published.append((kind, data))
        if kind == "turn":
            self.turned.set()


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Every Tracing the reporter sets up exports here (sampling everything)."""
    memory = InMemorySpanExporter()

    def setup(settings: TracingSettings, role: str) -> Tracing | None:
        return setup_tracing(settings, role, exporter=memory)

    monkeypatch.setattr(call_reporting, "setup_tracing", setup)
    yield memory
    memory.clear()


def service(sample_ratio: float = 1.0) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {"observability": {"tracing": {"enabled": True, "sample_ratio": sample_ratio}}}
    )


def spec() -> SessionSpec:
    return SessionSpec(
        SESSION,
        "openai_realtime",
        {"sample_rate": 24000},
        tenant="acme",
        tool_pools={"lookup_order": "default"},
    )


def reporter(config: ServiceConfig, previous: dict[str, Any] | None = None) -> CallReporter:
    return CallReporter(
        SESSION,
        spec(),
        config,
        model="gpt-realtime",
        store=FakeStore(),  # type: ignore[arg-type]
        redis=FakeRedis(),
        events=FakeEvents(),  # type: ignore[arg-type]
        metrics=Metrics(),
        tasks=TaskSet(),
        previous=previous,
    )


def audio(ms: int) -> SessionEvent:
    return SessionEvent(EventType.AUDIO_OUTPUT, audio=b"\0\0" * (24 * ms), sample_rate=24000)


async def run_turn_with_a_tool(report: CallReporter, worker: Tracing) -> str:
    """A spoken turn whose answer needs a tool the worker (another process's tracing) runs."""
    await report.begin()
    report.started("openai_realtime", "gpt-realtime")
    report.event(SessionEvent(EventType.SPEECH_STARTED))
    report.event(SessionEvent(EventType.SPEECH_STOPPED))
    call = s2s.ToolCall("call_1", "lookup_order", '{"order_id": "A-7"}')
    report.event(SessionEvent(EventType.TOOL_CALL, tool_call=call))
    traceparent = report.tool_traceparent("call_1")
    # the queue entry carries it to the worker process
    request = ToolRequest.unpack(
        ToolRequest(
            SESSION, "call_1", "lookup_order", "{}", "default", 0.0, "acme", {}, traceparent
        ).pack()
    )
    with worker.tool_run(request.traceparent, {"s2s.tool": request.name}) as span:
        assert span is not None
    report.event(SessionEvent(EventType.TURN_END, reason="tool_calls"))
    result = {"call_id": "call_1", "latency_ms": 12.5, "worker": "w-1", "is_error": False}
    report.tool_result(result)
    report.event(audio(20))
    report.event(SessionEvent(EventType.TURN_END, reason="completed"))
    events: FakeEvents = report._events  # type: ignore[assignment]
    await asyncio.wait_for(events.turned.wait(), 5)  # once its 20 ms of audio have played
    return traceparent


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


async def test_a_turn_with_a_tool_call_makes_call_turn_and_tool_spans_in_one_trace(exporter):
    report = reporter(service())
    worker = setup_tracing(TracingSettings(enabled=True), "tool-worker", exporter=exporter)
    assert worker is not None
    await run_turn_with_a_tool(report, worker)
    report.ended("closed_by_client", None)
    await report.close()

    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"s2s.call", "s2s.turn", "s2s.tool_call", "s2s.tool.run"}
    call, turn = spans["s2s.call"], spans["s2s.turn"]
    tool, run = spans["s2s.tool_call"], spans["s2s.tool.run"]
    assert call.parent is None
    assert turn.parent is not None and turn.parent.span_id == call.context.span_id
    assert tool.parent is not None and tool.parent.span_id == turn.context.span_id
    assert run.parent is not None and run.parent.span_id == tool.context.span_id
    assert {s.context.trace_id for s in spans.values()} == {call.context.trace_id}
    assert dict(call.attributes or {}) | {} == {
        "s2s.session_id": SESSION,
        "s2s.tenant": "acme",
        "s2s.provider": "openai_realtime",
        "s2s.model": "gpt-realtime",
        "s2s.resumed": False,
        "s2s.close_reason": "closed_by_client",
        "s2s.turns": 1,
        "s2s.barge_ins": 0,
    }
    turn_attributes = dict(turn.attributes or {})
    assert turn_attributes["s2s.turn"] == 1 and turn_attributes["s2s.interrupted"] is False
    assert turn_attributes["s2s.response_latency_ms"] >= 0
    assert turn_attributes["s2s.turn_reason"] == "completed"
    assert dict(tool.attributes or {}) == {
        "s2s.tool": "lookup_order",
        "s2s.call_id": "call_1",
        "s2s.pool": "default",
        "s2s.outcome": "ok",
        "s2s.worker": "w-1",
        "s2s.latency_ms": 12.5,
    }
    assert run.resource.attributes["s2s.role"] == "tool-worker"
    assert call.resource.attributes["s2s.role"] == "session"
    # the turn envelope, the summaries and the record's trace field
    events: FakeEvents = report._events  # type: ignore[assignment]
    (turn_data,) = [data for kind, data in events.published if kind == "turn"]
    assert turn_data["tools"][0]["worker"] == "w-1" and turn_data["reason"] == "completed"
    store: FakeStore = report._store  # type: ignore[assignment]
    assert store.fields["trace"].startswith(f"00-{call.context.trace_id:032x}-")
    assert store.fields["call"]["ended"] is True and store.fields["call"]["turns"] == 1
    redis: FakeRedis = report._redis
    channels = {channel for channel, _ in redis.published}
    assert channels == {keys.tenant_calls("acme"), keys.ALL_CALLS}


async def test_a_replacement_actor_continues_the_trace(exporter):
    first = reporter(service())
    await first.begin()
    first.started("openai_realtime", "gpt-realtime")
    first.text_sent()
    store: FakeStore = first._store  # type: ignore[assignment]
    saved = {"call": first.watch.summary(0.0).to_dict(), "trace": store.fields["trace"]}
    # the first actor is lost: its call span never ends; the replacement's is its child
    second = reporter(service(), previous=saved)
    assert second.watch.state.value == "reconnecting"
    await second.begin()
    second.started("openai_realtime", "gpt-realtime")
    second.ended("closed_by_client", None)
    await second.close()
    (call,) = exporter.get_finished_spans()
    assert call.name == "s2s.call" and dict(call.attributes or {})["s2s.resumed"] is True
    original = first.trace
    assert original is not None and call.parent is not None
    assert call.parent.span_id == original.call.get_span_context().span_id
    assert call.context.trace_id == original.call.get_span_context().trace_id
    assert dict(call.attributes or {})["s2s.turns"] == 1  # counted by the first actor
    first.ended("superseded", None)
    await first.shutdown()


async def test_an_unsampled_call_records_nothing_and_the_worker_follows(exporter):
    report = reporter(service(sample_ratio=0.0))
    worker = setup_tracing(TracingSettings(enabled=True), "tool-worker", exporter=exporter)
    assert worker is not None  # the worker's own ratio (0.1) does not matter: it follows
    traceparent = await run_turn_with_a_tool(report, worker)
    assert int(traceparent.rsplit("-", 1)[1], 16) & 1 == 0  # the sampled flag is off
    report.ended("closed_by_client", None)
    await report.close()
    assert exporter.get_finished_spans() == ()


def test_a_tool_request_carries_its_traceparent_and_old_entries_still_unpack():
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request = ToolRequest(
        "s1", "c1", "lookup_order", "{}", "default", 1.0, tenant="acme", traceparent=traceparent
    )
    assert ToolRequest.unpack(request.pack()).traceparent == traceparent
    old = msgpack.packb(
        {
            "session_id": "s1",
            "call_id": "c1",
            "name": "lookup_order",
            "arguments": "{}",
            "pool": "default",
            "deadline": 1.0,
        }
    )
    unpacked = ToolRequest.unpack(old)
    assert unpacked.traceparent == "" and unpacked.tenant == "" and unpacked.metadata == {}
    with pytest.raises(ValueError, match="traceparent must be a string"):
        ToolRequest.unpack(msgpack.packb({**msgpack.unpackb(old), "traceparent": 7}))


def test_tracing_off_imports_nothing_and_headers_parse():
    assert setup_tracing(TracingSettings(), "session") is None
    assert parse_headers(" api-key = s3cret ,x-team=voice,") == {
        "api-key": "s3cret",
        "x-team": "voice",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_headers("no-equals-sign")
    with pytest.raises(ValueError, match="http"):
        TracingSettings(otlp_endpoint="grpc://collector:4317")


def test_without_a_traceparent_the_worker_makes_no_span(exporter):
    worker = setup_tracing(TracingSettings(enabled=True, sample_ratio=1.0), "w", exporter=exporter)
    assert worker is not None
    with worker.tool_run("", {"s2s.tool": "x"}) as span:
        assert span is None
    assert exporter.get_finished_spans() == ()


async def test_a_failure_of_the_reporting_is_logged_and_the_call_goes_on(
    exporter, caplog: pytest.LogCaptureFixture
):
    report = reporter(service())
    await report.begin()

    def broken(event: SessionEvent, at: float) -> None:
        raise KeyError("state")

    report.watch.event = broken  # type: ignore[method-assign]
    report.event(SessionEvent(EventType.SPEECH_STARTED))  # does not raise
    assert "reporting on the call failed; the call goes on" in caplog.text
    assert "KeyError: 'state'" in caplog.text
    report.ended("closed_by_client", None)
    await report.close()
    assert [s.name for s in exporter.get_finished_spans()] == ["s2s.call"]
