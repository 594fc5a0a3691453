"""The ingress redeployed under live calls (a rolling update: a new replica starts, then Serve
stops the old one): the old replica tells its stream clients to reconnect (1012) as soon as the
stop begins, not after ``graceful_shutdown_timeout_s`` (60 s here); they reconnect to the new
replica, resume by ``last_seq`` and ``input_position``, and lose nothing.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from ray import serve

from deployments.app import build_app
from deployments.stack import LocalStack

from .fault_calls import TaggedCaller, assert_exactly_once, assert_seqs_once, audio_at_provider
from .stack import EmulatorThread
from .test_faults import end_calls, start_calls

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.timeout(240)]

SECONDS = 12.0


async def redeploy(stack: LocalStack, callers: list[TaggedCaller], within: float) -> float:
    """Redeploy the ingress (a changed option makes a new version) and wait until every caller
    has reconnected once more; returns how long that took after the redeploy began.

    ``serve.run`` returns once the old replicas are gone; the callers must move long before.
    """
    config = stack.config.model_copy(
        update={"serve": stack.config.serve.model_copy(update={"replica_cpus": 0.4})}
    )
    before = {id(c): c.reconnects for c in callers}
    began = time.monotonic()
    running = asyncio.create_task(
        asyncio.to_thread(
            serve.run, build_app(config=config), name="s2s", route_prefix="/", blocking=False
        )
    )
    async with asyncio.timeout(within):
        while not all(c.reconnects > before[id(c)] for c in callers):
            await asyncio.sleep(0.05)
    moved = time.monotonic() - began
    await running
    return moved


async def test_a_redeploy_with_live_calls_loses_nothing(
    base: str, ws_base: str, stack: LocalStack, emulator: EmulatorThread
) -> None:
    callers = await start_calls(base, ws_base, 2, first_tag=70, seconds=SECONDS)
    streams = [asyncio.create_task(c.stream()) for c in callers]
    await asyncio.sleep(2.0)
    moved = await redeploy(stack, callers, within=120)
    await asyncio.gather(*streams)
    await end_calls(base, callers)
    codes = sorted({code for c in callers for code, _ in c.closed})
    print(
        f"\nredeploy: every caller reconnected to the new replica {moved:.2f} s after the"
        f" redeploy began (old sockets closed with {codes};"
        f" {sum(c.reconnects for c in callers)} reconnects in all)"
    )
    assert codes == [1012]
    assert moved < stack.config.serve.graceful_shutdown_timeout_s / 2
    assert_exactly_once(audio_at_provider(emulator), callers)
    for caller in callers:
        assert_seqs_once(caller)
