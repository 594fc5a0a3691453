"""Who is calling: API keys to tenants and admins (no FastAPI, no Ray: unit-testable).

Keys are never kept in memory as given: each accepted key is stored as its SHA-256, and a
presented key is hashed and looked up, so comparing costs the same whatever the key. Keys come
from ``tenants.<name>.keys_env`` / ``key_hashes``, ``auth.api_keys`` / ``auth.api_keys_env`` (the
default tenant), ``auth.admin_keys_env`` / ``auth.admin_key_hashes`` (admins, who see every
tenant's calls and reach the operational routes) and ``auth.metrics_keys_env`` /
``auth.metrics_key_hashes`` (metrics readers: ``/metrics`` and nothing else).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from s2s.errors import ConfigurationError
from s2s.service.config import ServiceConfig, TenantSettings

__all__ = ["Authenticator", "Principal", "hash_key", "presented_key"]

#: Longest credential looked at; longer ones are refused without hashing them.
MAX_KEY_LENGTH = 512


def hash_key(key: str) -> str:
    """The SHA-256 (hex) under which a key is known (``s2s hash-key`` prints it)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a tenant's key, an admin's or a metrics reader's (``tenant`` is
    then None). A metrics reader owns no session and may read ``/metrics`` only."""

    tenant: str | None
    admin: bool = False
    metrics_only: bool = False

    def owns(self, tenant: str | None) -> bool:
        """May this caller see and steer a session of ``tenant``?"""
        return self.admin or (tenant is not None and tenant == self.tenant)

    @property
    def reads_metrics(self) -> bool:
        return self.admin or self.metrics_only

    @property
    def label(self) -> str:
        if self.metrics_only:
            return "metrics reader"
        return "admin" if self.admin else f"tenant {self.tenant}"


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries (``Authorization: Bearer``, ``X-API-Key``, ``?api_key=``).

    None when there is none or it is not printable ASCII of a sane length (a 401, never a 500).
    """
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        key = auth[7:].strip()
    else:
        key = headers.get("x-api-key") or query.get("api_key") or ""
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        return None
    return key


class Authenticator:
    """Maps presented keys to principals; knows each tenant's settings."""

    def __init__(self, config: ServiceConfig, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        auth = config.auth
        self.required = auth.required
        self.default_tenant = auth.default_tenant
        self.tenants: dict[str, TenantSettings] = dict(config.tenants)
        self.tenants.setdefault(auth.default_tenant, TenantSettings())
        self._by_hash: dict[str, Principal] = {}
        self._add_keys(Principal(None, admin=True), auth.admin_keys(env), auth.admin_key_hashes)
        self._add_keys(
            Principal(None, metrics_only=True), auth.metrics_keys(env), auth.metrics_key_hashes
        )
        self._add_keys(Principal(auth.default_tenant), auth.keys(env))
        for name, tenant in config.tenants.items():
            self._add_keys(Principal(name), tenant.keys(env), tenant.key_hashes)
        if self.required and not self._by_hash:
            raise ConfigurationError(
                f"auth.required is true but no API keys are configured (tenants.<name>.keys_env "
                f"or key_hashes, auth.api_keys, ${auth.api_keys_env} or ${auth.admin_keys_env})"
            )

    def _add_keys(
        self, principal: Principal, keys: Iterable[str], digests: Iterable[str] = ()
    ) -> None:
        """Know ``keys`` (hashed here) and ``digests`` (already SHA-256) as ``principal``."""
        for digest in [*map(hash_key, keys), *digests]:
            self._add(digest, principal)

    def _add(self, digest: str, principal: Principal) -> None:
        known = self._by_hash.get(digest)
        if known is not None and known != principal:
            raise ConfigurationError(
                f"one API key is configured for both {known.label} and {principal.label}"
            )
        self._by_hash[digest] = principal

    def authenticate(
        self, headers: Mapping[str, str], query: Mapping[str, Any]
    ) -> Principal | None:
        """The caller, or None for a missing, malformed or unknown key."""
        key = presented_key(headers, query)
        known = self._by_hash.get(hash_key(key)) if key else None
        if not self.required:
            return known or Principal(self.default_tenant)
        return known

    def tenant(self, name: str) -> TenantSettings:
        return self.tenants.get(name) or TenantSettings()
