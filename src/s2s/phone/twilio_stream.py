"""Opening a Media Stream WebSocket the way Twilio does, with failures as Twilio error codes.

Twilio dials the ``<Stream url>`` exactly as written (query string already dropped), with no
subprotocol and no compression, and sends ``X-Twilio-Signature`` computed over that URL with no
parameters (the scheme stays ``ws``/``wss``). A non-101 answer is error 31920
(:class:`StreamRefusedError`, with the HTTP status), no answer 31901 and a TLS failure 31910
(:class:`StreamConnectError`).
"""

from __future__ import annotations

import ssl

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from .twilio_errors import StreamConnectError, StreamRefusedError
from .twilio_webhook import SIGNATURE_HEADER, sign

__all__ = ["MAX_MESSAGE_BYTES", "open_stream"]

#: Largest server message accepted (base64 audio in JSON).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


async def open_stream(
    url: str, *, auth_token: str, ssl_context: ssl.SSLContext | None, open_timeout: float
) -> ClientConnection:
    """Connect to the stream ``url`` (``ws://`` or ``wss://``) like Twilio."""
    secure = url.startswith("wss://")
    try:
        return await connect(
            url,
            additional_headers={SIGNATURE_HEADER: sign(auth_token, url, {})},
            ssl=(ssl_context or True) if secure else None,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            open_timeout=open_timeout,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise StreamRefusedError(
            f"Twilio 31920: the stream upgrade to {url} was answered HTTP {status}, not 101",
            url=url,
            status=status,
        ) from exc
    except ssl.SSLError as exc:
        raise StreamConnectError(f"Twilio 31910: TLS to {url} failed: {exc}", code=31910) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise StreamConnectError(
            f"Twilio 31901: could not open the stream {url}: {type(exc).__name__}: {exc}"
        ) from exc
