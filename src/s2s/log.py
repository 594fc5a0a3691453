"""Logging that carries the session id.

The session runtime sets :data:`session_id_var` for everything it runs (tasks copy the context),
and :class:`SessionIdFilter` copies it onto every log record as ``record.session_id``, so a
format string can use ``%(session_id)s``.
"""

from __future__ import annotations

import contextvars
import logging

__all__ = [
    "SessionIdFilter",
    "configure_logging",
    "configure_process_logging",
    "logger",
    "session_id_var",
]

session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("s2s_session_id", default="-")

logger = logging.getLogger("s2s")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [session=%(session_id)s] %(message)s"


class SessionIdFilter(logging.Filter):
    """Adds ``session_id`` (from :data:`session_id_var`) to every record passing through."""

    def __init__(self, default: str = "-") -> None:
        super().__init__()
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            current = session_id_var.get()
            record.session_id = self.default if current == "-" else current
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log to stderr with the session id on every line (used by the CLI and the service)."""
    handler = logging.StreamHandler()
    handler.addFilter(SessionIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configure_process_logging(level: int | str = logging.INFO, session_id: str = "-") -> None:
    """Give the ``s2s`` logger a stderr handler, once per process, unless the root logger
    already has one (Ray workers: stderr lands in the worker's ``.err`` log). ``session_id``
    is the process's own call (a session actor), used where no task has set one.

    Without this, a Ray worker has no handler for ``s2s`` records and the service's warnings
    (a channel lost, an actor replaced) would vanish.
    """
    if logging.getLogger().handlers or any(isinstance(h, _ProcessHandler) for h in logger.handlers):
        return  # the process already logs somewhere (the CLI, pytest), or this ran before
    handler = _ProcessHandler()
    handler.addFilter(SessionIdFilter(session_id))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)


class _ProcessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_process_logging` installs (recognised to install it once)."""
