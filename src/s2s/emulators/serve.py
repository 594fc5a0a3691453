"""Run an emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["serve_until_stopped"]


async def serve_until_stopped(*lines: str) -> None:
    """Print where the emulator listens (first line: its URL), then wait for a signal."""
    print(f"listening on {lines[0]}  (Ctrl-C to stop)", flush=True)
    for line in lines[1:]:
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
