"""Providers down for an account (quota, billing, credentials) are skipped by new calls for a
while (:mod:`actors.provider_health`): the marks on a real Redis, and the start decision."""

from __future__ import annotations

import time

from redis.asyncio import Redis

import s2s
from actors.provider_health import (
    Down,
    account_failure,
    choose_start,
    down,
    mark_down,
    scope,
    start_on,
)
from actors.spec import SessionSpec
from s2s.errors import AuthenticationError, ProviderConnectionError, QuotaExceededError

QUOTA = QuotaExceededError("You exceeded your current quota", code="insufficient_quota").to_dict()


def spec(**fields: object) -> SessionSpec:
    base: dict[str, object] = {
        "session_id": "s1",
        "provider": "openai_realtime",
        "config": {},
        "tenant": "acme",
        "failover": ["gemini_live", "nova"],
    }
    return SessionSpec.from_dict({**base, **fields})


def config() -> s2s.Config:
    return s2s.Config(
        model="gpt-realtime-2",
        voice="marin",
        extra={"api_key": "sk-openai"},
        failover=[
            s2s.Fallback("gemini_live", model="gemini-3.8-live", extra={"api_key": "g"}),
            s2s.Fallback("nova", model="amazon.nova-2-5-sonic", extra={"region": "us-east-1"}),
        ],
    )


def test_only_account_failures_mark_a_provider_down() -> None:
    assert account_failure(QuotaExceededError("out of credit"))
    assert account_failure(AuthenticationError("bad key"))
    assert account_failure(QUOTA)
    assert not account_failure(ProviderConnectionError("reset"))
    assert not account_failure(ProviderConnectionError("reset").to_dict())
    assert not account_failure(None)


def test_the_scope_is_the_tenants_own_credentials_or_the_services() -> None:
    own = spec(
        credentials={"api_key": "ACME_OPENAI_KEY"},
        failover_credentials={"nova": {"aws_access_key_id": "ACME_AWS_ID"}},
    )
    assert scope(own, "openai_realtime") == "tenant:acme"
    assert scope(own, "nova") == "tenant:acme"
    assert scope(own, "gemini_live") == "service"
    assert scope(spec(), "openai_realtime") == "service"


async def test_a_mark_holds_for_its_scope_and_the_cooldown_only(redis) -> None:
    tenant_keyed = spec(credentials={"api_key": "ACME_OPENAI_KEY"})
    await mark_down(redis, spec(), "openai_realtime", QUOTA, cooldown_s=30)
    marks = await down(redis, spec(), ["openai_realtime", "gemini_live"])
    assert list(marks) == ["openai_realtime"]
    mark = marks["openai_realtime"]
    assert (mark.code, mark.error_type) == ("insufficient_quota", "QuotaExceededError")
    assert time.time() + 29 < mark.until <= time.time() + 30
    ttl = await redis.pttl("s2s:providers:openai_realtime:down:service")
    assert 29_000 < ttl <= 30_000
    # a tenant with its own OpenAI key is not held back by the service's empty account
    assert await down(redis, tenant_keyed, ["openai_realtime"]) == {}
    await mark_down(redis, spec(), "nova", QUOTA, cooldown_s=0)  # skipping turned off
    assert await down(redis, spec(), ["nova"]) == {}


async def test_a_malformed_mark_is_ignored(redis) -> None:
    await redis.set("s2s:providers:nova:down:service", b"not json")
    assert await down(redis, spec(), ["nova"]) == {}


async def test_a_new_call_starts_on_the_first_provider_up_with_that_providers_settings(
    redis,
) -> None:
    await mark_down(redis, spec(), "openai_realtime", QUOTA, cooldown_s=30)
    provider, moved, skipped = await choose_start(redis, spec(), config(), cooldown_s=30)
    assert provider == "gemini_live"
    assert (moved.model, moved.voice, dict(moved.extra)) == (
        "gemini-3.8-live",
        None,
        {"api_key": "g"},
    )
    # the others up next, then the skipped provider with the request's own settings
    assert [f.provider for f in moved.failover] == ["nova", "openai_realtime"]
    requested = moved.failover[1]
    assert (requested.model, requested.voice) == ("gpt-realtime-2", "marin")
    assert dict(requested.extra) == {"api_key": "sk-openai"}
    assert [m.provider for m in skipped] == ["openai_realtime"]


async def test_nothing_moves_without_a_provider_up_to_move_to(redis) -> None:
    for name in ("openai_realtime", "gemini_live", "nova"):
        await mark_down(redis, spec(), name, QUOTA, cooldown_s=30)
    provider, moved, skipped = await choose_start(redis, spec(), config(), cooldown_s=30)
    assert (provider, moved, skipped) == ("openai_realtime", config(), [])
    # nor with skipping off, nor for a call without a failover list
    await redis.delete("s2s:providers:gemini_live:down:service")
    assert (await choose_start(redis, spec(), config(), cooldown_s=0))[0] == "openai_realtime"
    alone = config().replace(failover=[])
    assert (await choose_start(redis, spec(), alone, cooldown_s=30))[0] == "openai_realtime"


def test_down_providers_before_the_one_chosen_are_all_reported_skipped() -> None:
    marks = {
        "openai_realtime": _mark("openai_realtime"),
        "gemini_live": _mark("gemini_live"),
    }
    provider, moved, skipped = start_on("openai_realtime", config(), marks)
    assert provider == "nova"
    assert [f.provider for f in moved.failover] == ["openai_realtime", "gemini_live"]
    assert [m.provider for m in skipped] == ["openai_realtime", "gemini_live"]
    # a provider that is up is never skipped, whatever the others' marks
    assert start_on("openai_realtime", config(), {"nova": _mark("nova")})[0] == "openai_realtime"


async def test_an_unreachable_redis_starts_the_call_as_asked() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)  # refused
    try:
        provider, moved, skipped = await choose_start(unreachable, spec(), config(), cooldown_s=30)
    finally:
        await unreachable.aclose()
    assert (provider, moved, skipped) == ("openai_realtime", config(), [])


def _mark(provider: str) -> Down:
    return Down(provider, "insufficient_quota", "QuotaExceededError", time.time() + 30)
