"""s2s: one API for speech-to-speech models (OpenAI Realtime, Gemini Live, Amazon Nova Sonic).

::

    import s2s

    engine = s2s.new("openai_realtime", s2s.Config(instructions="You are a helpful agent."))
    async with await engine.start() as session:
        await session.send_audio(pcm16_chunk)
        async for event in session.recv():
            if event.type is s2s.EventType.AUDIO_OUTPUT:
                play(event.audio)

Importing ``s2s`` loads no provider SDK; providers are imported when first used.
"""

from .config import Config, Fallback, ToolCall, ToolDefinition, ToolResult
from .conversation import Conversation
from .engine import S2S, Provider, ReconnectPolicy
from .errors import (
    AuthenticationError,
    ConfigurationError,
    DuplicateProviderError,
    InvalidInputError,
    InvalidRequestError,
    MissingCredentialsError,
    ModelUnavailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderProtocolError,
    ProviderServerError,
    QuotaExceededError,
    RateLimitError,
    S2SError,
    SessionClosedError,
    SessionExpiredError,
    UnknownProviderError,
)
from .events import EventType, Role, SessionEvent, Usage
from .frames import as_frame_processor
from .hooks import Hooks, compose_hooks
from .protocol import Continuation, ProviderProtocol
from .registry import list_providers, new, register
from .session import Session

__version__ = "0.1.0"

__all__ = [
    "S2S",
    "AuthenticationError",
    "Config",
    "ConfigurationError",
    "Continuation",
    "Conversation",
    "DuplicateProviderError",
    "EventType",
    "Fallback",
    "Hooks",
    "InvalidInputError",
    "InvalidRequestError",
    "MissingCredentialsError",
    "ModelUnavailableError",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderProtocol",
    "ProviderProtocolError",
    "ProviderServerError",
    "QuotaExceededError",
    "RateLimitError",
    "ReconnectPolicy",
    "Role",
    "S2SError",
    "Session",
    "SessionClosedError",
    "SessionEvent",
    "SessionExpiredError",
    "ToolCall",
    "ToolDefinition",
    "ToolResult",
    "UnknownProviderError",
    "Usage",
    "__version__",
    "as_frame_processor",
    "compose_hooks",
    "list_providers",
    "new",
    "register",
]
