"""Tools used by the service tests (a pool in the test configuration serves them)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from s2s.tools import tool


@tool
async def slow_echo(text: str, seconds: float, marker: str = "") -> dict[str, object]:
    """Wait, then echo the text (and the worker's pid).

    Args:
        text: What to echo.
        seconds: How long to wait first.
        marker: A file that records the pid of each worker that starts the call.
    """
    if marker:
        with Path(marker).open("a") as handle:
            handle.write(f"{os.getpid()}\n")
    await asyncio.sleep(seconds)
    return {"echo": text, "pid": os.getpid()}


@tool
def fails(reason: str) -> str:
    """Always fail (to test error results).

    Args:
        reason: The error message.
    """
    raise RuntimeError(reason)
