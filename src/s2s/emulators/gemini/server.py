"""The Gemini Live emulator server: ``wss://127.0.0.1:PORT/ws/google.ai.generativelanguage.…``.

::

    async with GeminiEmulator(api_key="test-key") as emulator:
        engine = s2s.new("gemini_live", s2s.Config(extra={
            "api_key": "test-key", "base_url": emulator.url, "ca_file": str(emulator.ca_file)}))

It serves TLS, because the official SDK only speaks ``wss://``: with the certificate it is given,
or one it generates for ``localhost`` and ``127.0.0.1`` (trust :attr:`GeminiEmulator.ca_file`).
The path must be a BidiGenerateContent endpoint of ``v1``, ``v1beta`` or ``v1alpha`` (else HTTP
404); the key comes from ``?key=``, ``x-goog-api-key`` or (ephemeral tokens)
``Authorization: Token``, and is checked when ``setup`` arrives, as production does.

Every connection gets a ``goAway`` ``go_away_before_s`` before ``connection_limit_s``, then a
close 1011. Fault injection: :meth:`drop_connections` (TCP reset, no close frame),
:meth:`close_connections` (a close with a code and reason), :meth:`refuse_next` (close the next
connections right after the upgrade), :meth:`go_away` (now, with a deadline) and
``options.message_delay_s`` (latency on every server message).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...log import logger
from ...providers.gemini_live.wire import PATH
from ..tls import self_signed, server_context
from . import messages as msg
from .session import EmulatedSession, EmulatorOptions, HandleStore

__all__ = ["GeminiEmulator"]

log = logger.getChild("emulator.gemini")

DEADLINE_REASON = "Deadline expired before operation could complete."


class GeminiEmulator:
    """A protocol-faithful Gemini Live server on loopback, over TLS (an async context manager)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        options: EmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise ValueError("give both certfile and keyfile, or neither")
        self.host = host
        self.port = port
        self.certfile = Path(certfile) if certfile is not None else None
        self.keyfile = Path(keyfile) if keyfile is not None else None
        #: The CA a client must trust (None when a certificate was given).
        self.ca_file: Path | None = None
        self.options = options or EmulatorOptions()
        for key, value in overrides.items():
            if not hasattr(self.options, key):
                raise TypeError(f"unknown emulator option {key!r}")
            setattr(self.options, key, value)
        self.handles = HandleStore()
        #: Every session served (live and ended), oldest first.
        self.sessions: list[EmulatedSession] = []
        #: Close codes of ended connections, in order.
        self.close_codes: list[int | None] = []
        #: WebSocket connections accepted so far.
        self.connections = 0
        self._server: Server | None = None
        self._live: dict[ServerConnection, EmulatedSession] = {}
        self._refuse: list[tuple[int, str]] = []
        self._generated_dir: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> GeminiEmulator:
        if self.certfile is None or self.keyfile is None:
            files = self_signed()
            self._generated_dir = files.cafile.parent
            self.certfile, self.keyfile, self.ca_file = files.certfile, files.keyfile, files.cafile
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            ssl=server_context(self.certfile, self.keyfile),
            process_request=self._check_path,
            max_size=16 * 1024 * 1024,
            compression=None,
            ping_interval=20,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("Gemini Live emulator listening on %s", self.url)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._generated_dir is not None:
            shutil.rmtree(self._generated_dir, ignore_errors=True)
            self._generated_dir = None

    async def __aenter__(self) -> GeminiEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL (``Config.extra["base_url"]``, or the SDK's ``HttpOptions.base_url``)."""
        return f"https://{self.host}:{self.port}"

    def ws_url(self, api_version: str = "v1beta") -> str:
        """The full WebSocket endpoint."""
        return (
            f"wss://{self.host}:{self.port}/ws/google.ai.generativelanguage.{api_version}"
            ".GenerativeService.BidiGenerateContent"
        )

    @property
    def live_sessions(self) -> list[EmulatedSession]:
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

    async def close_connections(
        self, code: int = 1011, reason: str = "Internal error occurred."
    ) -> int:
        """Close every live connection with ``code`` and ``reason``."""
        live = list(self._live.items())
        for _, session in live:
            await session.refuse(code, reason)
        return len(live)

    def refuse_next(
        self, count: int = 1, *, close_code: int = 1011, reason: str = "Internal error occurred."
    ) -> None:
        """Close the next ``count`` connections right after the upgrade."""
        self._refuse.extend([(close_code, reason)] * count)

    async def go_away(self, time_left_s: float) -> int:
        """Send ``goAway`` on every live connection now; close them ``time_left_s`` later."""
        live = list(self._live.values())
        for session in live:
            await self._warn_then_close(session, time_left_s)
        return len(live)

    async def _warn_then_close(self, session: EmulatedSession, time_left_s: float) -> None:
        await session.send(msg.go_away(time_left_s))

        async def close_later() -> None:
            await asyncio.sleep(time_left_s)
            await session.refuse(1011, DEADLINE_REASON)

        session.spawn(close_later())

    # -- connection handling -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if not PATH.match(urlsplit(request.path).path):
            return connection.respond(404, f"Not Found: {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.connections += 1
        if self._refuse:
            code, reason = self._refuse.pop(0)
            await ws.close(code, reason)
            self.close_codes.append(code)
            return
        match = PATH.match(urlsplit(request.path).path)
        assert match is not None
        version, method = match.groups()
        query = parse_qs(urlsplit(request.path).query)
        key = (query.get("key") or [""])[0] or request.headers.get("x-goog-api-key", "")
        constrained = method == "BidiGenerateContentConstrained"
        if constrained:
            auth = request.headers.get("Authorization", "")
            key = auth.removeprefix("Token ").strip() if auth.startswith("Token ") else key
            key = key or (query.get("access_token") or [""])[0]
        lock = asyncio.Lock()

        async def send(message: dict[str, Any]) -> None:
            data = json.dumps(message, separators=(",", ":")).encode()
            async with lock:
                await ws.send(data)  # binary frames, as production sends them

        async def close(code: int, reason: str) -> None:
            await ws.close(code, reason)

        session = EmulatedSession(
            send,
            close,
            self.options,
            self.handles,
            api_version=version,
            api_key=key,
            constrained=constrained,
        )
        self.sessions.append(session)
        self._live[ws] = session
        session.spawn(self._connection_limit(session))
        try:
            async for frame in ws:
                await session.handle(frame)
                if session.closed:
                    break
        except ConnectionClosed:
            pass
        finally:
            session.shutdown()
            self._live.pop(ws, None)
            await ws.wait_closed()
            self.close_codes.append(ws.close_code)

    async def _connection_limit(self, session: EmulatedSession) -> None:
        limit = self.options.connection_limit_s
        before = min(self.options.go_away_before_s, limit)
        await asyncio.sleep(limit - before)
        await self._warn_then_close(session, before)
