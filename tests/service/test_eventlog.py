"""The replay log and pub/sub fan-out against a real redis-server: nothing is lost."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from s2s.events import EventType, Role, SessionEvent
from s2s.service import keys, subscribe
from s2s.service.envelope import Envelope
from s2s.service.eventlog import EventLog, last_seq, read_log
from s2s.service.subscribe import SubscriptionHub


def text_event(n: int) -> SessionEvent:
    return SessionEvent(EventType.TRANSCRIPT, text=f"t{n}", role=Role.ASSISTANT, final=True)


async def take(events, count: int, timeout: float = 5.0) -> list[Envelope]:
    out: list[Envelope] = []
    async with asyncio.timeout(timeout):
        async for envelope in events:
            out.append(envelope)
            if len(out) == count:
                return out
    return out


async def test_publish_then_read_back_by_sequence_number(redis: Redis):
    log = EventLog(redis, "s1", max_events=100, ttl_s=60)
    for n in range(5):
        log.publish_event(text_event(n))
    log.publish("tool_result", {"call_id": "c"})
    await log.flush()
    assert [e.seq for e in await read_log(redis, "s1", 0)] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in await read_log(redis, "s1", 4)] == [5, 6]
    assert [e.seq for e in await read_log(redis, "s1", 1, until_seq=3)] == [2, 3]
    assert await last_seq(redis, "s1") == 6
    assert 0 < await redis.ttl(keys.event_log("s1")) <= 60


async def test_a_late_subscriber_gets_history_then_live_events_in_order(redis: Redis):
    log = EventLog(redis, "s2", max_events=100, ttl_s=60)
    for n in range(3):
        log.publish_event(text_event(n))
    await log.flush()
    hub = SubscriptionHub(redis)
    try:
        async with hub.subscribe("s2", after_seq=1) as events:
            for n in range(3, 6):
                log.publish_event(text_event(n))
            got = await take(events, 4)
    finally:
        await hub.close()
    assert [e.seq for e in got] == [2, 3, 4, 5]
    assert [e.event().text for e in got] == ["t1", "t2", "t3", "t4"]


async def test_gaps_in_pub_sub_are_filled_from_the_log(redis: Redis):
    hub = SubscriptionHub(redis)
    try:
        async with hub.subscribe("s3") as events:
            # seq 1 and 2 reach the log but never pub/sub (a dropped subscriber connection)
            for seq in (1, 2):
                await redis.xadd(
                    keys.event_log("s3"), {"e": Envelope("s3", seq, 0.0, "x").pack()}, id=f"{seq}-0"
                )
            log = EventLog(redis, "s3", max_events=100, ttl_s=60, start_seq=2)
            log.publish_event(text_event(3))
            got = await take(events, 3)
    finally:
        await hub.close()
    assert [e.seq for e in got] == [1, 2, 3]


async def test_a_trimmed_log_reports_what_was_lost(redis: Redis):
    log = EventLog(redis, "s4", max_events=100, ttl_s=60)
    for n in range(10):
        log.publish_event(text_event(n))
    await log.flush()
    await redis.xtrim(keys.event_log("s4"), minid="6-0", approximate=False)  # 1..5 are gone
    hub = SubscriptionHub(redis)
    try:
        async with hub.subscribe("s4", after_seq=0) as events:
            log.publish_event(text_event(10))  # seq 11 arrives live
            got = await take(events, 7)
    finally:
        await hub.close()
    assert got[0].type == "events_lost" and got[0].data == {"first": 1, "last": 5}
    assert [e.seq for e in got[1:]] == [6, 7, 8, 9, 10, 11]


async def test_a_slow_subscriber_catches_up_from_the_log(redis: Redis, monkeypatch):
    monkeypatch.setattr(subscribe, "QUEUE_LIMIT", 5)
    hub = SubscriptionHub(redis)
    log = EventLog(redis, "s5", max_events=1000, ttl_s=60)
    try:
        async with hub.subscribe("s5") as events:
            for n in range(50):  # far more than the subscriber queue holds
                log.publish_event(text_event(n))
            await log.flush()
            await asyncio.sleep(0.3)
            got = await take(events, 50)
    finally:
        await hub.close()
    assert [e.seq for e in got] == list(range(1, 51))


async def test_a_dropped_pub_sub_connection_loses_nothing(redis: Redis):
    hub = SubscriptionHub(redis)
    log = EventLog(redis, "s6", max_events=1000, ttl_s=60)
    try:
        async with hub.subscribe("s6") as events:
            log.publish_event(text_event(0))
            first = await take(events, 1)
            await redis.client_kill_filter(_type="pubsub")  # the server drops the subscriber
            for n in range(1, 20):
                log.publish_event(text_event(n))
            await log.flush()
            rest = await take(events, 19, timeout=10)
    finally:
        await hub.close()
    assert [e.seq for e in first + rest] == list(range(1, 21))


async def test_publishing_retries_while_redis_is_unreachable(redis: Redis, redis_url: str):
    broken = Redis.from_url(redis_url.replace(redis_url.rsplit(":", 1)[1], "1/0"))
    log = EventLog(broken, "s7", max_events=100, ttl_s=60)
    log.publish_event(text_event(0))
    await asyncio.sleep(0.3)  # failing and retrying, the envelope kept
    log._redis = redis
    await asyncio.wait_for(log.flush(), 5)
    assert [e.seq for e in await read_log(redis, "s7", 0)] == [1]
    await broken.aclose()


@pytest.mark.parametrize("count", [200])
async def test_many_subscribers_share_one_connection(redis: Redis, count: int):
    hub = SubscriptionHub(redis)
    log = EventLog(redis, "s8", max_events=1000, ttl_s=60)
    try:
        async with hub.subscribe("s8") as a, hub.subscribe("s8") as b:
            for n in range(count):
                log.publish_event(text_event(n))
            got_a, got_b = await asyncio.gather(take(a, count), take(b, count))
            clients = await redis.client_list(_type="pubsub")
    finally:
        await hub.close()
    assert [e.seq for e in got_a] == [e.seq for e in got_b] == list(range(1, count + 1))
    assert len(clients) == 1


async def test_a_batch_redis_already_applied_is_not_written_twice(redis: Redis):
    """A retry after a lost reply: the envelopes the log has are skipped, not re-sent."""
    first = EventLog(redis, "sid-retry", max_events=100, ttl_s=60)
    for n in range(3):
        first.publish("note", {"n": n})
    await first.flush()
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel("sid-retry"))
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    again = EventLog(redis, "sid-retry", max_events=100, ttl_s=60)  # the same seqs 1..3, then 4, 5
    for n in range(5):
        again.publish("note", {"n": n})
    await again.flush()
    logged = await read_log(redis, "sid-retry", 0)
    assert [e.seq for e in logged] == [1, 2, 3, 4, 5]
    published = []
    while (
        message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
    ) is not None:
        published.append(Envelope.unpack(message["data"]).seq)
    assert published == [4, 5]
    await pubsub.aclose()


def test_the_pending_bounds_default_to_the_configs():
    from s2s.service import eventlog
    from s2s.service.config import RedisSettings

    settings = RedisSettings()
    assert settings.max_pending_events == eventlog.MAX_PENDING_EVENTS
    assert settings.max_pending_bytes == eventlog.MAX_PENDING_BYTES


async def test_past_the_bound_the_oldest_events_become_one_events_lost(
    redis: Redis, redis_url: str
):
    broken = Redis.from_url(redis_url.replace(redis_url.rsplit(":", 1)[1], "1/0"))
    log = EventLog(broken, "s9", max_events=100, ttl_s=60, max_pending_events=10)
    for n in range(30):  # Redis unreachable: the marker and the 9 newest fit
        log.publish_event(text_event(n))
    assert log.pending == 10 and log.stats.lost == 21
    await asyncio.sleep(0.2)
    log._redis = redis
    await asyncio.wait_for(log.flush(), 5)
    logged = await read_log(redis, "s9", 0)
    assert [(e.seq, e.type) for e in logged[:2]] == [(21, "events_lost"), (22, "transcript")]
    assert logged[0].data == {"first": 1, "last": 21}
    assert [e.seq for e in logged[1:]] == list(range(22, 31))
    assert log.seq == 30 and await last_seq(redis, "s9") == 30
    await broken.aclose()


async def test_an_events_lost_in_the_log_is_not_reported_twice(redis: Redis):
    marker = Envelope("s10", 7, 0.0, "events_lost", {"first": 3, "last": 7})
    for envelope in [Envelope("s10", s, 0.0, "x") for s in (1, 2)] + [marker]:
        await redis.xadd(keys.event_log("s10"), {"e": envelope.pack()}, id=f"{envelope.seq}-0")
    hub = SubscriptionHub(redis)
    try:
        async with hub.subscribe("s10", after_seq=0) as events:
            from_log = await take(events, 3)
        async with hub.subscribe("s10", after_seq=4) as events:  # inside the lost range
            narrowed = await take(events, 1)
        async with hub.subscribe("s10", after_seq=2) as events:
            # the marker arrives live, after seq 2: no gap to fill, no second loss
            await redis.publish(keys.events_channel("s10"), marker.pack())
            live = await take(events, 1)
    finally:
        await hub.close()
    assert [(e.seq, e.type) for e in from_log] == [(1, "x"), (2, "x"), (7, "events_lost")]
    assert from_log[2].data == {"first": 3, "last": 7}
    assert narrowed[0].data == {"first": 5, "last": 7}
    assert [(e.seq, e.data) for e in live] == [(7, {"first": 3, "last": 7})]


async def test_an_envelope_that_cannot_be_encoded_becomes_events_lost(redis: Redis):
    log = EventLog(redis, "s11", max_events=100, ttl_s=60)
    log.publish("note", {"n": 1})
    log.publish("note", {"bad": object()})  # never raises into the publisher
    log.publish("note", {"n": 3})
    await asyncio.wait_for(log.flush(), 5)
    logged = await read_log(redis, "s11", 0)
    assert [(e.seq, e.type) for e in logged] == [(1, "note"), (2, "events_lost"), (3, "note")]
    assert logged[1].data == {"first": 2, "last": 2}


async def test_a_failing_event_reader_is_logged_and_restarted(
    redis: Redis, caplog: pytest.LogCaptureFixture
):
    log = EventLog(redis, "s11", max_events=100, ttl_s=60)
    hub = SubscriptionHub(redis)
    original = hub._read
    failures = 0

    async def read_failing_once() -> None:
        nonlocal failures
        if not failures:
            failures += 1
            raise KeyError("a bug in the reader")
        await original()

    hub._read = read_failing_once  # type: ignore[method-assign]
    try:
        async with hub.subscribe("s11") as events:
            for n in range(3):
                log.publish_event(text_event(n))
            got = await take(events, 3)
    finally:
        await hub.close()
    assert [e.seq for e in got] == [1, 2, 3]
    assert failures == 1
    assert "the event reader failed; restarting it" in caplog.text
