"""Gemini Live provider: settings, protocol and a TLS WebSocket transport, put together."""

from __future__ import annotations

import ssl
from dataclasses import replace

from ...config import Config
from ...engine import S2S, Provider
from ...protocol import Continuation
from ...transport import Transport, connect_websocket
from .protocol import GeminiLiveProtocol
from .settings import EXTRA_KEYS, PROVIDER, resolve

__all__ = ["GeminiLiveProvider", "create"]

#: Gemini answers keepalive pings slowly (8-30 s measured): a short pong timeout drops good calls.
PING_TIMEOUT_S = 60.0


class GeminiLiveProvider(Provider):
    """Speaks BidiGenerateContent over ``wss://…/ws/google.ai.generativelanguage.…``.

    The key goes in the ``x-goog-api-key`` header (ephemeral tokens: ``Authorization: Token``),
    as the official SDK sends it. One provider object serves one session: it remembers the
    resumption handles a server refused, so the next connection replays the history instead.
    """

    name = PROVIDER
    input_rate = GeminiLiveProtocol.input_rate
    output_rate = GeminiLiveProtocol.output_rate
    extra_keys = EXTRA_KEYS

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = resolve(config)
        self._refused_handles: set[str] = set()
        self._ssl: ssl.SSLContext | None = None
        if self.settings.url.startswith("wss://"):
            self._ssl = ssl.create_default_context(cafile=self.settings.ca_file)

    def new_protocol(self, continuation: Continuation | None) -> GeminiLiveProtocol:
        if continuation is not None and continuation.state.get("handle") in self._refused_handles:
            continuation = replace(continuation, state={**continuation.state, "handle": None})
        return GeminiLiveProtocol(
            self.config,
            self.settings,
            continuation,
            on_handle_refused=self._refused_handles.add,
        )

    async def connect(self) -> Transport:
        return await connect_websocket(
            self.settings.url,
            provider=PROVIDER,
            headers=dict(self.settings.headers),
            open_timeout=self.connect_timeout,
            ssl=self._ssl,
            ping_timeout=PING_TIMEOUT_S,
        )


def create(config: Config) -> S2S:
    """Registry factory for ``gemini_live``."""
    return S2S(PROVIDER, GeminiLiveProvider, config)
