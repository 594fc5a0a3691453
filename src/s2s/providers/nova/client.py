"""Nova Sonic provider: settings, credentials, protocol and the SDK transport, put together."""

from __future__ import annotations

from ...config import Config
from ...engine import S2S, Provider
from ...protocol import Continuation
from ...transport import Transport
from .credentials import CredentialSource
from .protocol import NovaProtocol
from .settings import EXTRA_KEYS, PROVIDER, resolve
from .transport import open_stream

__all__ = ["NovaProvider", "create"]


class NovaProvider(Provider):
    """Speaks Bedrock Runtime ``InvokeModelWithBidirectionalStream`` (HTTP/2, SigV4, event
    stream) through the official ``aws-sdk-bedrock-runtime`` client with its CRT transport.
    """

    name = PROVIDER
    input_rate = NovaProtocol.input_rate
    output_rate = NovaProtocol.output_rate
    extra_keys = EXTRA_KEYS
    #: Longer than s2n's "blinding" delay (10-30 s) after a TLS failure such as an untrusted
    #: certificate, so that error is reported instead of a setup timeout.
    setup_timeout = 35.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = resolve(config)
        self._credentials = CredentialSource(self.settings)

    def new_protocol(self, continuation: Continuation | None) -> NovaProtocol:
        return NovaProtocol(self.config, self.settings, continuation)

    async def connect(self) -> Transport:
        identity = await self._credentials.identity()
        return await open_stream(self.settings, identity)


def create(config: Config) -> S2S:
    """Registry factory for ``nova``."""
    return S2S(PROVIDER, NovaProvider, config)
