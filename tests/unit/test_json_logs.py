"""JSON log lines: one parseable object per record, with the session, tenant and trace."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from s2s import log as s2s_log
from s2s.log import (
    JsonFormatter,
    SessionIdFilter,
    configure_process_logging,
    log_format,
    session_id_var,
    tenant_var,
    trace_var,
)
from s2s.service.config import ServiceConfig, TracingSettings
from s2s.service.tracing import setup_tracing


def emit(message: str, *args: object, exc: BaseException | None = None) -> dict[str, object]:
    """Log one record through a JSON handler; the line it wrote, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SessionIdFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("s2s.test_json")
    log.addHandler(handler)
    log.propagate = False
    try:
        if exc is not None:
            try:
                raise exc
            except type(exc):
                log.exception(message, *args)
        else:
            log.warning(message, *args)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines  # one object per line, even for a traceback
    parsed = json.loads(lines[0])
    assert isinstance(parsed, dict)
    return parsed


def in_context(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run ``fn`` in a copy of the context (the context vars it sets stay there)."""
    return contextvars.copy_context().run(fn, *args, **kwargs)


def test_a_record_is_one_object_with_session_tenant_and_the_actor_trace():
    def run() -> dict[str, object]:
        session_id_var.set("sess-json-1")
        tenant_var.set("acme")
        trace_var.set(("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"))
        return emit("caller said %s\nover two lines", "hello")

    line = in_context(run)
    assert line["message"] == "caller said hello\nover two lines"
    assert line["level"] == "WARNING" and line["logger"] == "s2s.test_json"
    assert line["session_id"] == "sess-json-1" and line["tenant"] == "acme"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == "b7ad6b7169203331"
    assert str(line["ts"]).endswith("Z") and "exc" not in line


def test_the_current_span_wins_and_an_exception_is_included():
    tracing = setup_tracing(
        TracingSettings(enabled=True, sample_ratio=1.0), "test", exporter=InMemorySpanExporter()
    )
    assert tracing is not None

    def run() -> tuple[dict[str, object], str]:
        session_id_var.set("sess-json-2")
        with tracing.tracer.start_as_current_span("s2s.tool.run") as span:
            trace_id = f"{span.get_span_context().trace_id:032x}"
            return emit("tool failed", exc=KeyError("order")), trace_id

    line, trace_id = in_context(run)
    assert line["trace_id"] == trace_id and line["session_id"] == "sess-json-2"
    assert line["tenant"] is None  # none set
    assert "KeyError: 'order'" in str(line["exc"]) and "Traceback" in str(line["exc"])


def test_outside_a_call_the_fields_are_null_and_no_trace_is_named():
    line = in_context(emit, "starting")
    assert line["session_id"] is None and line["tenant"] is None and "trace_id" not in line


def test_the_environment_overrides_the_configured_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("S2S_LOG_FORMAT", raising=False)
    assert log_format(None) == "text" and log_format("json") == "json"
    monkeypatch.setenv("S2S_LOG_FORMAT", "json")
    assert log_format("text") == "json"
    monkeypatch.setenv("S2S_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="'text' or 'json'"):
        log_format("text")
    assert ServiceConfig().observability.logs.format == "text"


@pytest.fixture
def clean_s2s_logger() -> Iterator[logging.Logger]:
    logger = s2s_log.logger
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_process_logging_in_json_installs_one_handler_even_under_a_root_handler(
    clean_s2s_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("S2S_LOG_FORMAT", raising=False)
    assert logging.getLogger().handlers  # pytest's: a Ray worker's root has one too
    configure_process_logging(session_id="sess-proc", fmt="json", tenant="globex")
    configure_process_logging(session_id="sess-proc", fmt="json", tenant="globex")  # once
    ours = [h for h in clean_s2s_logger.handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1 and clean_s2s_logger.propagate is False
    stream = io.StringIO()
    ours[0].setStream(stream)  # type: ignore[attr-defined]
    in_context(clean_s2s_logger.getChild("actor").warning, "lease renewal failed")
    line = json.loads(stream.getvalue())
    assert line["session_id"] == "sess-proc" and line["tenant"] == "globex"
