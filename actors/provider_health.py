"""Providers an account cannot use right now are skipped by new calls for a while.

A quota, billing or credential failure is the account's, not the call's: the next call on the
same credentials meets it again, after the time it takes to connect and be refused (hundreds of
milliseconds on a real provider, every call) before moving down its failover list. So when a
call sees one (at its start or mid-call, with or without a failover list), its actor marks the
provider *down* for ``failover_cooldown_s`` in Redis, under the credentials' scope: the tenant's
own credentials for that provider (``tenant:<name>``) or the service's (``service``). A new call
whose provider is down and whose failover list names a provider that is not starts on that one,
with the down ones kept at the end of its list (they may have recovered by the time the call
needs them), and publishes a ``provider_skipped`` event saying why.

A call continued by a replacement actor keeps its provider; only new calls are moved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import s2s
from s2s.errors import AuthenticationError, QuotaExceededError, S2SError
from s2s.log import logger
from s2s.service import keys

from .spec import SessionSpec

__all__ = [
    "ACCOUNT_FAILURES",
    "Down",
    "account_failure",
    "choose_start",
    "down",
    "mark_down",
    "scope",
    "start_on",
]

log = logger.getChild("actor")

#: Error classes (by name, as events carry them) that mark a provider down for an account.
ACCOUNT_FAILURES = frozenset({QuotaExceededError.__name__, AuthenticationError.__name__})


@dataclass(frozen=True, slots=True)
class Down:
    """Why a provider is down for a scope, and until when (unix seconds)."""

    provider: str
    code: str
    error_type: str
    until: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "code": self.code,
            "error_type": self.error_type,
            "until": round(self.until, 3),
        }


def account_failure(error: S2SError | Mapping[str, Any] | None) -> bool:
    """True for a quota, billing or credential failure (an error, or its ``to_dict()``)."""
    if isinstance(error, S2SError):
        return isinstance(error, QuotaExceededError | AuthenticationError)
    return isinstance(error, Mapping) and error.get("type") in ACCOUNT_FAILURES


def scope(spec: SessionSpec, provider: str) -> str:
    """Whose credentials the call uses for ``provider``: the tenant's own, or the service's."""
    own = spec.credentials if provider == spec.provider else spec.failover_credentials.get(provider)
    return f"tenant:{spec.tenant}" if own else "service"


async def mark_down(
    redis: Any, spec: SessionSpec, provider: str, error: Mapping[str, Any], cooldown_s: float
) -> None:
    """Mark ``provider`` down for the call's scope for ``cooldown_s`` (``error``: its dict)."""
    if cooldown_s <= 0:
        return
    code = str(error.get("code") or error.get("type") or "")
    mark = Down(provider, code, str(error.get("type") or ""), time.time() + cooldown_s)
    key = keys.provider_down(provider, scope(spec, provider))
    await redis.set(key, json.dumps(mark.to_dict()), px=int(cooldown_s * 1000))
    log.warning("%s down for %s (%s): new calls skip it %.0f s", provider, key, code, cooldown_s)


async def down(redis: Any, spec: SessionSpec, providers: list[str]) -> dict[str, Down]:
    """The marks in force for ``providers`` under the call's scopes (one round trip)."""
    if not providers:
        return {}
    found: dict[str, Down] = {}
    raw = await redis.mget([keys.provider_down(p, scope(spec, p)) for p in providers])
    for provider, value in zip(providers, raw, strict=True):
        if value is None:
            continue
        try:
            data = json.loads(value)
            until = float(data["until"])
            found[provider] = Down(provider, str(data["code"]), str(data["error_type"]), until)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed down mark for %s: %r", provider, value)
    return found


def start_on(
    provider: str, config: s2s.Config, marks: Mapping[str, Down]
) -> tuple[str, s2s.Config, list[Down]]:
    """The provider a new call starts on, its config, and the down providers it skips.

    Unchanged when ``provider`` is not down or every provider of the failover list is. Otherwise
    the call starts on the first provider of the list that is not down (with that provider's own
    settings), followed by the others that are not, then the down ones in their order: the
    requested provider first, with the request's settings.
    """
    if provider not in marks:
        return provider, config, []
    up = [f for f in config.failover if f.provider not in marks]
    if not up:
        return provider, config, []
    first = up[0]
    requested = s2s.Fallback(provider, model=config.model, voice=config.voice, extra=config.extra)
    later = [*up[1:], requested, *(f for f in config.failover if f.provider in marks)]
    skipped = [marks[provider]] + [
        marks[f.provider]
        for f in config.failover[: config.failover.index(first)]
        if f.provider in marks
    ]
    moved = config.replace(
        model=first.model, voice=first.voice, extra=dict(first.extra), failover=later
    )
    return first.provider, moved, skipped


async def choose_start(
    redis: Any, spec: SessionSpec, config: s2s.Config, cooldown_s: float
) -> tuple[str, s2s.Config, list[Down]]:
    """:func:`start_on` with the marks in Redis; as asked when there is nothing to skip to,
    skipping is off, or Redis does not answer (the call must not wait on a health check)."""
    if cooldown_s <= 0 or not config.failover:
        return spec.provider, config, []
    names = [spec.provider, *(f.provider for f in config.failover)]
    try:
        marks = await down(redis, spec, names)
    except Exception as exc:
        log.warning("provider health unknown (%r); starting on %s as asked", exc, spec.provider)
        return spec.provider, config, []
    return start_on(spec.provider, config, marks)
