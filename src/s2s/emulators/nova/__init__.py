"""Amazon Nova Sonic emulator: Bedrock's bidirectional stream over HTTP/2 and TLS on loopback."""

from .server import NovaEmulator
from .session import NovaEmulatorOptions
from .sigv4 import DEFAULT_CREDENTIALS, Credentials

__all__ = ["DEFAULT_CREDENTIALS", "Credentials", "NovaEmulator", "NovaEmulatorOptions"]
