"""Running an emulator from the command line: the shared options, and serving until stopped."""

from __future__ import annotations

import argparse
from typing import TypedDict

from ..signals import stop_on_signals
from .base import Emulator

__all__ = [
    "TLSFiles",
    "add_common_arguments",
    "add_speed_arguments",
    "serve_until_stopped",
    "tls_arguments",
    "trust_line",
]


def add_common_arguments(parser: argparse.ArgumentParser, *, tls: bool) -> None:
    """``--host``, ``--port`` (and ``--certfile``/``--keyfile`` for a TLS emulator)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    if tls:
        parser.add_argument("--certfile", default=None, help="TLS certificate chain (PEM)")
        parser.add_argument("--keyfile", default=None, help="TLS private key (PEM)")


def add_speed_arguments(parser: argparse.ArgumentParser, *, delay_help: str) -> None:
    """``--speed`` and ``--response-delay``."""
    parser.add_argument(
        "--speed", type=float, default=4.0, help="answer audio speed, x real time (default 4)"
    )
    parser.add_argument(
        "--response-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help=f"{delay_help} (default 0)",
    )


class TLSFiles(TypedDict):
    certfile: str | None
    keyfile: str | None


def tls_arguments(args: argparse.Namespace, command: str) -> TLSFiles:
    """``certfile``/``keyfile`` for the emulator; exits naming the problem if only one is given."""
    if (args.certfile is None) != (args.keyfile is None):
        raise SystemExit(f"{command}: give both --certfile and --keyfile, or neither")
    return TLSFiles(certfile=args.certfile, keyfile=args.keyfile)


def trust_line(emulator: Emulator) -> str:
    """What a client must trust to reach a TLS emulator."""
    if emulator.ca_file is not None:
        return f"CA file (trust it in clients, e.g. extra['ca_file']): {emulator.ca_file}"
    return f"certificate: {emulator.certfile}"


async def serve_until_stopped(*lines: str) -> None:
    """Print where the emulator listens (first line: its URL), then wait for a signal."""
    print(f"listening on {lines[0]}  (Ctrl-C to stop)", flush=True)
    for line in lines[1:]:
        print(line, flush=True)
    await stop_on_signals().wait()
