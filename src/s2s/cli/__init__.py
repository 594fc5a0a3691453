"""The ``s2s`` command line: ``s2s --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from .. import __version__
from ..errors import S2SError
from ..log import configure_logging
from . import demo, emulate, phone, providers, tool_worker

__all__ = ["COMMAND_GROUP", "main"]

_COMMANDS = (demo, emulate, phone, providers, tool_worker)

#: Entry-point group for subcommands that live outside the library (``serve`` and ``up`` come
#: from the Ray layer in ``deployments/``; the library must not import it).
COMMAND_GROUP = "s2s.commands"


def _plugin_commands(sub: Any) -> None:
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as exc:  # e.g. the service extra is not installed
            reason = f"{type(exc).__name__}: {exc}"
            parser = sub.add_parser(ep.name, help=f"(unavailable: {reason})")
            parser.set_defaults(run=_unavailable(ep.name, reason))


def _unavailable(name: str, reason: str) -> Any:
    async def run(args: argparse.Namespace) -> int:
        print(f"s2s {name} is unavailable here ({reason}); install s2s[service]", file=sys.stderr)
        return 2

    return run


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
    _plugin_commands(sub)
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
    except S2SError as exc:  # a configuration or provider problem: say it plainly
        print(f"s2s {args.command}: {exc}", file=sys.stderr)
        return 2
    return result
