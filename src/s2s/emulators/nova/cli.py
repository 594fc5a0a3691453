"""``s2s emulate nova``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..serve import serve_until_stopped
from .server import NovaEmulator
from .sigv4 import DEFAULT_CREDENTIALS, Credentials

__all__ = ["KEY_VARIABLES", "add_parser", "local_settings"]

#: Environment variables that signal real AWS credentials (the demo uses this emulator without).
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")


def add_parser(which: Any) -> None:
    parser: argparse.ArgumentParser = which.add_parser(
        "nova",
        help="Amazon Nova Sonic (Bedrock bidirectional stream) on https://localhost:PORT",
        description="Nova Sonic emulator: POST /model/{modelId}/invoke-with-bidirectional-stream "
        "over HTTP/2 and TLS, SigV4-checked. Deterministic: 'call <tool> <json>' text calls a "
        "declared tool, other text is quoted back, audio turns report the seconds of speech "
        "heard. Without --certfile it generates a certificate for localhost and 127.0.0.1 and "
        "prints where its CA is; without keys it accepts the documented test credentials "
        f"{DEFAULT_CREDENTIALS.access_key_id} / {DEFAULT_CREDENTIALS.secret_access_key}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--certfile", default=None, help="TLS certificate chain (PEM)")
    parser.add_argument("--keyfile", default=None, help="TLS private key (PEM)")
    parser.add_argument("--access-key-id", default=None, help="the access key id to accept")
    parser.add_argument("--secret-access-key", default=None, help="its secret access key")
    parser.add_argument("--session-token", default=None, help="its session token, if any")
    parser.add_argument("--region", default="us-east-1", help="the signing region to accept")
    parser.add_argument(
        "--speed", type=float, default=4.0, help="answer audio speed, x real time (default 4)"
    )
    parser.add_argument(
        "--response-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="model latency before an answer (default 0)",
    )
    parser.add_argument(
        "--connection-limit",
        type=float,
        default=480.0,
        metavar="SECONDS",
        help="stream lifetime before modelTimeoutException (default 480)",
    )
    parser.add_argument(
        "--silence-limit",
        type=float,
        default=175.0,
        metavar="SECONDS",
        help="caller silence before the InternalErrorCode=531 error (default 175)",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if (args.certfile is None) != (args.keyfile is None):
        raise SystemExit("s2s emulate nova: --certfile and --keyfile go together")
    if (args.access_key_id is None) != (args.secret_access_key is None):
        raise SystemExit("s2s emulate nova: --access-key-id and --secret-access-key go together")
    credentials = DEFAULT_CREDENTIALS
    if args.access_key_id is not None:
        credentials = Credentials(args.access_key_id, args.secret_access_key, args.session_token)
    async with NovaEmulator(
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        credentials=credentials,
        region=args.region,
        speed=args.speed,
        response_delay_s=args.response_delay,
        connection_limit_s=args.connection_limit,
        silence_limit_s=args.silence_limit,
    ) as emulator:
        lines = [emulator.url]
        if emulator.ca_file is not None:
            lines.append(f"CA certificate (trust it, e.g. extra['ca_file']): {emulator.ca_file}")
        lines.append(
            f"credentials: access key id {credentials.access_key_id}, secret access key "
            f"{credentials.secret_access_key}, region {args.region}"
        )
        await serve_until_stopped(*lines)
    return 0


@contextlib.asynccontextmanager
async def local_settings(**options: Any) -> AsyncIterator[dict[str, Any]]:
    """Run this emulator; yield the ``Config.extra`` that points a session at it."""
    credentials = DEFAULT_CREDENTIALS
    async with NovaEmulator(credentials=credentials, **options) as emulator:
        yield {
            "base_url": emulator.url,
            "region": emulator.region,
            "ca_file": str(emulator.ca_file),
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
        }
