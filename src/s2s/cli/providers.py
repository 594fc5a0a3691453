"""``s2s providers``: list the registered providers."""

from __future__ import annotations

import argparse
from typing import Any

from ..registry import list_providers


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "providers",
        help="list registered providers",
        description="List every provider s2s.new() accepts (built-in and entry points).",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    for name in list_providers():
        print(name)
    return 0
