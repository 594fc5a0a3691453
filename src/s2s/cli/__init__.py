"""The ``s2s`` command line: ``s2s --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..log import configure_logging
from . import demo, emulate, providers

__all__ = ["main"]

_COMMANDS = (demo, emulate, providers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s",
        description="Speech-to-speech sessions over OpenAI Realtime, Gemini Live and Nova Sonic.",
    )
    parser.add_argument("--version", action="version", version=f"s2s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    configure_logging(level)
    try:
        result: int = asyncio.run(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result
