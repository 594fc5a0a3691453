"""Gemini Live provider: ``s2s.new("gemini_live", config)``.

Modules: :mod:`.wire` (message models and builders), :mod:`.protocol` (sans-I/O state machine,
assembled from :mod:`.base` (shared state), :mod:`.turns` (turns and transcripts), :mod:`.tools`
(tool calls) and :mod:`.replay` (carried history)), :mod:`.resumption` (what a resumption handle
covers), :mod:`.closes` (close codes and reasons as errors), :mod:`.models` (what each model id
accepts), :mod:`.settings` (``Config`` -> settings), :mod:`.client` (the provider and its
transport).
"""

from .client import GeminiLiveProvider, create
from .protocol import GeminiLiveProtocol
from .settings import DEFAULT_BASE_URL, DEFAULT_MODEL, GeminiSettings, resolve

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "GeminiLiveProtocol",
    "GeminiLiveProvider",
    "GeminiSettings",
    "create",
    "resolve",
]
