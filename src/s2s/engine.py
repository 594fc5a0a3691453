"""Engines (``S2S``) and the provider interface they are built from.

A provider package supplies a :class:`Provider` subclass: it resolves its settings from a
:class:`~s2s.config.Config` (failing early with a clear error), builds its sans-I/O protocol,
and opens its transport. :class:`S2S` turns that into sessions.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .config import Config, Fallback
from .errors import ConfigurationError
from .hooks import Hooks, compose_hooks
from .protocol import Continuation, ProviderProtocol
from .session import Session
from .transport import Transport

__all__ = ["S2S", "Provider", "ReconnectPolicy"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How hard to try when (re)connecting: ``attempts`` tries, exponential backoff between."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 4.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` + 1 consecutive failures."""
        return float(min(self.max_delay, self.base_delay * 2**failures))


class Provider(ABC):
    """One provider, configured. Subclasses set ``name`` and the two rates.

    The constructor must validate everything it can without the network (credentials present,
    settings well-formed) and raise :class:`~s2s.errors.ConfigurationError` subclasses.
    """

    name: ClassVar[str]
    input_rate: ClassVar[int]
    output_rate: ClassVar[int]
    #: Known ``Config.extra`` keys; anything else is refused with a clear error.
    extra_keys: ClassVar[frozenset[str]] = frozenset()

    reconnect: ReconnectPolicy = ReconnectPolicy()
    connect_timeout: float = 10.0
    setup_timeout: float = 15.0

    def __init__(self, config: Config) -> None:
        unknown = sorted(set(config.extra) - self.extra_keys)
        if unknown:
            raise ConfigurationError(
                f"{self.name}: unknown Config.extra key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.extra_keys))}"
            )
        self.config = config

    @abstractmethod
    def new_protocol(self, continuation: Continuation | None) -> ProviderProtocol:
        """A fresh protocol object for one connection, continuing ``continuation`` if given."""

    @abstractmethod
    async def connect(self) -> Transport:
        """Open a transport to the provider (raises s2s errors, never vendor ones)."""


class S2S:
    """A configured speech-to-speech engine; :meth:`start` opens sessions.

    Get one with :func:`s2s.new`.
    """

    def __init__(
        self,
        name: str,
        provider_factory: Callable[[Config], Provider],
        config: Config,
        *,
        hooks: Hooks | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.hooks = hooks
        self._provider_factory = provider_factory
        provider_factory(config)  # fail now, not at the first call, on a bad config
        for fallback in config.failover:
            _fallback_provider(config, fallback)

    def __repr__(self) -> str:
        return f"S2S({self.name!r})"

    async def start(
        self,
        *,
        hooks: Hooks | None = None,
        session_id: str | None = None,
        resume: Continuation | Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Session:
        """Connect and return a ready :class:`~s2s.session.Session`.

        Args:
            hooks: callbacks for this session (run after the engine's own hooks).
            session_id: an id for logs and routing (default: a random hex id).
            resume: a ``Session.snapshot()`` (or its ``to_dict()``) to continue a call from.
            **overrides: :class:`~s2s.config.Config` fields for this session only
                (``voice=``, ``instructions=``, ``extra={...}`` merges into the engine's extra).

        Raises:
            ConfigurationError: an unknown override or a bad value.
            ProviderError: the provider refused the session (e.g. AuthenticationError).
        """
        config = self.config.replace(**overrides) if overrides else self.config
        provider = self._provider_factory(config)
        fallbacks = [_fallback_provider(config, fallback) for fallback in config.failover]
        continuation = Continuation.from_dict(resume) if isinstance(resume, Mapping) else resume
        session = Session(
            provider,
            config,
            hooks=compose_hooks(self.hooks, hooks),
            session_id=session_id or uuid.uuid4().hex,
            fallbacks=fallbacks,
        )
        await session._start(continuation)
        return session


def _fallback_provider(config: Config, fallback: Fallback) -> Provider:
    """The configured provider for one ``Config.failover`` entry (a bad entry fails now)."""
    from .registry import new  # the registry builds engines: imported late, no cycle

    fallback_config = config.for_fallback(fallback)
    return new(fallback.provider, fallback_config)._provider_factory(fallback_config)
