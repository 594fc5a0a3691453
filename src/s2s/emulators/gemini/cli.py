"""``s2s emulate gemini``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..serve import serve_until_stopped
from .server import GeminiEmulator

__all__ = ["KEY_VARIABLES", "add_parser", "local_settings"]

#: Environment variables that hold a real key (the demo uses this emulator without one).
KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


def add_parser(which: Any) -> None:
    parser: argparse.ArgumentParser = which.add_parser(
        "gemini",
        help="Gemini Live (BidiGenerateContent) on wss://HOST:PORT/ws/…",
        description="Gemini Live emulator over TLS (the official SDK only speaks wss). "
        "Deterministic: 'call <tool> <json>' text calls a declared tool, other text is quoted "
        "back, audio turns report the seconds of speech heard. Without --certfile/--keyfile it "
        "generates a certificate for localhost and 127.0.0.1 and prints its CA file.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--certfile", default=None, help="TLS certificate (PEM)")
    parser.add_argument("--keyfile", default=None, help="TLS private key (PEM)")
    parser.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any non-empty key)"
    )
    parser.add_argument(
        "--speed", type=float, default=4.0, help="answer audio speed, x real time (default 4)"
    )
    parser.add_argument(
        "--response-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="model latency before the first output (default 0)",
    )
    parser.add_argument(
        "--connection-limit",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="connection lifetime; goAway comes --go-away-before earlier (default 600)",
    )
    parser.add_argument(
        "--go-away-before",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long before the connection limit goAway is sent (default 60)",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if (args.certfile is None) != (args.keyfile is None):
        raise SystemExit("s2s emulate gemini: give both --certfile and --keyfile, or neither")
    async with GeminiEmulator(
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        api_key=args.api_key,
        speed=args.speed,
        response_delay_s=args.response_delay,
        connection_limit_s=args.connection_limit,
        go_away_before_s=args.go_away_before,
    ) as emulator:
        trust = (
            f"CA file (trust it in clients): {emulator.ca_file}"
            if emulator.ca_file is not None
            else f"certificate: {emulator.certfile}"
        )
        await serve_until_stopped(emulator.url, f"endpoint: {emulator.ws_url()}", trust)
    return 0


@contextlib.asynccontextmanager
async def local_settings(**options: Any) -> AsyncIterator[dict[str, Any]]:
    """Run this emulator; yield the ``Config.extra`` that points a session at it."""
    async with GeminiEmulator(api_key="gemini-s2s-local", **options) as emulator:
        yield {
            "api_key": "gemini-s2s-local",
            "base_url": emulator.url,
            "ca_file": str(emulator.ca_file),
        }
