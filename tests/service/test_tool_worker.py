"""Tool workers on a real redis-server: at-least-once delivery, reclaim, timeouts, dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from s2s.service import keys
from s2s.service.config import ToolPoolSettings
from s2s.tools import ToolContext, tool
from s2s.tools.decorator import tool_of
from s2s.tools.examples import check_balance
from s2s.tools.queue import ToolRequest, read_results, submit
from s2s.tools.registry import ToolRegistry
from s2s.tools.worker import GROUP, ToolWorker

MODULES = ["s2s.tools.examples", "tests.service.tools"]

RECEIVED: list[ToolContext] = []


@tool
def record_context(context: ToolContext, note: str) -> str:
    """Record the context the worker passed (a test-only tool).

    Args:
        note: Anything.
    """
    RECEIVED.append(context)
    return note


def settings(**changes: object) -> ToolPoolSettings:
    base = {
        "modules": MODULES,
        "concurrency": 4,
        "timeout_s": 5,
        "claim_idle_s": 0.5,
        "max_deliveries": 3,
    }
    return ToolPoolSettings.model_validate({**base, **changes})


def request(
    call_id: str,
    name: str,
    args: dict,
    *,
    deadline_in: float = 5.0,
    tenant: str = "",
    metadata: dict | None = None,
) -> ToolRequest:
    return ToolRequest(
        "sess",
        call_id,
        name,
        json.dumps(args),
        "p",
        time.time() + deadline_in,
        tenant=tenant,
        metadata=metadata or {},
    )


async def results(redis: Redis, count: int, timeout: float = 10.0) -> list:
    out, last = [], "0-0"
    async with asyncio.timeout(timeout):
        while len(out) < count:
            last, batch = await read_results(redis, "sess", last, 200)
            out.extend(batch)
    return out


@pytest.fixture
async def running_worker(redis: Redis) -> AsyncIterator[ToolWorker]:
    worker = ToolWorker(redis, "p", settings(), ToolRegistry.from_modules(MODULES), name="w1")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    yield worker
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_call_runs_and_its_result_is_posted_then_acknowledged(redis, running_worker):
    await submit(redis, request("c1", "lookup_order", {"order_id": "b7"}))
    (outcome,) = await results(redis, 1)
    assert outcome.call_id == "c1" and not outcome.is_error
    assert json.loads(outcome.content)["order_id"] == "B7"
    assert outcome.worker == "w1" and outcome.attempt == 1
    await asyncio.sleep(0.1)
    assert (await redis.xpending(keys.tool_calls("p"), GROUP))["pending"] == 0


async def test_errors_become_error_results(redis, running_worker):
    await submit(redis, request("c1", "fails", {"reason": "database down"}))
    await submit(redis, request("c2", "lookup_order", {"order": "x"}))
    await submit(redis, request("c3", "not_a_tool", {}))
    await submit(redis, request("c4", "slow_echo", {"text": "x", "seconds": 5}, deadline_in=0.5))
    by_id = {o.call_id: o for o in await results(redis, 4)}
    assert all(o.is_error for o in by_id.values())
    assert "RuntimeError: database down" in by_id["c1"].content
    assert "invalid arguments for lookup_order" in by_id["c2"].content
    assert "not served by pool 'p'" in by_id["c3"].content
    assert "did not finish" in by_id["c4"].content


async def test_a_call_left_by_a_dead_worker_is_reclaimed(redis):
    stream = keys.tool_calls("p")
    worker = ToolWorker(redis, "p", settings(), ToolRegistry.from_modules(MODULES), name="w1")
    await worker.ensure_group()
    await submit(redis, request("c1", "lookup_order", {"order_id": "z1"}))
    # a worker that read the call and then died: delivered, never acknowledged
    taken = await redis.xreadgroup(GROUP, "dead-worker", {stream: ">"}, count=1)
    assert taken and taken[0][1]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    (outcome,) = await results(redis, 1)
    stop.set()
    await task
    assert outcome.call_id == "c1" and outcome.worker == "w1" and outcome.attempt == 2


async def test_expired_calls_are_dropped(redis, running_worker):
    await submit(redis, request("late", "lookup_order", {"order_id": "1"}, deadline_in=-1))
    await submit(redis, request("ok", "lookup_order", {"order_id": "2"}))
    outcomes = await results(redis, 1)
    await asyncio.sleep(0.3)
    assert [o.call_id for o in outcomes] == ["ok"]


async def test_a_call_that_keeps_killing_workers_goes_to_dead_letters(redis):
    stream = keys.tool_calls("p")
    worker = ToolWorker(
        redis, "p", settings(max_deliveries=2), ToolRegistry.from_modules(MODULES), name="w2"
    )
    await worker.ensure_group()
    await submit(redis, request("poison", "lookup_order", {"order_id": "1"}))
    for name in ("crash-1", "crash-2"):  # two workers took it and died
        await redis.xreadgroup(GROUP, name, {stream: ">"}, count=1)
        await asyncio.sleep(0.6)
        await redis.xautoclaim(stream, GROUP, name, 500, start_id="0-0")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    (outcome,) = await results(redis, 1)
    stop.set()
    await task
    assert outcome.is_error and "could not be run" in outcome.content
    assert await redis.xlen(keys.tool_dead_letters("p")) == 1


async def test_stopping_finishes_the_calls_in_progress(redis):
    worker = ToolWorker(redis, "p", settings(), ToolRegistry.from_modules(MODULES), name="w3")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await submit(redis, request("c1", "slow_echo", {"text": "bye", "seconds": 0.5}))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 5)
    (outcome,) = await results(redis, 1)
    assert json.loads(outcome.content)["echo"] == "bye"
    assert (await redis.xpending(keys.tool_calls("p"), GROUP))["pending"] == 0


async def test_a_long_call_is_not_taken_from_a_live_worker(redis):
    """A call longer than claim_idle_s keeps its worker (heartbeats), so it runs once."""
    a = ToolWorker(
        redis, "p", settings(claim_idle_s=0.3), ToolRegistry.from_modules(MODULES), name="a"
    )
    b = ToolWorker(
        redis, "p", settings(claim_idle_s=0.3), ToolRegistry.from_modules(MODULES), name="b"
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
    await submit(redis, request("long", "slow_echo", {"text": "once", "seconds": 1.5}))
    outcomes = await results(redis, 1)
    await asyncio.sleep(1.0)  # a duplicate would have arrived by now
    outcomes += (await read_results(redis, "sess", "0-0", 10))[1][1:]
    stop.set()
    await asyncio.gather(*tasks)
    assert [o.call_id for o in outcomes] == ["long"] and outcomes[0].attempt == 1
    assert a.completed + b.completed == 1


ACME = {"tenant": "acme", "metadata": {"account_ids": ["111"]}}


async def test_check_balance_answers_only_for_the_callers_own_accounts(redis, running_worker):
    await submit(redis, request("mine", "check_balance", {"account_id": "111"}, **ACME))
    await submit(redis, request("theirs", "check_balance", {"account_id": "999"}, **ACME))
    by_id = {o.call_id: o for o in await results(redis, 2)}
    mine, theirs = by_id["mine"], by_id["theirs"]
    assert not mine.is_error and json.loads(mine.content)["account_id"] == "111"
    assert isinstance(json.loads(mine.content)["balance"], float)
    assert theirs.is_error and "that account does not belong to this caller" in theirs.content
    unchecked = await tool_of(check_balance).run(
        '{"account_id": "999"}', ToolContext("acme", "s", "c")
    )
    assert str(json.loads(unchecked)["balance"]) not in theirs.content  # never the balance
    assert "failed" not in theirs.content


async def test_a_redelivered_callback_books_the_same_ticket(redis):
    """At-least-once: a call run again (reclaimed, or submitted twice) books one ticket."""
    stream = keys.tool_calls("p")
    worker = ToolWorker(redis, "p", settings(), ToolRegistry.from_modules(MODULES), name="w1")
    await worker.ensure_group()
    call = request("cb-1", "schedule_callback", {"phone": "+331234", "when": "9am"}, **ACME)
    await submit(redis, call)
    await redis.xreadgroup(GROUP, "dead-worker", {stream: ">"}, count=1)  # taken, never acked
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    (reclaimed,) = await results(redis, 1)
    await submit(redis, call)  # the identical request again
    outcomes = await results(redis, 2)
    stop.set()
    await task
    assert [o.attempt for o in outcomes] == [2, 1] and not any(o.is_error for o in outcomes)
    tickets = {json.loads(o.content)["ticket"] for o in outcomes}
    assert tickets == {json.loads(reclaimed.content)["ticket"]}
    other = request("cb-2", "schedule_callback", {"phone": "+331234", "when": "9am"}, **ACME)
    assert other.call_id != call.call_id  # a different call would get a different ticket


async def test_the_worker_passes_the_calls_context_to_the_tool(redis):
    RECEIVED.clear()
    registry = ToolRegistry([*ToolRegistry.from_modules(MODULES), tool_of(record_context)])
    worker = ToolWorker(redis, "p", settings(), registry, name="w1")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    sent = request("ctx-1", "record_context", {"note": "hello"}, **ACME)
    await submit(redis, sent)
    (outcome,) = await results(redis, 1)
    await submit(redis, request("ctx-2", "record_context", {"note": "x", "context": {}}))
    (_, refused) = await results(redis, 2)
    stop.set()
    await task
    assert outcome.content == "hello" and not outcome.is_error
    (context,) = RECEIVED
    assert (context.tenant, context.session_id, context.call_id, context.attempt) == (
        "acme",
        "sess",
        "ctx-1",
        1,
    )
    assert context.metadata == {"account_ids": ["111"]} and context.deadline == sent.deadline
    assert refused.is_error and "context: Extra inputs are not permitted" in refused.content


async def test_a_call_still_running_is_not_started_again_when_autoclaim_returns_it(redis):
    """Heartbeats that miss Redis (an outage) let the worker's own XAUTOCLAIM hand it a call it
    is still running: it must not run it a second time."""
    worker = ToolWorker(
        redis, "p", settings(claim_idle_s=0.3), ToolRegistry.from_modules(MODULES), name="w1"
    )

    async def no_heartbeat(every: float) -> None:
        await asyncio.Event().wait()

    worker._heartbeat = no_heartbeat  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await submit(redis, request("long", "slow_echo", {"text": "once", "seconds": 1.2}))
    outcomes = await results(redis, 1)
    await asyncio.sleep(0.5)  # a second run would have posted by now
    outcomes += (await read_results(redis, "sess", "0-0", 10))[1][1:]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [o.call_id for o in outcomes] == ["long"] and worker.completed == 1
    assert worker.kept_own >= 1
    assert (await redis.xpending(keys.tool_calls("p"), GROUP))["pending"] == 0
