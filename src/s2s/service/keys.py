"""Redis key names. Per-session keys share a ``{hash tag}`` so a Redis Cluster keeps them on one
shard (sharded pub/sub and multi-key pipelines stay on one node)."""

from __future__ import annotations

__all__ = [
    "ALL_CALLS",
    "LIVE_SESSIONS",
    "METRICS",
    "events_channel",
    "event_log",
    "session_media",
    "session_meta",
    "session_state",
    "call_outcome",
    "provider_down",
    "telephony_token",
    "tool_calls",
    "tenant_calls",
    "tenant_creates",
    "tenant_live",
    "tool_dead_letters",
    "tool_results",
]

PREFIX = "s2s"
LIVE_SESSIONS = f"{PREFIX}:sessions:live"
"""Sorted set: session id -> lease expiry (unix seconds)."""
METRICS = f"{PREFIX}:metrics"
"""Hash of cluster-wide counters and histogram buckets."""
ALL_CALLS = f"{PREFIX}:calls"
"""Pub/sub channel: every tenant's call summaries, JSON (what admins watch)."""


def tenant_calls(tenant: str) -> str:
    """Pub/sub channel: the tenant's call summaries, JSON (:class:`~.call_watch.CallSummary`),
    published by session actors when a call's state or counts change."""
    return f"{PREFIX}:tenants:{tenant}:calls"


def tenant_live(tenant: str) -> str:
    """Sorted set: the tenant's live session ids -> lease expiry (its live-session quota)."""
    return f"{PREFIX}:tenants:{tenant}:live"


def tenant_creates(tenant: str) -> str:
    """Sorted set: the tenant's session creations of the last minute (its rate quota)."""
    return f"{PREFIX}:tenants:{tenant}:creates"


def events_channel(session_id: str) -> str:
    """Pub/sub channel carrying the session's event envelopes (live, best effort)."""
    return f"{PREFIX}:{{{session_id}}}:events"


def event_log(session_id: str) -> str:
    """Capped stream of the same envelopes; entry id ``<seq>-0`` (the replay log)."""
    return f"{PREFIX}:{{{session_id}}}:log"


def session_meta(session_id: str) -> str:
    """Hash describing the session (provider, created, caller metadata, status)."""
    return f"{PREFIX}:{{{session_id}}}:meta"


def session_owner(session_id: str) -> str:
    """The media token of the actor that owns the call now (``-`` once an ingress revoked it to
    replace a silent actor): a frozen actor that wakes up finds it is not the owner any more."""
    return f"s2s:session:{session_id}:owner"


def session_media(session_id: str) -> str:
    """Where the live actor's media channel listens (msgpack; expires with the actor's lease).

    Lets an ingress that cannot see the actor through Ray (a new cluster during a rollout) reach
    it instead of starting a second actor for the same call. Holds the channel's token: never
    served by the API."""
    return f"{PREFIX}:{{{session_id}}}:media"


def session_state(session_id: str) -> str:
    """What a replacement actor needs to continue the call (msgpack)."""
    return f"{PREFIX}:{{{session_id}}}:state"


def tool_results(session_id: str) -> str:
    """Stream of tool results for the session, written by tool workers."""
    return f"{PREFIX}:{{{session_id}}}:tool_results"


def tool_calls(pool: str) -> str:
    """Stream of tool calls for a pool (one consumer group: the pool's workers)."""
    return f"{PREFIX}:tools:{pool}:calls"


def tool_dead_letters(pool: str) -> str:
    """Calls that failed ``max_deliveries`` times."""
    return f"{PREFIX}:tools:{pool}:dead"


def telephony_token(token: str) -> str:
    """A phone stream's one-use token -> its session (short TTL; the voice webhook writes it)."""
    return f"{PREFIX}:telephony:token:{token}"


def call_outcome(session_id: str) -> str:
    """How a phone call ended (hang up or transfer, to whom, a summary): JSON, read by the
    platform's follow-up (Twilio's ``<Redirect>`` after ``</Connect>``)."""
    return f"{PREFIX}:{{{session_id}}}:call_outcome"


def provider_down(provider: str, scope: str) -> str:
    """String with a TTL: ``provider`` is down for the credentials of ``scope`` (``service`` or
    ``tenant:<name>``) until it expires; JSON ``{provider, code, error_type, until}``."""
    return f"{PREFIX}:providers:{provider}:down:{scope}"
