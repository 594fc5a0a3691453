"""OpenAI GPT-Live provider: ``s2s.new("openai_live", config)``.

Modules: :mod:`.wire` (message builders), :mod:`.turns` (turns synthesized from the timeline),
:mod:`.protocol` (sans-I/O state machine), :mod:`.settings` (``Config`` -> settings),
:mod:`.client` (the provider and its transport).
"""

from .client import OpenAILiveProvider, create
from .protocol import OpenAILiveProtocol
from .settings import (
    DEFAULT_BASE_URL,
    DEFAULT_DELEGATION_MODEL,
    DEFAULT_MODEL,
    DEFAULT_VOICE,
    LiveSettings,
    resolve,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DELEGATION_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "LiveSettings",
    "OpenAILiveProtocol",
    "OpenAILiveProvider",
    "create",
    "resolve",
]
