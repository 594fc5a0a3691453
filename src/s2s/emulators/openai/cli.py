"""``s2s emulate openai``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..serve import add_common_arguments, add_speed_arguments, serve_until_stopped
from .failures import RESPONSE_FAILURES
from .server import OpenAIEmulator

__all__ = ["KEY_VARIABLES", "add_parser", "local_settings"]

#: Environment variables that hold a real key (the demo uses this emulator without one).
KEY_VARIABLES = ("OPENAI_API_KEY",)


def add_parser(which: Any) -> None:
    parser: argparse.ArgumentParser = which.add_parser(
        "openai",
        help="OpenAI Realtime (GA) on ws://HOST:PORT/v1/realtime",
        description="OpenAI Realtime GA emulator. Deterministic: 'call <tool> <json>' text calls "
        "a declared tool, other text is quoted back, audio turns report the seconds "
        "of speech heard.",
    )
    add_common_arguments(parser, tls=False)
    parser.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any non-empty key)"
    )
    add_speed_arguments(parser, delay_help="model latency before the first output")
    parser.add_argument(
        "--session-limit",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="session time limit before session_expired (default 3600)",
    )
    parser.add_argument(
        "--preamble",
        choices=("auto", "on", "off"),
        default="auto",
        help="answer in two items, a spoken preamble then the answer "
        "(auto: for gpt-realtime-2* models)",
    )
    parser.add_argument(
        "--fail-responses",
        choices=sorted(RESPONSE_FAILURES),
        default=None,
        metavar="CODE",
        help="fail every response with this provider error after a good handshake "
        "(quota, billing, account, model codes then close; rate limits fail one response): "
        + ", ".join(sorted(RESPONSE_FAILURES)),
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with OpenAIEmulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        speed=args.speed,
        response_delay_s=args.response_delay,
        session_limit_s=args.session_limit,
        preamble={"auto": None, "on": True, "off": False}[args.preamble],
        fail_responses=args.fail_responses,
    ) as emulator:
        await serve_until_stopped(emulator.url)
    return 0


@contextlib.asynccontextmanager
async def local_settings(**options: Any) -> AsyncIterator[dict[str, Any]]:
    """Run this emulator; yield the ``Config.extra`` that points a session at it."""
    async with OpenAIEmulator(api_key="sk-s2s-local", **options) as emulator:
        yield {"api_key": "sk-s2s-local", "base_url": emulator.url}
