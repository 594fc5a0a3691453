"""Provider registry: ``register``, ``new`` and ``list_providers``.

Built-in providers are listed by import path and imported only when first used, so importing
``s2s`` loads no provider SDK. Third-party providers register either by calling
:func:`register` or, without any import, through the ``s2s.providers`` entry-point group::

    [project.entry-points."s2s.providers"]
    my_provider = "my_package.s2s_provider:create"    # create(config) -> s2s.S2S
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points

from .config import Config
from .engine import S2S
from .errors import ConfigurationError, DuplicateProviderError, UnknownProviderError
from .hooks import Hooks

__all__ = ["ENTRY_POINT_GROUP", "Factory", "list_providers", "new", "register"]

ENTRY_POINT_GROUP = "s2s.providers"

#: ``factory(config) -> S2S``
Factory = Callable[[Config], S2S]

_BUILTIN: dict[str, str] = {
    "gemini_live": "s2s.providers.gemini_live:create",
    "openai_realtime": "s2s.providers.openai_realtime:create",
    "openai_live": "s2s.providers.openai_live:create",
    "nova": "s2s.providers.nova:create",
}

_lock = threading.Lock()
_registered: dict[str, Factory | str] = {}
_entry_points_loaded = False


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILTIN or ep.name in _registered:
            continue  # a built-in or an explicit register() wins; never shadow silently
        _registered[ep.name] = ep.value


def _all() -> dict[str, Factory | str]:
    with _lock:
        _load_entry_points()
        return {**_BUILTIN, **_registered}


def register(name: str, factory: Factory) -> None:
    """Register ``factory`` under ``name``.

    Raises:
        DuplicateProviderError: ``name`` is taken (by a built-in, an entry point or a
            previous ``register``).
        ConfigurationError: ``name`` is empty or ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("provider name must be a non-empty string")
    if not callable(factory):
        raise ConfigurationError(f"provider {name!r}: factory must be callable")
    with _lock:
        _load_entry_points()
        if name in _BUILTIN or name in _registered:
            raise DuplicateProviderError(f"a provider named {name!r} is already registered")
        _registered[name] = factory


def list_providers() -> list[str]:
    """Names of every known provider, sorted."""
    return sorted(_all())


def _resolve(target: Factory | str, name: str) -> Factory:
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"provider {name!r} could not be loaded from {target!r}: {exc}"
        ) from exc
    if not callable(factory):
        raise ConfigurationError(f"provider {name!r}: {target!r} is not callable")
    return factory  # type: ignore[no-any-return]


def new(name: str, config: Config | None = None, *, hooks: Hooks | None = None) -> S2S:
    """Create an engine for provider ``name``.

    Raises:
        UnknownProviderError: no provider has that name (the message lists the known ones).
        ConfigurationError: the config is wrong for that provider (e.g. no API key).
    """
    providers = _all()
    if name not in providers:
        known = ", ".join(sorted(providers)) or "none"
        raise UnknownProviderError(f"unknown provider {name!r}; registered providers: {known}")
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        raise ConfigurationError(f"config must be an s2s.Config, got {type(config).__name__}")
    engine = _resolve(providers[name], name)(config)
    if not isinstance(engine, S2S):
        raise ConfigurationError(
            f"provider {name!r}: factory returned {type(engine).__name__}, not an s2s.S2S"
        )
    if hooks is not None:
        engine.hooks = hooks
    return engine
