"""redis_class keeps redis-py's optional OpenTelemetry SDK out of session processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_the_client_loads_without_the_sdk_which_stays_importable():
    out = _run(
        """
        import sys
        from s2s.service.redis_client import redis_class
        Redis = redis_class()
        client = Redis.from_url("redis://127.0.0.1:1/0")
        loaded = "opentelemetry.sdk.metrics" in sys.modules
        import opentelemetry.sdk.metrics
        print(Redis.__module__, loaded, "MeterProvider" in dir(opentelemetry.sdk.metrics))
        """
    )
    assert out == "redis.asyncio.client False True"


def test_a_process_that_already_uses_the_sdk_gets_a_plain_import():
    out = _run(
        """
        import sys
        import opentelemetry.sdk.metrics
        from s2s.service.redis_client import redis_class
        redis_class()
        from redis.observability import providers
        print(providers.OTEL_AVAILABLE)
        """
    )
    assert out == "True"
