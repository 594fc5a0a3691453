"""Errors of the Twilio simulator, each carrying the Twilio error code the platform would log.

::

    TwilioError                 base; ``code`` is Twilio's error code (None if it has none)
    ├── WebhookError            11200: the webhook answered non-2xx or could not be reached
    ├── TwimlError              12100: the TwiML cannot run (also a ValueError)
    ├── StreamRefusedError      31920: the WebSocket upgrade got a non-101 answer (``status``)
    ├── StreamConnectError      31901 no answer / 31910 TLS failure
    ├── CallEndedError          the call ended before the awaited thing happened
    └── SimulatorTaskError      a background task of the call failed (``__cause__`` says why)
"""

from __future__ import annotations

__all__ = [
    "CallEndedError",
    "SimulatorTaskError",
    "StreamConnectError",
    "StreamRefusedError",
    "TwilioError",
    "TwimlError",
    "WebhookError",
]


class TwilioError(Exception):
    """Root of the simulator's errors."""

    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class WebhookError(TwilioError):
    """Fetching TwiML failed: ``status`` is the HTTP status (None: no answer)."""

    code = 11200

    def __init__(self, message: str, *, url: str, status: int | None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class TwimlError(TwilioError, ValueError):
    """The TwiML cannot run as a ``<Connect><Stream>`` call."""

    code = 12100


class StreamRefusedError(TwilioError):
    """The stream's WebSocket upgrade was answered with HTTP ``status``, not 101."""

    code = 31920

    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class StreamConnectError(TwilioError):
    """The stream URL could not be reached (31901) or TLS failed (31910)."""

    code = 31901


class CallEndedError(TwilioError):
    """The call ended before the awaited thing happened."""


class SimulatorTaskError(TwilioError):
    """A background task of the call (sender, receiver, marks) failed."""
