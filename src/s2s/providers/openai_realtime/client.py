"""OpenAI Realtime provider: settings, protocol and a WebSocket transport, put together."""

from __future__ import annotations

from ...config import Config
from ...engine import S2S, Provider
from ...protocol import Continuation
from ...transport import Transport, connect_websocket
from .protocol import OpenAIRealtimeProtocol
from .settings import EXTRA_KEYS, PROVIDER, resolve

__all__ = ["OpenAIRealtimeProvider", "create"]


class OpenAIRealtimeProvider(Provider):
    """Speaks the GA Realtime protocol over ``wss://…/v1/realtime?model=…``.

    Sends ``Authorization: Bearer <key>`` and nothing else provider-specific: in particular no
    ``OpenAI-Beta`` header, which production answers with ``beta_api_shape_disabled`` and a
    close 4000.
    """

    name = PROVIDER
    input_rate = OpenAIRealtimeProtocol.input_rate
    output_rate = OpenAIRealtimeProtocol.output_rate
    #: ``audio/pcmu`` is native: a mu-law session's audio passes through untouched.
    audio_formats = OpenAIRealtimeProtocol.audio_formats
    extra_keys = EXTRA_KEYS

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = resolve(config)

    def new_protocol(self, continuation: Continuation | None) -> OpenAIRealtimeProtocol:
        return OpenAIRealtimeProtocol(self.config, self.settings, continuation)

    async def connect(self) -> Transport:
        return await connect_websocket(
            self.settings.url,
            provider=PROVIDER,
            headers={"Authorization": f"Bearer {self.settings.api_key}"},
            open_timeout=self.connect_timeout,
        )


def create(config: Config) -> S2S:
    """Registry factory for ``openai_realtime``."""
    return S2S(PROVIDER, OpenAIRealtimeProvider, config)
