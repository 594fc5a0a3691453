"""Keys to tenants, and what a tenant may ask for (no servers)."""

from __future__ import annotations

import pytest

from deployments.api import CreateSession
from deployments.errors import ApiError
from deployments.session_requests import build_spec
from deployments.tenancy import Authenticator, Principal, hash_key
from s2s.errors import ConfigurationError
from s2s.service.config import ServiceConfig
from s2s.tools.registry import pool_registries


def config(**changes: object) -> ServiceConfig:
    data: dict[str, object] = {
        "providers": {"openai_realtime": {"api_key_env": [], "extra": {"api_key": "sk-x"}}},
        "auth": {"api_keys": ["default-key-01"], "admin_key_hashes": [hash_key("admin-key-01")]},
        "tenants": {
            "acme": {
                "keys_env": ["ACME_KEYS"],
                "tools": ["lookup_order"],
                "quotas": {"max_call_s": 60},
                "provider_credentials": {"openai_realtime": {"api_key": "ACME_OPENAI"}},
            },
            "globex": {"key_hashes": [hash_key("globex-key-01")], "providers": ["gemini_live"]},
        },
    }
    data.update(changes)
    return ServiceConfig.model_validate(data)


def headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_keys_map_to_their_tenant_or_admin() -> None:
    auth = Authenticator(config(), environ={"ACME_KEYS": "acme-key-01, acme-key-02"})
    assert auth.authenticate(headers("acme-key-02"), {}) == Principal("acme")
    assert auth.authenticate({}, {"api_key": "globex-key-01"}) == Principal("globex")
    assert auth.authenticate({"x-api-key": "default-key-01"}, {}) == Principal("default")
    admin = auth.authenticate(headers("admin-key-01"), {})
    assert admin == Principal(None, admin=True) and admin.owns("acme") and admin.owns("globex")
    assert not Principal("acme").owns("globex") and not Principal("acme").owns(None)
    for bad in ("nope", "", "clé", "a" * 600, "Bearer"):
        assert auth.authenticate(headers(bad), {}) is None


def test_a_metrics_key_reads_metrics_and_owns_no_call() -> None:
    auth = Authenticator(
        config(auth={"metrics_key_hashes": [hash_key("metrics-key-01")]}, tenants={}),
        environ={"S2S_METRICS_KEYS": "metrics-key-02"},
    )
    for key in ("metrics-key-01", "metrics-key-02"):
        reader = auth.authenticate(headers(key), {})
        assert reader == Principal(None, metrics_only=True) and reader.reads_metrics
        assert not reader.admin and not reader.owns("default") and not reader.owns(None)
    assert Principal(None, admin=True).reads_metrics and not Principal("acme").reads_metrics
    with pytest.raises(ConfigurationError, match="both admin and metrics reader"):
        Authenticator(
            config(
                auth={"admin_key_hashes": [hash_key("k")], "metrics_key_hashes": [hash_key("k")]}
            )
        )


def test_one_key_for_two_tenants_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="both tenant acme and tenant globex"):
        Authenticator(config(), environ={"ACME_KEYS": "globex-key-01"})


def test_no_keys_at_all_is_refused_unless_auth_is_off() -> None:
    empty = config(auth={"api_keys_env": "UNSET_VAR"}, tenants={})
    with pytest.raises(ConfigurationError, match="no API keys"):
        Authenticator(empty, environ={})
    open_config = config(auth={"required": False}, tenants={})
    assert Authenticator(open_config, environ={}).authenticate({}, {}) == Principal("default")


def test_config_refuses_credentials_in_the_redis_url_and_bad_hashes() -> None:
    with pytest.raises(ValueError, match="carries credentials"):
        config(redis={"url": "redis://user:secret@redis:6379/0"})
    with pytest.raises(ValueError, match="SHA-256"):
        config(tenants={"x": {"key_hashes": ["not-a-hash"]}})
    with pytest.raises(ValueError, match="tenant name"):
        config(tenants={"bad name": {}})


@pytest.fixture(autouse=True)
def acme_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_OPENAI", "sk-acme-own")


def test_a_tenant_credential_that_is_not_set_is_a_503_naming_no_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACME_OPENAI")
    with pytest.raises(ApiError, match="has no credentials here") as refused:
        spec_for("acme")
    assert refused.value.status == 503


def spec_for(tenant: str, **body: object):  # type: ignore[no-untyped-def]
    cfg = config()
    pools, owner = pool_registries({n: p.modules for n, p in cfg.tool_pools.items()})
    return build_spec(
        CreateSession.model_validate(body),
        tenant_name=tenant,
        tenant=cfg.tenants.get(tenant) or cfg.tenants["acme"].model_copy(update={"tools": None}),
        config=cfg,
        tools=pools["default"],
        tool_owner=owner,
    )


def test_a_tenant_gets_only_its_tools_its_call_length_and_its_credentials_by_name() -> None:
    spec = spec_for("acme")
    assert [t["name"] for t in spec.config["tools"]] == ["lookup_order"]
    assert spec.max_duration_s == 60 and spec.tenant == "acme"
    assert spec.credentials == {"api_key": "ACME_OPENAI"}  # the variable, never its value
    with pytest.raises(ApiError, match="unknown tool"):
        spec_for("acme", tools=["check_balance"])


def test_client_extra_is_an_allowlist_per_provider() -> None:
    assert spec_for("acme", extra={"turn_detection": "semantic_vad"}).config["extra"] == {
        "turn_detection": "semantic_vad"
    }
    for key in ("api_key", "base_url", "rotate_after_s", "max_session_s"):
        with pytest.raises(ApiError, match=f"may not set {key}") as refused:
            spec_for("acme", extra={key: 1})
        assert refused.value.status == 400
    with pytest.raises(ApiError, match="vad_threshold") as bad_value:
        spec_for("acme", extra={"vad_threshold": 7})
    assert bad_value.value.status == 400


def test_a_provider_outside_the_tenants_list_is_forbidden() -> None:
    with pytest.raises(ApiError, match="may not use provider") as refused:
        spec_for("globex", provider="openai_realtime")
    assert refused.value.status == 403


def test_the_client_allowlists_name_only_real_provider_settings() -> None:
    """An explicit list on purpose: a setting a provider adds is the operator's until listed."""
    from deployments.session_requests import CLIENT_EXTRA
    from s2s.providers.gemini_live.settings import EXTRA_KEYS as GEMINI
    from s2s.providers.nova.settings import EXTRA_KEYS as NOVA
    from s2s.providers.openai_live.settings import EXTRA_KEYS as OPENAI_LIVE
    from s2s.providers.openai_realtime.settings import EXTRA_KEYS as OPENAI

    known = {
        "openai_realtime": OPENAI,
        "openai_live": OPENAI_LIVE,
        "gemini_live": GEMINI,
        "nova": NOVA,
    }
    assert set(CLIENT_EXTRA) == set(known)
    for provider, keys in CLIENT_EXTRA.items():
        assert keys <= known[provider], provider
        assert not keys & {"api_key", "base_url", "ca_file", "region", "rotate_after_s"}
