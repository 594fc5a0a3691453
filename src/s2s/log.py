"""Logging that carries the session id, the tenant and the trace.

The session runtime sets :data:`session_id_var` for everything it runs (tasks copy the context);
the service's session actor also sets :data:`tenant_var` and :data:`trace_var` (its call's trace
and span ids). :class:`SessionIdFilter` copies them onto every log record as
``record.session_id``, ``record.tenant``, ``record.trace_id`` and ``record.span_id``, so a
format string can use ``%(session_id)s``.

Two line formats (:data:`LOG_FORMATS`): ``text`` (:data:`LOG_FORMAT`) and ``json``
(:class:`JsonFormatter`: one object per line with ``ts``, ``level``, ``logger``, ``message``,
``session_id``, ``tenant``, ``trace_id``, ``span_id`` and ``exc``). The service picks one with
``observability.logs.format``; the ``S2S_LOG_FORMAT`` variable overrides it (for the CLI too).

The trace ids are the current OpenTelemetry span's when there is one (a tool worker running a
traced call), else :data:`trace_var`. OpenTelemetry is only consulted when something else in the
process has imported it (tracing is on): this module never imports it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from typing import Any

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "SessionIdFilter",
    "configure_logging",
    "configure_process_logging",
    "log_format",
    "logger",
    "session_id_var",
    "tenant_var",
    "trace_var",
]

session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("s2s_session_id", default="-")
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("s2s_tenant", default="-")
#: ``(trace_id, span_id)`` in W3C hex, or None: the trace the code running now belongs to when
#: no OpenTelemetry span is current (the session actor sets its call span's ids).
trace_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "s2s_trace", default=None
)

logger = logging.getLogger("s2s")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [session=%(session_id)s] %(message)s"
LOG_FORMATS = ("text", "json")
#: Overrides the configured format (``text`` or ``json``).
FORMAT_ENV = "S2S_LOG_FORMAT"


def log_format(configured: str | None = None) -> str:
    """The line format to use: ``$S2S_LOG_FORMAT`` if set, else ``configured``, else text.

    Raises:
        ValueError: the variable names no format.
    """
    chosen = os.environ.get(FORMAT_ENV) or configured or "text"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"{FORMAT_ENV}={chosen!r}: the log format is 'text' or 'json'")
    return chosen


def _current_trace() -> tuple[str, str] | None:
    """The current OpenTelemetry span's ids (if tracing is loaded and a span is current), else
    :data:`trace_var`."""
    otel = sys.modules.get("opentelemetry.trace")
    if otel is not None:
        context = otel.get_current_span().get_span_context()
        if context.is_valid:
            return f"{context.trace_id:032x}", f"{context.span_id:016x}"
    return trace_var.get()


class SessionIdFilter(logging.Filter):
    """Adds ``session_id``, ``tenant``, ``trace_id`` and ``span_id`` to every record passing
    through (``default`` / ``tenant``: the process's own call, where no task has set one)."""

    def __init__(self, default: str = "-", tenant: str = "-") -> None:
        super().__init__()
        self.default = default
        self.tenant = tenant

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            current = session_id_var.get()
            record.session_id = self.default if current == "-" else current
        if not hasattr(record, "tenant"):
            tenant = tenant_var.get()
            record.tenant = self.tenant if tenant == "-" else tenant
        if not hasattr(record, "trace_id"):
            trace = _current_trace()
            record.trace_id, record.span_id = trace if trace is not None else ("", "")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a multi-line message or traceback is escaped).

    Keys: ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
    ``session_id`` and ``tenant`` (null when unknown), ``trace_id`` and ``span_id`` (only when
    the record belongs to a trace), ``exc`` (the formatted exception, only when there is one).
    """

    def format(self, record: logging.LogRecord) -> str:
        session_id = getattr(record, "session_id", "-")
        tenant = getattr(record, "tenant", "-")
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session_id": None if session_id in ("-", "") else session_id,
            "tenant": None if tenant in ("-", "") else tenant,
        }
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            line["trace_id"] = trace_id
            line["span_id"] = getattr(record, "span_id", "")
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT)


def configure_logging(level: int | str = logging.INFO, fmt: str | None = None) -> None:
    """Log to stderr with the session id on every line (used by the CLI and the service), in
    ``fmt`` (``text`` or ``json``; ``$S2S_LOG_FORMAT`` overrides it). Calling it again replaces
    the handler (the tool worker does, once it has read its configuration)."""
    handler = logging.StreamHandler()
    handler.addFilter(SessionIdFilter())
    handler.setFormatter(_formatter(log_format(fmt)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configure_process_logging(
    level: int | str = logging.INFO,
    session_id: str = "-",
    *,
    fmt: str | None = None,
    tenant: str = "-",
) -> None:
    """Give the ``s2s`` logger a stderr handler, once per process, unless the root logger
    already has one (Ray workers: stderr lands in the worker's ``.err`` log). ``session_id``
    and ``tenant`` are the process's own call (a session actor), used where no task has set
    them.

    With the ``json`` format (``fmt`` or ``$S2S_LOG_FORMAT``) the handler is installed even when
    the root logger has one, and ``s2s`` records stop there (``propagate`` off), so every s2s
    line is one JSON object and none is written twice in another format.

    Without this, a Ray worker has no handler for ``s2s`` records and the service's warnings
    (a channel lost, an actor replaced) would vanish.
    """
    chosen = log_format(fmt)
    if any(isinstance(h, _ProcessHandler) for h in logger.handlers):
        return  # this ran before in this process
    if chosen == "text" and logging.getLogger().handlers:
        return  # the process already logs somewhere (the CLI, pytest)
    handler = _ProcessHandler()
    handler.addFilter(SessionIdFilter(session_id, tenant))
    handler.setFormatter(_formatter(chosen))
    logger.addHandler(handler)
    logger.setLevel(level)
    if chosen == "json":
        logger.propagate = False


class _ProcessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_process_logging` installs (recognised to install it once)."""
