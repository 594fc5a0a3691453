"""Admission on a real redis-server: quotas and capacity hold under concurrent creates."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from deployments.admission import Admission
from s2s.service.config import QuotaSettings
from s2s.service.state import SessionStore


async def test_concurrent_admits_never_overshoot_a_limit(redis: Redis) -> None:
    admission = Admission(redis)
    quotas = QuotaSettings(max_live_sessions=10)
    verdicts = await asyncio.gather(
        *(admission.admit(f"s{i:03d}", "acme", quotas, capacity=100, lease_s=30) for i in range(50))
    )
    assert sum(v is None for v in verdicts) == 10
    assert {v.limit for v in verdicts if v is not None} == {"max_live_sessions"}
    assert len(await SessionStore(redis, ttl_s=60).live("acme")) == 10
    other = await admission.admit("g001", "globex", QuotaSettings(), capacity=100, lease_s=30)
    assert other is None  # another tenant is not counted against acme


async def test_capacity_counts_every_tenant_and_frees_on_release(redis: Redis) -> None:
    admission = Admission(redis)
    none = QuotaSettings()
    assert await admission.admit("a1", "acme", none, capacity=2, lease_s=30) is None
    assert await admission.admit("g1", "globex", none, capacity=2, lease_s=30) is None
    assert await admission.full(2)
    refused = await admission.admit("a2", "acme", none, capacity=2, lease_s=30)
    assert refused is not None and refused.limit == "capacity" and refused.retry_after_s >= 1
    await admission.release("g1", "globex")
    assert await admission.admit("a2", "acme", none, capacity=2, lease_s=30) is None


async def test_a_rate_limit_says_when_to_retry(redis: Redis) -> None:
    admission = Admission(redis)
    quotas = QuotaSettings(creates_per_minute=3)
    for i in range(3):
        assert await admission.admit(f"s{i}", "acme", quotas, capacity=None, lease_s=30) is None
        await admission.release(f"s{i}", "acme")  # ended calls still count as creations
    refused = await admission.admit("s3", "acme", quotas, capacity=None, lease_s=30)
    assert refused is not None and refused.limit == "creates_per_minute"
    assert 1 <= refused.retry_after_s <= 60


async def test_an_expired_lease_no_longer_counts(redis: Redis) -> None:
    admission = Admission(redis)
    quotas = QuotaSettings(max_live_sessions=1)
    assert await admission.admit("dead", "acme", quotas, capacity=1, lease_s=0.05) is None
    await asyncio.sleep(0.1)  # the lease itself must run out: wall-clock time is the subject
    assert await admission.admit("next", "acme", quotas, capacity=1, lease_s=30) is None
