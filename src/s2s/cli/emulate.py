"""``s2s emulate <provider>``: run a provider emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from ..emulators.openai import OpenAIEmulator


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "emulate",
        help="run a local provider emulator",
        description="Run a protocol-faithful provider emulator on loopback until Ctrl-C.",
    )
    which = parser.add_subparsers(dest="provider", metavar="PROVIDER", required=True)

    openai = which.add_parser(
        "openai",
        help="OpenAI Realtime (GA) on ws://HOST:PORT/v1/realtime",
        description="OpenAI Realtime GA emulator. Deterministic: 'call <tool> <json>' text calls "
        "a declared tool, other text is quoted back, audio turns report the seconds "
        "of speech heard.",
    )
    openai.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    openai.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    openai.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any non-empty key)"
    )
    openai.add_argument(
        "--speed", type=float, default=4.0, help="response audio speed, x real time (default 4)"
    )
    openai.add_argument(
        "--response-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="model latency before the first output (default 0)",
    )
    openai.add_argument(
        "--session-limit",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="session time limit before session_expired (default 3600)",
    )
    openai.set_defaults(run=run_openai)


async def _serve_forever(url: str) -> None:
    print(f"listening on {url}  (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_openai(args: argparse.Namespace) -> int:
    async with OpenAIEmulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        speed=args.speed,
        response_delay_s=args.response_delay,
        session_limit_s=args.session_limit,
    ) as emulator:
        await _serve_forever(emulator.url)
    return 0
