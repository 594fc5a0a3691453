"""Fixtures for the service tests: a real redis-server, and the whole stack on a real Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from deployments.stack import LocalStack
from s2s.service.config import ServiceConfig
from s2s.service.redis_server import EmbeddedRedis

from .stack import EmulatorThread, service_config, with_repo_on_path

# Tests that test_console.py collects from these modules get pytest's assertion messages too.
pytest.register_assert_rewrite("tests.service.softphone_checks", "tests.service.trace_checks")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with EmbeddedRedis() as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread()
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, emulator: EmulatorThread) -> Iterator[LocalStack]:
    """The whole service for one test module (a module may set ``SESSION_SLOTS``,
    ``TOOL_WORKERS``: worker processes per tool pool (1; each costs the first test a second or
    two of CPU while it imports), ``SERVE_SETTINGS``: ``serve`` settings over the tests' own,
    and ``OBSERVABILITY_FIXTURE``:
    the name of a module fixture whose value is the ``observability`` section, set up before
    the stack and torn down after it)."""
    with_repo_on_path()
    data: dict[str, Any] = service_config(emulator.emulator.url)
    slots = getattr(request.module, "SESSION_SLOTS", None)
    if slots is not None:
        data["sessions"]["slots_per_node"] = slots
    data["serve"] |= getattr(request.module, "SERVE_SETTINGS", {})
    observability = getattr(request.module, "OBSERVABILITY_FIXTURE", None)
    if observability is not None:
        data["observability"] = request.getfixturevalue(observability)
    workers = getattr(request.module, "TOOL_WORKERS", 1)
    local = LocalStack(ServiceConfig.model_validate(data), workers_per_pool=workers)
    local.start()
    yield local
    local.stop(graceful=False)  # nobody is on the calls any more: Ray's shutdown ends them


@pytest.fixture
def base(stack: LocalStack) -> str:
    assert stack.info is not None
    return stack.info.base_url


@pytest.fixture
def ws_base(stack: LocalStack) -> str:
    assert stack.info is not None
    return stack.info.ws_base
