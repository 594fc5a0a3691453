"""OpenAI GPT-Live emulator (``/v1/live/sessions``): a real WebSocket server on loopback."""

from .options import LiveEmulatorOptions
from .server import FAILURES, FATAL, LiveEmulator

__all__ = ["FAILURES", "FATAL", "LiveEmulator", "LiveEmulatorOptions"]
