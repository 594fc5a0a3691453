from pathlib import Path

import pytest

import s2s
from s2s.service.config import ServiceConfig, env_overrides, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_yaml_is_valid_and_documented():
    config = load_config(ROOT / "config.yaml", environ={})
    assert config.serve.max_ongoing_requests == 1000
    assert config.tool_pools["default"].modules == ["s2s.tools.examples"]
    text = (ROOT / "config.yaml").read_text()
    for section in ("redis:", "providers:", "serve:", "sessions:", "tool_pools:", "auth:"):
        assert section in text
    assert text.count("#") > 40  # documented inline


def test_defaults_without_a_file():
    config = load_config(None, environ={})
    assert config.redis.url == "embedded" and config.default_provider == "openai_realtime"


def test_environment_overrides_any_value():
    environ = {
        "S2S_REDIS__URL": "redis://cache:6379/2",
        "S2S_SERVE__INGRESS": "direct",
        "S2S_TOOL_POOLS__DEFAULT__TIMEOUT_S": "20",
        "S2S_AUTH__API_KEYS": "[a, b]",
        "UNRELATED": "x",
    }
    config = load_config(ROOT / "config.yaml", environ=environ)
    assert config.redis.url == "redis://cache:6379/2" and config.serve.ingress == "direct"
    assert config.tool_pools["default"].timeout_s == 20
    assert config.auth.api_keys == ["a", "b"]
    assert env_overrides({"S2S_A__B__C": "1"}) == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"S2S_SERVE__MAX_ONGOING_REQUESTS": "0"},
            r"serve\.max_ongoing_requests: Input should be greater than 0",
        ),
        ({"S2S_SERVE__MAX_ONGOIN_REQUESTS": "5"}, r"serve\.max_ongoin_requests: unknown key"),
        (
            {"S2S_SESSIONS__IDLE_TIMEOUT_S": "soon"},
            r"sessions\.idle_timeout_s: Input should be a valid number",
        ),
    ],
)
def test_a_wrong_key_or_value_is_named(environ, message):
    with pytest.raises(s2s.ConfigurationError, match=message):
        load_config(ROOT / "config.yaml", environ=environ)


def test_bad_files(tmp_path):
    with pytest.raises(s2s.ConfigurationError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("redis: [unclosed")
    with pytest.raises(s2s.ConfigurationError, match="not valid YAML"):
        load_config(bad, environ={})
    typo = tmp_path / "typo.yaml"
    typo.write_text("sesions: {}\n")
    with pytest.raises(s2s.ConfigurationError, match="typo.yaml: sesions: unknown key"):
        load_config(typo, environ={})


def test_api_keys_from_config_and_environment():
    config = ServiceConfig(auth={"api_keys": ["k1"]})
    assert config.auth.keys({"S2S_API_KEYS": "k2, k3,"}) == {"k1", "k2", "k3"}


def test_the_old_direct_ingress_flag_names_its_replacement():
    with pytest.raises(s2s.ConfigurationError, match="replaced by ingress: haproxy"):
        load_config(None, environ={"S2S_SERVE__DIRECT_INGRESS": "true"})
