"""GPT-Live provider: settings, protocol and a WebSocket transport, put together."""

from __future__ import annotations

from ...config import Config
from ...engine import S2S, Provider
from ...protocol import Continuation
from ...transport import Transport, connect_websocket
from .protocol import OpenAILiveProtocol
from .settings import EXTRA_KEYS, PROVIDER, resolve

__all__ = ["OpenAILiveProvider", "create"]


class OpenAILiveProvider(Provider):
    """Speaks GPT-Live over ``wss://…/v1/live/sessions`` (no query; the model goes in
    ``session.start``) with ``Authorization: Bearer <key>``."""

    name = PROVIDER
    input_rate = OpenAILiveProtocol.input_rate
    output_rate = OpenAILiveProtocol.output_rate
    audio_formats = OpenAILiveProtocol.audio_formats
    extra_keys = EXTRA_KEYS

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = resolve(config)

    def new_protocol(self, continuation: Continuation | None) -> OpenAILiveProtocol:
        return OpenAILiveProtocol(self.config, self.settings, continuation)

    async def connect(self) -> Transport:
        return await connect_websocket(
            self.settings.url,
            provider=PROVIDER,
            headers={"Authorization": f"Bearer {self.settings.api_key}"},
            open_timeout=self.connect_timeout,
        )


def create(config: Config) -> S2S:
    """Registry factory for ``openai_live``."""
    return S2S(PROVIDER, OpenAILiveProvider, config)
