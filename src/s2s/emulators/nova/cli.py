"""``s2s emulate nova``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..serve import (
    add_common_arguments,
    add_speed_arguments,
    serve_until_stopped,
    tls_arguments,
    trust_line,
)
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
    add_common_arguments(parser, tls=True)
    parser.add_argument("--access-key-id", default=None, help="the access key id to accept")
    parser.add_argument("--secret-access-key", default=None, help="its secret access key")
    parser.add_argument("--session-token", default=None, help="its session token, if any")
    parser.add_argument("--region", default="us-east-1", help="the signing region to accept")
    add_speed_arguments(parser, delay_help="model latency before an answer")
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
    tls = tls_arguments(args, "s2s emulate nova")
    if (args.access_key_id is None) != (args.secret_access_key is None):
        raise SystemExit("s2s emulate nova: --access-key-id and --secret-access-key go together")
    credentials = DEFAULT_CREDENTIALS
    if args.access_key_id is not None:
        credentials = Credentials(args.access_key_id, args.secret_access_key, args.session_token)
    async with NovaEmulator(
        host=args.host,
        port=args.port,
        **tls,
        credentials=credentials,
        region=args.region,
        speed=args.speed,
        response_delay_s=args.response_delay,
        connection_limit_s=args.connection_limit,
        silence_limit_s=args.silence_limit,
    ) as emulator:
        await serve_until_stopped(
            emulator.url,
            trust_line(emulator),
            f"credentials: access key id {credentials.access_key_id}, secret access key "
            f"{credentials.secret_access_key}, region {args.region}",
        )
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
