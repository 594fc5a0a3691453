"""``s2s emulate <provider>``: run a provider emulator until Ctrl-C.

Each emulator package has a ``cli`` module with ``add_parser(subparsers)``; it is listed in
:data:`EMULATORS`.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

#: Emulator name -> module with ``add_parser``, ``local_settings`` and ``KEY_VARIABLES``.
EMULATORS = {
    "openai": "s2s.emulators.openai.cli",
    "openai_live": "s2s.emulators.openai_live.cli",
    "gemini": "s2s.emulators.gemini.cli",
    "nova": "s2s.emulators.nova.cli",
}

#: Provider name -> emulator name (what ``s2s demo`` starts when the provider has no key).
PROVIDER_EMULATORS = {
    "openai_realtime": "openai",
    "openai_live": "openai_live",
    "gemini_live": "gemini",
    "nova": "nova",
}


def emulator_cli(name: str) -> Any:
    return importlib.import_module(EMULATORS[name])


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "emulate",
        help="run a local provider emulator",
        description="Run a protocol-faithful provider emulator on loopback until Ctrl-C.",
    )
    which = parser.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    for name in EMULATORS:
        emulator_cli(name).add_parser(which)
