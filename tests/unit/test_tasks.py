"""TaskSet: background tasks held until done, cancelled together."""

from __future__ import annotations

import asyncio
import contextvars

from s2s.tasks import TaskSet

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_a_task_is_held_until_it_is_done_and_returns_its_result():
    tasks = TaskSet()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    task = tasks.spawn(work())
    assert task in tasks._tasks
    release.set()
    assert await task == 7
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert not tasks._tasks


async def test_cancel_stops_every_running_task():
    tasks = TaskSet()
    running = [tasks.spawn(asyncio.sleep(60)) for _ in range(3)]
    tasks.cancel()
    results = await asyncio.gather(*running, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


async def test_cancel_can_spare_the_task_that_asks():
    tasks = TaskSet()
    other = tasks.spawn(asyncio.sleep(60))

    async def shut_down() -> str:
        tasks.cancel(spare_current=True)
        await asyncio.sleep(0)
        return "finished"

    assert await tasks.spawn(shut_down()) == "finished"
    await asyncio.gather(other, return_exceptions=True)
    assert other.cancelled()


async def test_a_task_runs_in_the_context_it_is_given():
    tasks = TaskSet()
    context = contextvars.copy_context()
    context.run(var.set, "session-1")

    async def read() -> str:
        return var.get()

    assert await tasks.spawn(read(), context=context) == "session-1"
    assert await tasks.spawn(read()) == "unset"
