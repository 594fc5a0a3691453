"""``s2s up`` (the whole stack and a demo call), ``s2s serve`` (the service alone) and
``s2s hash-key`` (the hash of an API key, for config files).

Registered with ``s2s`` through the ``s2s.commands`` entry-point group (pyproject.toml).
"""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from s2s.cli.demo import add_call_arguments
from s2s.service.config import load_config
from s2s.signals import stop_on_signals

from .stack import StackInfo, local_stack

__all__ = ["add_hash_key", "add_serve", "add_up"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config.yaml (default: $S2S_CONFIG, else ./config.yaml if present, "
        "else built-in defaults); S2S_* variables override any value",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="tool-worker processes per pool (default 1)",
    )
    parser.add_argument(
        "--ingress",
        choices=("haproxy", "proxy", "direct"),
        default=None,
        help="how calls reach the replicas (overrides serve.ingress; default from the config: "
        "haproxy, Serve's HAProxy ingress on serve.port)",
    )


def _config_path(given: str | None) -> str | None:
    if given:
        return given
    default = Path("config.yaml")
    return str(default) if default.exists() else None


def add_up(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "up",
        help="run the whole stack on embedded defaults and make a demo call",
        description="Start an embedded Redis, a local Ray, the Serve ingress, an emulator for "
        "each provider without an API key and the tool workers; then call it: stream a WAV "
        "over the WebSocket, trigger a tool call a worker answers, print the events, write the "
        "reply to a WAV. Everything stops on exit or Ctrl-C.",
    )
    _common(parser)
    parser.add_argument(
        "--provider",
        default=None,
        help="provider of the demo call (default: the config's default_provider)",
    )
    add_call_arguments(parser, timeout=120.0)
    parser.add_argument(
        "--hold",
        action="store_true",
        help="keep the stack running after the demo call (until Ctrl-C), to look around in the "
        "console or call it from the browser softphone",
    )
    parser.set_defaults(run=run_up)


def add_serve(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the service (Ray, Serve ingress, tool workers) until Ctrl-C",
        description="Run the service locally: embedded Redis if configured, emulators for "
        "providers without keys, a local Ray with the Serve ingress, and the tool workers.",
    )
    _common(parser)
    parser.set_defaults(run=run_serve)


def _stack(args: argparse.Namespace) -> AbstractAsyncContextManager[StackInfo]:
    """The local stack the options describe (its config is loaded and validated here)."""
    path = _config_path(args.config)
    config = load_config(path)
    if args.ingress is not None:
        config = config.with_overrides(serve={**config.serve.model_dump(), "ingress": args.ingress})
    return local_stack(
        config, config_path=path, workers_per_pool=args.workers, verbose=args.verbose > 0
    )


async def run_up(args: argparse.Namespace) -> int:
    from .demo_caller import run_demo_call

    stack = _stack(args)
    print("starting the stack (Redis, Ray, Serve, emulators, tool workers)...", flush=True)
    async with stack as info:
        print(f"console: {info.console_url()}  (softphone: {info.base_url}/console/softphone)")
        status = await run_demo_call(
            info,
            provider=args.provider or info.config.default_provider,
            sample_rate=args.sample_rate,
            input_wav=args.input,
            output_dir=args.output_dir,
            limit_s=args.timeout,
        )
        if args.hold:
            print("holding: the stack keeps running; Ctrl-C to stop", flush=True)
            await stop_on_signals().wait()
            print("stopping...", flush=True)
        return status


async def run_serve(args: argparse.Namespace) -> int:
    stack = _stack(args)
    print("starting the service...", flush=True)
    async with stack as info:
        print(
            f"\nready: {info.base_url}  (API key: {info.api_key}; admin key: {info.admin_key})\n"
            f"  curl -H 'Authorization: Bearer {info.api_key}' {info.base_url}/v1/sessions\n"
            f"  console: {info.console_url()}\n"
            f"  softphone: {info.base_url}/console/softphone\n"
            "Ctrl-C to stop",
            flush=True,
        )
        await stop_on_signals().wait()
        print("stopping...", flush=True)
    return 0


def add_hash_key(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "hash-key",
        help="print the SHA-256 of an API key (for tenants.<name>.key_hashes)",
        description="Read an API key on standard input (so it stays out of shell history and "
        "the process list) and print its SHA-256, the form config.yaml may hold. With --new, "
        "make a random key and print the key, then its hash.",
    )
    parser.add_argument("--new", action="store_true", help="generate a new random key")
    parser.set_defaults(run=_hash_key)


async def _hash_key(args: argparse.Namespace) -> int:
    import secrets
    import sys

    from .tenancy import hash_key, presented_key

    if args.new:
        key = f"s2s-{secrets.token_urlsafe(24)}"
        print(key)
    else:
        key = sys.stdin.readline().strip()
        if presented_key({"x-api-key": key}, {}) is None:
            print("hash-key: a key is 1-512 printable ASCII characters", file=sys.stderr)
            return 2
    print(hash_key(key))
    return 0
