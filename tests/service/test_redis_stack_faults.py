"""Redis misbehaving under live calls, on the whole stack: paused for 7 s (``CLIENT PAUSE 7000
ALL``), and killed and restarted (its append-only file keeps the data). Caller audio does not
touch Redis, events wait in the actors' bounded publishers, subscribers resubscribe and fill
gaps from the log: per call, audio at the provider exactly once and every event seq once.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from deployments.stack import LocalStack

from .fault_calls import TaggedCaller, assert_exactly_once, assert_seqs_once, audio_at_provider
from .stack import EmulatorThread
from .test_faults import end_calls, start_calls

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.timeout(150)]

SECONDS = 12.0


def seen(caller: TaggedCaller) -> int:
    """Events the caller has received so far, across its reconnects."""
    return len(caller.seqs) + (len(caller.call.seqs) if caller.call else 0)


@pytest.mark.parametrize("fault", ["paused", "restarted"])
async def test_redis_misbehaving_mid_call_loses_nothing(
    fault: str, base: str, ws_base: str, stack: LocalStack, emulator: EmulatorThread
) -> None:
    server = stack.redis_server
    assert server is not None and stack.info is not None
    callers = await start_calls(
        base, ws_base, 2, first_tag=80 if fault == "paused" else 90, seconds=SECONDS
    )
    streams = [asyncio.create_task(c.stream()) for c in callers]
    await asyncio.sleep(SECONDS / 4)
    struck = time.monotonic()
    if fault == "paused":
        redis = Redis.from_url(stack.info.redis_url)
        try:
            await redis.execute_command("CLIENT", "PAUSE", "7000", "ALL")
        finally:
            await redis.aclose()
        outage = 7.0
    else:
        await asyncio.to_thread(server.restart, kill=True)
        outage = time.monotonic() - struck
    # events flow again: every caller gets new ones once the outage is over
    await asyncio.sleep(max(0.0, struck + outage - time.monotonic()))
    after = [seen(c) for c in callers]
    async with asyncio.timeout(60):
        while any(seen(c) <= n for c, n in zip(callers, after, strict=True)):
            await asyncio.sleep(0.05)
    flowing = time.monotonic() - struck
    await asyncio.gather(*streams)
    await end_calls(base, callers)
    print(
        f"\nredis {fault}: outage {outage:.2f} s, events reaching the callers again after"
        f" {flowing:.2f} s; reconnects {[c.reconnects for c in callers]}"
    )
    assert_exactly_once(audio_at_provider(emulator), callers)
    for caller in callers:
        assert_seqs_once(caller)
