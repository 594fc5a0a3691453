"""``s2s emulate openai_live``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..serve import add_common_arguments, serve_until_stopped
from .server import FAILURES, LiveEmulator

__all__ = ["KEY_VARIABLES", "add_parser", "local_settings"]

#: Environment variables that hold a real key (the demo uses this emulator without one).
KEY_VARIABLES = ("OPENAI_API_KEY",)


def add_parser(which: Any) -> None:
    parser: argparse.ArgumentParser = which.add_parser(
        "openai_live",
        help="OpenAI GPT-Live on ws://HOST:PORT/v1/live/sessions",
        description="GPT-Live emulator. Full duplex: output audio flows as input audio does; "
        "after speech and a pause the model answers with the seconds of speech heard; "
        "'call <tool> <json>' (in --utterance or thinking context) delegates a tool call.",
    )
    add_common_arguments(parser, tls=False)
    parser.add_argument(
        "--api-key", default=None, help="the only key to accept (default: accept any non-empty key)"
    )
    parser.add_argument(
        "--session-limit",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="session duration limit before session.closed{expired} (default 3600)",
    )
    parser.add_argument(
        "--utterance",
        action="append",
        default=[],
        metavar="TEXT",
        help="what the caller says, one per utterance, in order (repeatable)",
    )
    parser.add_argument(
        "--failure", choices=sorted(FAILURES), default=None, help="fail every session after start"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with LiveEmulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        session_limit_s=args.session_limit,
        utterances=list(args.utterance),
        failure=args.failure,
    ) as emulator:
        await serve_until_stopped(emulator.url)
    return 0


@contextlib.asynccontextmanager
async def local_settings(**options: Any) -> AsyncIterator[dict[str, Any]]:
    """Run this emulator; yield the ``Config.extra`` that points a session at it."""
    async with LiveEmulator(api_key="sk-s2s-local", **options) as emulator:
        yield {"api_key": "sk-s2s-local", "base_url": emulator.url}
