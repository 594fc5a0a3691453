"""Property-based tests of the API's input handling (no servers): any input is either accepted
or refused with an :class:`ApiError` of status 4xx/503, never an unexpected exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import SessionSpec
from deployments.api import CONTROL, CreateSession
from deployments.errors import ApiError
from deployments.session_requests import build_spec
from deployments.tenancy import Authenticator, hash_key
from deployments.web import parse, resume_position
from s2s.service.config import ServiceConfig, TenantSettings
from s2s.tools.registry import pool_registries
from tests.strategies import control_like, json_values, session_like

CONFIG = ServiceConfig.model_validate(
    {
        "providers": {
            "openai_realtime": {"api_key_env": [], "extra": {"api_key": "sk-test"}},
            "gemini_live": {"api_key_env": [], "extra": {"api_key": "g-test"}},
        },
        "auth": {"api_keys": ["default-key-0123"]},
        "tenants": {"acme": {"key_hashes": [hash_key("acme-key-0123")], "tools": ["lookup_order"]}},
    }
)
POOLS, OWNER = pool_registries({n: p.modules for n, p in CONFIG.tool_pools.items()})
TOOLS = POOLS["default"]


def attempt(fn: Callable[[], Any]) -> tuple[Any, ApiError | None]:
    """``(value, None)`` or ``(None, the ApiError)``: any other exception propagates."""
    try:
        return fn(), None
    except ApiError as error:
        return None, error


@given(control_like.map(json.dumps) | st.text(max_size=300) | json_values.map(json.dumps))
def test_no_control_frame_raises_anything_but_a_client_error(text: str) -> None:
    _, error = attempt(lambda: parse(CONTROL, text))
    assert error is None or (error.status == 400 and error.message)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(session_like | json_values, st.sampled_from(["default", "acme"]))
def test_no_session_body_raises_anything_but_a_client_error(body: Any, tenant: str) -> None:
    def build() -> SessionSpec:
        return build_spec(
            parse(CreateSession, json.dumps(body)),
            tenant_name=tenant,
            tenant=CONFIG.tenants.get(tenant, TenantSettings()),
            config=CONFIG,
            tools=TOOLS,
            tool_owner=OWNER,
        )

    spec, error = attempt(build)
    if error is not None:
        assert error.status in (400, 403, 503) and error.message
    else:
        assert spec.tenant == tenant and "api_key" not in json.dumps(spec.to_dict())


@given(st.text(max_size=30) | st.none())
def test_resume_positions_are_integers_in_range_or_a_400(raw: str | None) -> None:
    value, error = attempt(lambda: resume_position(raw, "last_seq"))
    assert (error is not None and error.status == 400) or 0 <= value < 2**63


@given(
    st.dictionaries(
        st.sampled_from(["authorization", "x-api-key"]), st.text(max_size=80), max_size=2
    ),
    st.dictionaries(st.just("api_key"), st.text(max_size=80), max_size=1),
)
def test_any_credential_is_a_principal_or_none(
    headers: dict[str, str], query: dict[str, str]
) -> None:
    principal = Authenticator(CONFIG).authenticate(headers, query)
    assert principal is None or principal.tenant in ("default", "acme")
