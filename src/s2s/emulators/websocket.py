"""The part of the WebSocket emulators (OpenAI Realtime, Gemini Live) that is not the protocol.

A subclass checks the request path in ``_check_path`` (answering HTTP 404 for a wrong one) and
serves one connection in ``_handle``, registering its session in ``_live`` while it runs and
appending the close code to :attr:`WebSocketEmulator.close_codes` when it ends.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import ClassVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .base import Emulator

__all__ = ["WebSocketEmulator"]

#: Largest message accepted (audio in base64 JSON can be large).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class WebSocketEmulator[SessionT](Emulator):
    """A WebSocket server with session bookkeeping and connection faults."""

    #: Close code and reason :meth:`refuse_next` uses by default.
    refusal: ClassVar[tuple[int, str]] = (1011, "Internal error occurred.")

    def __init__(
        self,
        *,
        host: str,
        port: int,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
    ) -> None:
        super().__init__(host=host, port=port, certfile=certfile, keyfile=keyfile)
        #: Every session served (live and ended), oldest first.
        self.sessions: list[SessionT] = []
        #: Close codes of ended connections, in order.
        self.close_codes: list[int | None] = []
        #: WebSocket connections accepted so far.
        self.connections = 0
        self._server: Server | None = None
        self._live: dict[ServerConnection, SessionT] = {}
        self._refuse: list[tuple[int, str]] = []

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        raise NotImplementedError

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def _listen(self, ssl_context: ssl.SSLContext | None) -> int:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            ssl=ssl_context,
            process_request=self._check_path,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
            ping_interval=20,
        )
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def live_sessions(self) -> list[SessionT]:
        return list(self._live.values())

    # -- faults --------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Reset every live connection without a close frame (the client sees 1006)."""
        count = 0
        for connection in list(self._live):
            transport = connection.transport
            if transport is not None:
                transport.abort()
                count += 1
        return count

    def refuse_next(
        self, count: int = 1, *, close_code: int | None = None, reason: str | None = None
    ) -> None:
        """Close the next ``count`` connections right after the upgrade."""
        default_code, default_reason = self.refusal
        refusal = (close_code or default_code, reason or default_reason)
        self._refuse.extend([refusal] * count)

    def _take_refusal(self) -> tuple[int, str] | None:
        """The refusal for a connection just accepted, if one is queued."""
        return self._refuse.pop(0) if self._refuse else None
