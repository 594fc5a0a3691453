"""The I/O seam between a provider protocol and the network.

A :class:`Transport` moves whole frames. The session runtime pumps frames between a transport
and a sans-I/O protocol object; providers only differ in how they :meth:`connect`.
"""

from __future__ import annotations

import ssl as _ssl
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import AuthenticationError, ProviderConnectionError, S2SError

__all__ = ["Transport", "TransportClosed", "WebSocketTransport", "connect_websocket"]


class TransportClosed(Exception):
    """The connection ended. ``code``/``reason`` are the peer's close frame, if any."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """A message-oriented connection to a provider."""

    async def send(self, data: str | bytes) -> None:
        """Send one frame. Raises :class:`TransportClosed` if the connection is gone."""

    async def recv(self) -> str | bytes:
        """Wait for the next frame. Raises :class:`TransportClosed` at the end."""

    async def close(self) -> None:
        """Close politely; safe to call twice."""

    def abort(self) -> None:
        """Drop the connection at once, without a goodbye."""


class WebSocketTransport:
    """A :class:`Transport` over a ``websockets`` client connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, data: str | bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def close(self) -> None:
        await self._ws.close()

    def abort(self) -> None:
        transport = self._ws.transport
        if transport is not None:
            transport.abort()


def _closed(exc: ConnectionClosed) -> TransportClosed:
    frame = exc.rcvd
    if frame is None:
        return TransportClosed(None, "connection lost without a close frame")
    return TransportClosed(frame.code, frame.reason)


async def connect_websocket(
    url: str,
    *,
    provider: str,
    headers: dict[str, str] | None = None,
    open_timeout: float = 10.0,
    ssl: object | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> WebSocketTransport:
    """Open a WebSocket to a provider, translating handshake failures into s2s errors.

    Compression is off: audio is base64 noise to deflate and would only cost CPU. Keepalive
    pings go every ``ping_interval`` seconds and a pong later than ``ping_timeout`` drops the
    connection (``None`` disables either); providers with slow pongs raise the timeout.
    """
    try:
        ws = await websockets.connect(
            url,
            additional_headers=headers or {},
            open_timeout=open_timeout,
            max_size=None,
            compression=None,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            ssl=ssl,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        err_cls: type[S2SError] = (
            AuthenticationError if status in (401, 403) else ProviderConnectionError
        )
        raise err_cls(
            f"{provider}: WebSocket handshake refused with HTTP {status}",
            code=str(status),
            provider=provider,
            retryable=status >= 500 or status == 429,
        ) from exc
    except _ssl.SSLCertVerificationError as exc:
        raise ProviderConnectionError(
            f"{provider}: the TLS certificate of {url.split('?')[0]} is not trusted "
            f"({exc.verify_message}); for a local emulator, trust its CA file",
            provider=provider,
            retryable=False,
        ) from exc
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise ProviderConnectionError(
            f"{provider}: cannot connect to {url.split('?')[0]}", provider=provider
        ) from exc
    return WebSocketTransport(ws)
