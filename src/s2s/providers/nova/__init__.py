"""Amazon Nova Sonic provider: ``s2s.new("nova", config)``.

Modules: :mod:`.wire` (event models and builders), :mod:`.protocol` (sans-I/O state machine),
:mod:`.history` (carrying a conversation within Nova's history rules), :mod:`.settings`
(``Config`` -> settings), :mod:`.credentials` (the AWS credential chain), :mod:`.transport`
(the SDK's bidirectional stream as a transport) and :mod:`.client` (the provider).

The SDK-backed modules are imported lazily, so the wire models and the protocol work (e.g. in
the emulator) without importing the AWS SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .protocol import NovaProtocol
from .settings import DEFAULT_MODEL, DEFAULT_REGION, DEFAULT_VOICE, NovaSettings, resolve

if TYPE_CHECKING:
    from .client import NovaProvider, create

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REGION",
    "DEFAULT_VOICE",
    "NovaProtocol",
    "NovaProvider",
    "NovaSettings",
    "create",
    "resolve",
]


def __getattr__(name: str) -> Any:
    if name in ("NovaProvider", "create"):
        from . import client

        return getattr(client, name)
    raise AttributeError(name)
