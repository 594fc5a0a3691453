"""Logging that carries the session id.

The session runtime sets :data:`session_id_var` for everything it runs (tasks copy the context),
and :class:`SessionIdFilter` copies it onto every log record as ``record.session_id``, so a
format string can use ``%(session_id)s``.
"""

from __future__ import annotations

import contextvars
import logging

__all__ = ["SessionIdFilter", "configure_logging", "logger", "session_id_var"]

session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("s2s_session_id", default="-")

logger = logging.getLogger("s2s")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [session=%(session_id)s] %(message)s"


class SessionIdFilter(logging.Filter):
    """Adds ``session_id`` (from :data:`session_id_var`) to every record passing through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log to stderr with the session id on every line (used by the CLI and the service)."""
    handler = logging.StreamHandler()
    handler.addFilter(SessionIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
