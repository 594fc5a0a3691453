"""OpenAI Realtime (GA) emulator: a real WebSocket server on loopback."""

from .server import OpenAIEmulator
from .session import EmulatorOptions

__all__ = ["EmulatorOptions", "OpenAIEmulator"]
