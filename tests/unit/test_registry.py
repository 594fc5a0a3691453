import subprocess
import sys
import textwrap

import pytest

import s2s
from s2s import registry


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)


def test_builtins_are_listed_sorted(clean_registry):
    names = s2s.list_providers()
    assert "openai_realtime" in names
    assert names == sorted(names)


def test_importing_s2s_imports_no_provider():
    code = (
        "import sys, s2s; s2s.list_providers(); "
        "print([m for m in sys.modules if m.startswith('s2s.providers.') or m == 'openai'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_provider_lists_the_registered_names(clean_registry):
    with pytest.raises(s2s.UnknownProviderError) as info:
        s2s.new("gpt-voice")
    assert "gpt-voice" in str(info.value) and "openai_realtime" in str(info.value)


def test_register_and_new(clean_registry):
    made = []

    def factory(config: s2s.Config) -> s2s.S2S:
        made.append(config)
        return s2s.new("openai_realtime", config)

    s2s.register("my_provider", factory)
    assert "my_provider" in s2s.list_providers()
    engine = s2s.new("my_provider", s2s.Config(extra={"api_key": "k"}))
    assert isinstance(engine, s2s.S2S) and made


def test_registering_a_name_twice_is_an_error(clean_registry):
    s2s.register("twice", lambda c: s2s.new("openai_realtime", c))
    with pytest.raises(s2s.DuplicateProviderError, match="'twice'"):
        s2s.register("twice", lambda c: s2s.new("openai_realtime", c))
    with pytest.raises(s2s.DuplicateProviderError, match="'openai_realtime'"):
        s2s.register("openai_realtime", lambda c: s2s.new("openai_realtime", c))


def test_factory_must_return_an_engine(clean_registry):
    s2s.register("broken", lambda c: object())
    with pytest.raises(s2s.ConfigurationError, match="not an s2s.S2S"):
        s2s.new("broken")


def test_third_party_provider_via_entry_point(tmp_path, monkeypatch, clean_registry):
    package = tmp_path / "acme_voice"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        import s2s
        def create(config):
            return s2s.new("openai_realtime", config.replace(extra={"api_key": "from-acme"}))
    """)
    )
    dist = tmp_path / "acme_voice-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-voice\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[s2s.providers]\nacme = acme_voice:create\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "acme" in s2s.list_providers()
    engine = s2s.new("acme")
    assert engine.config.extra["api_key"] == "from-acme"
    with pytest.raises(s2s.DuplicateProviderError):
        s2s.register("acme", lambda c: s2s.new("openai_realtime", c))
