"""``s2s emulate gemini``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ...providers.gemini_live.settings import KEY_VARIABLES  # the demo: a real key is set
from ..serve import (
    add_common_arguments,
    add_speed_arguments,
    serve_until_stopped,
    tls_arguments,
    trust_line,
)
from .server import GeminiEmulator

__all__ = ["KEY_VARIABLES", "add_parser", "local_settings"]


def add_parser(which: Any) -> None:
    parser: argparse.ArgumentParser = which.add_parser(
        "gemini",
        help="Gemini Live (BidiGenerateContent) on wss://HOST:PORT/ws/…",
        description="Gemini Live emulator over TLS (the official SDK only speaks wss). "
        "Deterministic: 'call <tool> <json>' text calls a declared tool, other text is quoted "
        "back, audio turns report the seconds of speech heard. Without --certfile/--keyfile it "
        "generates a certificate for localhost and 127.0.0.1 and prints its CA file.",
    )
    add_common_arguments(parser, tls=True)
    parser.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any non-empty key)"
    )
    add_speed_arguments(parser, delay_help="model latency before the first output")
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
    async with GeminiEmulator(
        host=args.host,
        port=args.port,
        **tls_arguments(args, "s2s emulate gemini"),
        api_key=args.api_key,
        speed=args.speed,
        response_delay_s=args.response_delay,
        connection_limit_s=args.connection_limit,
        go_away_before_s=args.go_away_before,
    ) as emulator:
        await serve_until_stopped(
            emulator.url, f"endpoint: {emulator.ws_url()}", trust_line(emulator)
        )
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
