"""The WebSocket frame limit where frames are parsed: Serve's HTTP proxy (and direct-ingress
replicas), before any frame is buffered whole.

Serve runs uvicorn with its default ``ws_max_size`` (16 MiB) and has no option for it, but it
calls a function named by ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` in each proxy process
before it builds uvicorn's config. :func:`install` is that function: it makes
``S2S_WS_MAX_FRAME_BYTES`` (set from ``serve.max_frame_bytes`` / ``max_control_bytes``) the
default ``ws_max_size`` of every ``uvicorn.Config`` created afterwards in the process, so a
larger frame is refused (close 1009) by the server's frame parser. It adds no middleware.
"""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["CALLBACK_ENV", "LIMIT_ENV", "environment", "install"]

CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
LIMIT_ENV = "S2S_WS_MAX_FRAME_BYTES"
DEFAULT_LIMIT = 262_144


def environment(max_frame_bytes: int, max_control_bytes: int) -> dict[str, str]:
    """The variables the Ray processes need for :func:`install` to run with these limits."""
    return {
        CALLBACK_ENV: f"{__name__}.install",
        LIMIT_ENV: str(max(max_frame_bytes, max_control_bytes) + 1024),
    }


def install() -> list[Any]:
    """Serve's proxy callback: set uvicorn's WebSocket frame limit; no middleware."""
    import uvicorn.config

    limit = int(os.environ.get(LIMIT_ENV, DEFAULT_LIMIT))
    config_class: Any = uvicorn.config.Config
    original = config_class.__init__
    if getattr(original, "s2s_limit", None) is not None:
        return []

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ws_max_size", limit)
        original(self, *args, **kwargs)

    init.s2s_limit = limit  # type: ignore[attr-defined]
    config_class.__init__ = init
    return []
