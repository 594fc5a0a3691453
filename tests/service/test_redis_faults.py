"""Redis faults on a real redis-server: a pause, a restart, cut connections, a long outage.

Each test runs its own redis-server (append-only file on, so a restart keeps the data), publishes
a steady stream of events through an :class:`EventLog` while a :class:`SubscriptionHub`
subscriber reads them, injects the fault, and checks that every sequence number reaches the
subscriber and the log exactly once: as its event, or inside the range of one
``events_lost`` when the outage outlasted the publisher's bound. The figures (how long the
writer took to recover, how many events it held, how many it dropped) are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from redis.asyncio import Redis

from s2s.service import keys
from s2s.service.config import ToolPoolSettings
from s2s.service.envelope import Envelope
from s2s.service.eventlog import EventLog, last_seq, read_log
from s2s.service.redis_server import EmbeddedRedis
from s2s.service.subscribe import SubscriptionHub
from s2s.tools.queue import ToolOutcome, ToolRequest, submit
from s2s.tools.registry import ToolRegistry
from s2s.tools.worker import GROUP, ToolWorker

from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.fault, pytest.mark.timeout(30)]


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(appendonly=True)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def clients(server: EmbeddedRedis) -> AsyncIterator[Callable[[str], Redis]]:
    """Makes a Redis client (closed after the test) for a URL (the server's, or a proxy's)."""
    made: list[Redis] = []

    def client(url: str) -> Redis:
        made.append(Redis.from_url(url))
        return made[-1]

    yield client
    for each in made:
        await each.aclose()


def figures(name: str, **values: object) -> None:
    shown = ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    print(f"\n[{name}] {shown}")


async def seconds_until(check: Callable[[], object], timeout: float, what: str) -> float:
    """Seconds until ``check()`` (sync or async) is true; fails the test after ``timeout``."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {timeout} s")
        await asyncio.sleep(0.01)


class Publisher:
    """Publishes ``count`` envelopes at ``rate`` per second (in bursts of ``burst``)."""

    def __init__(self, log: EventLog, rate: float, pad: int = 0, burst: int = 1) -> None:
        self.log = log
        self.rate = rate
        self.pad = b"x" * pad
        self.burst = burst
        self.published = 0

    async def run(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self.published < count:
            for _ in range(min(self.burst, count - self.published)):
                self.log.publish("note", {"n": self.published, "pad": self.pad})
                self.published += 1
            await asyncio.sleep(max(0.0, started + self.published / self.rate - loop.time()))


async def collect(hub: SubscriptionHub, sid: str, last: int, out: list[Envelope]) -> None:
    async with hub.subscribe(sid) as events:
        async for envelope in events:
            out.append(envelope)
            if envelope.seq >= last:
                return


def check_exactly_once(envelopes: list[Envelope], last: int) -> list[tuple[int, int]]:
    """Every seq 1..last once, in order (an ``events_lost`` stands for its range); the ranges."""
    seqs: list[int] = []
    lost: list[tuple[int, int]] = []
    for envelope in envelopes:
        if envelope.type == "events_lost":
            first, end = envelope.data["first"], envelope.data["last"]
            assert end == envelope.seq and first <= end
            lost.append((first, end))
            seqs.extend(range(first, end + 1))
        else:
            seqs.append(envelope.seq)
    duplicates = sorted(seq for seq, n in Counter(seqs).items() if n > 1)
    missing = sorted(set(range(1, last + 1)) - set(seqs))
    assert (duplicates, missing, seqs == sorted(seqs), len(seqs)) == ([], [], True, last)
    return lost


async def check_log_and_subscriber(
    redis: Redis, sid: str, got: list[Envelope], last: int
) -> list[tuple[int, int]]:
    logged = await read_log(redis, sid, 0)
    lost_in_log = check_exactly_once(logged, last)
    lost_seen = check_exactly_once(got, last)
    assert lost_seen == lost_in_log
    return lost_in_log


async def test_a_client_pause_loses_and_duplicates_nothing(server: EmbeddedRedis, clients):
    sid = "paused"
    log = EventLog(clients(server.url), sid, max_events=5000, ttl_s=60)
    hub = SubscriptionHub(clients(server.url))
    admin = clients(server.url)
    publisher = Publisher(log, rate=50)
    got: list[Envelope] = []
    subscriber = asyncio.create_task(collect(hub, sid, 500, got))
    publishing = asyncio.create_task(publisher.run(500))  # 10 s
    try:
        await seconds_until(lambda: publisher.published >= 75, 5, "publishing")
        resumes = time.monotonic() + 7.0  # the pause ends a little before (the command's trip)
        await admin.execute_command("CLIENT", "PAUSE", 7000, "ALL")
        paused_at = publisher.published
        await seconds_until(lambda: time.monotonic() >= resumes - 0.3, 8, "the pause over")
        held = log.pending
        await seconds_until(lambda: log.pending <= 1, 5, "caught up")
        recovery = time.monotonic() - resumes
        await asyncio.wait_for(publishing, 10)
        await asyncio.wait_for(log.flush(), 5)
        await asyncio.wait_for(subscriber, 10)
    finally:
        publishing.cancel()
        subscriber.cancel()
        await hub.close()
    lost = await check_log_and_subscriber(admin, sid, got, 500)
    assert lost == [] and log.stats.lost == 0
    figures(
        "pause 7 s",
        published_at_pause=paused_at,
        held_at_resume=held,
        peak_pending=log.stats.peak_pending,
        writer_recovery_s=recovery,
        failed_writes=log.stats.failures,
        resent=log.stats.resent,
        lost=log.stats.lost,
    )


MODULES = ["tests.service.tools"]


def tool_call(call_id: str, seconds: float) -> ToolRequest:
    args = json.dumps({"text": call_id, "seconds": seconds})
    return ToolRequest("faulty", call_id, "slow_echo", args, "p", time.time() + 25)


async def outcomes(redis: Redis) -> list[ToolOutcome]:
    entries = await redis.xrange(keys.tool_results("faulty"))
    return [ToolOutcome.unpack(fields[b"o"]) for _id, fields in entries]


async def test_a_redis_restart_loses_no_event_and_no_tool_call(server: EmbeddedRedis, clients):
    sid = "restarted"
    log = EventLog(clients(server.url), sid, max_events=5000, ttl_s=60)
    hub = SubscriptionHub(clients(server.url))
    admin = clients(server.url)
    settings = ToolPoolSettings(
        modules=MODULES, concurrency=8, timeout_s=10, claim_idle_s=1.0, max_deliveries=5
    )
    worker = ToolWorker(
        clients(server.url), "p", settings, ToolRegistry.from_modules(MODULES), name="w1"
    )
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    publisher = Publisher(log, rate=50)
    got: list[Envelope] = []
    subscriber = asyncio.create_task(collect(hub, sid, 300, got))
    publishing = asyncio.create_task(publisher.run(300))  # 6 s
    calls = [f"before-{n}" for n in range(6)] + [f"after-{n}" for n in range(8)]
    try:
        await seconds_until(lambda: publisher.published >= 100, 5, "publishing")
        for call_id in calls[:6]:  # still running when Redis goes (their results wait)
            await submit(admin, tool_call(call_id, 1.2))
        await seconds_until(lambda: len(worker._in_progress) == 6, 5, "the calls running")
        running_at_restart = len(worker._in_progress)
        halted = time.monotonic()
        await asyncio.to_thread(server.halt)
        published_at_halt = publisher.published
        await asyncio.sleep(1.5)  # the outage
        await asyncio.to_thread(server.resume)
        down_s = time.monotonic() - halted
        held = log.pending
        await seconds_until(lambda: log.pending <= 1, 10, "caught up")
        caught_up = time.monotonic() - server.ready_at
        for call_id in calls[6:]:
            await submit(admin, tool_call(call_id, 0.3))
        await asyncio.wait_for(publishing, 10)
        await asyncio.wait_for(log.flush(), 10)
        await asyncio.wait_for(subscriber, 10)

        async def all_answered_and_acknowledged() -> bool:
            done = {o.call_id for o in await outcomes(admin)} >= set(calls)
            pending = await admin.xpending(keys.tool_calls("p"), GROUP)
            return done and pending["pending"] == 0

        await seconds_until(all_answered_and_acknowledged, 15, "every call answered")
    finally:
        stop.set()
        await asyncio.wait_for(working, 15)
        publishing.cancel()
        subscriber.cancel()
        await hub.close()
    assert await check_log_and_subscriber(admin, sid, got, 300) == []
    results = await outcomes(admin)
    per_call = Counter(o.call_id for o in results)
    assert per_call == dict.fromkeys(calls, 1)
    assert not any(o.is_error for o in results)
    assert not working.exception()
    figures(
        "restart",
        redis_down_s=down_s,
        published_at_halt=published_at_halt,
        held_after_restart=held,
        peak_pending=log.stats.peak_pending,
        writer_back_after_redis_s=log.stats.recovered_at - server.ready_at,
        caught_up_after_redis_s=caught_up,
        writer_outage_s=log.stats.last_outage_s,
        failed_writes=log.stats.failures,
        resent=log.stats.resent,
        lost=log.stats.lost,
        calls_running_at_restart=running_at_restart,
        worker_recoveries=worker.recoveries,
        own_calls_not_rerun=worker.kept_own,
        tool_results=len(results),
        max_attempt=max(o.attempt for o in results),
    )


async def test_connections_cut_mid_batch_lose_and_duplicate_nothing(server: EmbeddedRedis, clients):
    sid = "cut"
    rng = random.Random(7)
    async with (
        TcpProxy("127.0.0.1", server.port) as writer_path,
        TcpProxy("127.0.0.1", server.port) as hub_path,
    ):
        direct = clients(server.url)
        log = EventLog(clients(writer_path.url), sid, max_events=5000, ttl_s=60)
        hub = SubscriptionHub(clients(hub_path.url))
        publisher = Publisher(log, rate=250, pad=1500, burst=25)  # batches of ~40 KB
        got: list[Envelope] = []
        subscriber = asyncio.create_task(collect(hub, sid, 1500, got))
        publishing = asyncio.create_task(publisher.run(1500))  # 6 s
        recoveries: list[float] = []
        kinds: Counter[str] = Counter()
        try:
            await seconds_until(lambda: publisher.published >= 100, 5, "publishing")
            while publisher.published < 1400:
                kind = ("command", "reply", "now")[len(recoveries) % 3]
                writer_path.cut_done.clear()
                if kind == "command":  # part of a script call reaches Redis, then the reset
                    writer_path.cut(after_bytes=rng.randint(1, 30_000), direction="up")
                elif kind == "reply":  # Redis ran the batch; its reply is cut off
                    writer_path.cut(after_bytes=rng.randint(1, 3), direction="down")
                else:
                    writer_path.cut()
                if len(recoveries) % 2 == 0:
                    hub_path.cut()  # and the subscriber's pub/sub connection
                await asyncio.wait_for(writer_path.cut_done.wait(), 5)
                kinds[kind] += 1
                target = log.seq
                recoveries.append(await _logged(direct, sid, target))
                await asyncio.sleep(rng.uniform(0.05, 0.3))
            await asyncio.wait_for(publishing, 10)
            await asyncio.wait_for(log.flush(), 10)
            await asyncio.wait_for(subscriber, 10)
        finally:
            publishing.cancel()
            subscriber.cancel()
            await hub.close()
        assert await check_log_and_subscriber(direct, sid, got, 1500) == []
        assert log.stats.resent > 0  # batches Redis had run, sent again, skipped
        assert max(recoveries) < 5
        figures(
            "cuts",
            cuts=writer_path.cuts + hub_path.cuts,
            writer_cuts=dict(kinds),
            connections_aborted=writer_path.cut_links + hub_path.cut_links,
            reconnections=writer_path.connections + hub_path.connections,
            writer_recovery_max_s=max(recoveries),
            writer_recovery_median_s=sorted(recoveries)[len(recoveries) // 2],
            failed_writes=log.stats.failures,
            resent_skipped=log.stats.resent,
            peak_pending=log.stats.peak_pending,
            lost=log.stats.lost,
        )


async def _logged(redis: Redis, sid: str, seq: int) -> float:
    """Seconds until the log holds ``seq``."""

    async def there() -> bool:
        return await last_seq(redis, sid) >= seq

    return await seconds_until(there, 10, f"seq {seq} logged")


@pytest.mark.parametrize(
    ("bound", "pad"),
    [
        pytest.param({"max_pending_events": 40}, 0, id="events"),
        pytest.param({"max_pending_bytes": 48 * 1024}, 2000, id="bytes"),
    ],
)
async def test_an_outage_past_the_bound_is_one_events_lost(
    server: EmbeddedRedis, clients, caplog, bound: dict[str, int], pad: int
):
    caplog.set_level(logging.WARNING, logger="s2s.eventlog")
    sid = "outage"
    direct = clients(server.url)
    log = EventLog(clients(server.url), sid, max_events=5000, ttl_s=60, **bound)
    hub = SubscriptionHub(clients(server.url))
    publisher = Publisher(log, rate=50, pad=pad)
    got: list[Envelope] = []
    subscriber = asyncio.create_task(collect(hub, sid, 200, got))
    publishing = asyncio.create_task(publisher.run(200))  # 4 s
    try:
        await seconds_until(lambda: publisher.published >= 40, 5, "publishing")
        await asyncio.wait_for(log.flush(), 5)
        published_at_halt = publisher.published  # all of it in the log
        await asyncio.to_thread(server.halt)
        await seconds_until(lambda: publisher.published >= published_at_halt + 100, 5, "more")
        published_at_resume = publisher.published
        held = log.pending
        held_bytes = log._pending_bytes
        await asyncio.to_thread(server.resume)
        await seconds_until(lambda: log.pending <= 1, 10, "caught up")
        caught_up = time.monotonic() - server.ready_at
        published_at_recovery = publisher.published
        await asyncio.wait_for(publishing, 10)
        await asyncio.wait_for(log.flush(), 10)
        await asyncio.wait_for(subscriber, 10)
    finally:
        publishing.cancel()
        subscriber.cancel()
        await hub.close()
    lost = await check_log_and_subscriber(direct, sid, got, 200)
    assert len(lost) == 1
    first, end = lost[0]
    assert end - first + 1 == log.stats.lost
    # Dropped: one run, the oldest of what the outage held; never what was written before it,
    # nor the newest envelopes (up to the bound) when writing resumed.
    assert published_at_halt < first and end < published_at_recovery
    assert all(e.type == "note" for e in got if e.seq > end)  # everything after it arrived
    if "max_pending_events" in bound:
        assert log.stats.peak_pending <= bound["max_pending_events"]
    else:
        assert log.stats.peak_pending_bytes <= bound["max_pending_bytes"] + pad + 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "s2s.eventlog"]
    assert len(warnings) == 3, warnings  # outage began, dropping, writing again: not per event
    figures(
        f"outage past the bound {bound}",
        published_during_outage=published_at_resume - published_at_halt,
        held_at_resume=held,
        held_bytes_at_resume=held_bytes,
        peak_pending=log.stats.peak_pending,
        peak_pending_bytes=log.stats.peak_pending_bytes,
        lost=log.stats.lost,
        lost_range=lost[0],
        writer_back_after_redis_s=log.stats.recovered_at - server.ready_at,
        caught_up_after_redis_s=caught_up,
        writer_outage_s=log.stats.last_outage_s,
        published_between_resume_and_recovery=published_at_recovery - published_at_resume,
    )
