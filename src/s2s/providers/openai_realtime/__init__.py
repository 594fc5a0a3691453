"""OpenAI Realtime (GA) provider: ``s2s.new("openai_realtime", config)``.

Modules: :mod:`.wire` (message models), :mod:`.protocol` (sans-I/O state machine) with its
parts :mod:`.answers` (answer items, playback and the barge-in cut), :mod:`.tool_calls` (calls
grouped by response), :mod:`.caller` (the caller's turns), :mod:`.turns` (``response.done``),
:mod:`.failures` (what an error means), :mod:`.history`, :mod:`.lifetime` and
:mod:`.pending_audio`; :mod:`.settings` (``Config`` -> settings), :mod:`.client` (the provider
and its transport).
"""

from .client import OpenAIRealtimeProvider, create
from .protocol import OpenAIRealtimeProtocol
from .settings import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_VOICE, OpenAISettings, resolve

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "OpenAIRealtimeProtocol",
    "OpenAIRealtimeProvider",
    "OpenAISettings",
    "create",
    "resolve",
]
