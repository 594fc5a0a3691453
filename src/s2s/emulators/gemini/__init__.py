"""Gemini Live emulator: a real TLS WebSocket server on loopback."""

from .server import GeminiEmulator
from .session import EmulatorOptions

__all__ = ["EmulatorOptions", "GeminiEmulator"]
