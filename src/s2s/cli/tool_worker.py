"""``s2s tool-worker --pool NAME``: run one tool pool's worker process."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "tool-worker",
        help="run a tool-worker process for one pool",
        description="Run the tools of one pool (config.yaml tool_pools.NAME) from its Redis "
        "Stream until SIGTERM. Run several for capacity and redundancy: a call a worker leaves "
        "unfinished is reclaimed by another.",
    )
    parser.add_argument("--pool", default="default", help="pool name (default: default)")
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config.yaml (default: $S2S_CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--redis-url", default=None, help="Redis URL (default: redis.url from the config)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="calls run at once (default: the pool's concurrency)",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..log import configure_logging
    from ..service.config import load_config
    from ..tools.worker import run_worker

    config = load_config(args.config)
    # The configured line format (S2S_LOG_FORMAT, read by configure_logging, still wins).
    configure_logging(logging.getLogger().level, fmt=config.observability.logs.format)
    pool = config.tool_pools.get(args.pool)
    if pool is None:
        raise ConfigurationError(
            f"no tool pool {args.pool!r} in the configuration; pools: "
            f"{', '.join(config.tool_pools) or 'none'}"
        )
    if args.concurrency:
        pool = pool.model_copy(update={"concurrency": args.concurrency})
    url = args.redis_url or config.redis.url
    if url == "embedded":
        raise ConfigurationError(
            "redis.url is 'embedded': give the worker the service's Redis with --redis-url or "
            "S2S_REDIS__URL"
        )
    await run_worker(
        url,
        args.pool,
        pool,
        result_ttl_s=config.redis.replay_log_ttl_s,
        redis_settings=config.redis,
        tracing_settings=config.observability.tracing,
    )
    return 0
