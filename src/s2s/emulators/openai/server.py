"""The OpenAI Realtime emulator server: ``ws://127.0.0.1:PORT/v1/realtime?model=…``.

::

    async with OpenAIEmulator(api_key="sk-test") as emulator:
        engine = s2s.new("openai_realtime", s2s.Config(extra={
            "api_key": "sk-test", "base_url": emulator.url}))

Handshake checks follow production: the upgrade always succeeds (HTTP 101), then a bad or missing
key gets an ``error`` event and close 3000, the beta header or a missing/unknown model an
``error`` and close 4000, each with the close reason ``"<type>.<code>"``.

Fault injection: :meth:`drop_connections` (TCP reset, no close frame), :meth:`inject_error`,
:meth:`refuse_next` (close the next connections right after the upgrade) and
``options.event_delay_s`` (latency on every server event).
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...log import logger
from ...providers.openai_realtime.wire import GA_MODELS
from .events import Ids, error
from .session import EmulatedSession, EmulatorOptions

__all__ = ["OpenAIEmulator"]

log = logger.getChild("emulator.openai")

PATH = "/v1/realtime"


class OpenAIEmulator:
    """A protocol-faithful OpenAI Realtime GA server on loopback (an async context manager)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: EmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or EmulatorOptions()
        for key, value in overrides.items():
            if not hasattr(self.options, key):
                raise TypeError(f"unknown emulator option {key!r}")
            setattr(self.options, key, value)
        #: Every session served (live and ended), oldest first.
        self.sessions: list[EmulatedSession] = []
        #: Close codes of ended connections, in order.
        self.close_codes: list[int | None] = []
        #: WebSocket connections accepted so far.
        self.connections = 0
        self._server: Server | None = None
        self._live: dict[ServerConnection, EmulatedSession] = {}
        self._refuse: list[tuple[int, str]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> OpenAIEmulator:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_path,
            max_size=16 * 1024 * 1024,
            compression=None,
            ping_interval=20,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("OpenAI Realtime emulator listening on %s", self.url)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> OpenAIEmulator:
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
        """Base URL for our client (``Config.extra["base_url"]``)."""
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def sdk_base_url(self) -> str:
        """``websocket_base_url`` for the official ``openai`` SDK."""
        return f"ws://{self.host}:{self.port}/v1"

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

    async def inject_error(
        self,
        code: str,
        message: str,
        *,
        type: str = "server_error",
        close_code: int | None = None,
    ) -> None:
        """Send an ``error`` event on every live connection, then close it if ``close_code``."""
        for connection, session in list(self._live.items()):
            await session.error(code, message, type=type)
            if close_code is not None:
                await connection.close(close_code, f"{type}.{code}")

    def refuse_next(
        self, count: int = 1, *, close_code: int = 1011, reason: str = "server_error.overloaded"
    ) -> None:
        """Close the next ``count`` connections right after the upgrade."""
        self._refuse.extend([(close_code, reason)] * count)

    # -- connection handling -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != PATH:
            return connection.respond(404, f"Not Found: {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.connections += 1
        query = parse_qs(urlsplit(request.path).query)
        ids = Ids()
        lock = asyncio.Lock()

        async def send(event: dict[str, Any]) -> None:
            async with lock:
                await ws.send(json.dumps(event, separators=(",", ":")))

        async def fatal(code: int, err_type: str, err_code: str, message: str) -> None:
            await send(error(ids, err_code, message, type=err_type))
            await ws.close(code, f"{err_type}.{err_code}")
            self.close_codes.append(code)

        try:
            auth = request.headers.get("Authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not key:
                await fatal(
                    3000,
                    "invalid_request_error",
                    "missing_api_key",
                    "Missing bearer or basic authentication in header",
                )
                return
            if self.options.api_key is not None and key != self.options.api_key:
                shown = key[:5] + "*" * 4 + key[-4:] if len(key) > 9 else "***"
                await fatal(
                    3000,
                    "invalid_request_error",
                    "invalid_api_key",
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                )
                return
            if "OpenAI-Beta" in request.headers:
                await fatal(
                    4000,
                    "invalid_request_error",
                    "beta_api_shape_disabled",
                    "The Realtime beta API shape is disabled for this model; "
                    "use the GA interface (no OpenAI-Beta header).",
                )
                return
            model = (query.get("model") or [""])[0]
            if not model:
                await fatal(
                    4000,
                    "invalid_request_error",
                    "missing_model",
                    "You must provide a model parameter, e.g. "
                    "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
                )
                return
            if model not in GA_MODELS:
                await fatal(
                    4000,
                    "invalid_request_error",
                    "invalid_model",
                    f"Invalid model: '{model}'. The model does not exist or you do not "
                    "have access to it.",
                )
                return
            if self._refuse:
                code, reason = self._refuse.pop(0)
                await ws.close(code, reason)
                self.close_codes.append(code)
                return
            await self._serve_session(ws, send, ids, model)
        except ConnectionClosed:
            pass

    async def _serve_session(self, ws: ServerConnection, send: Any, ids: Ids, model: str) -> None:
        async def close(code: int, reason: str) -> None:
            await ws.close(code, reason)

        session = EmulatedSession(send, close, self.options, model, ids)
        self.sessions.append(session)
        self._live[ws] = session
        timer = asyncio.create_task(session.run_session_timer())
        try:
            await session.start()
            async for frame in ws:
                await session.handle(frame)
        except ConnectionClosed:
            pass
        finally:
            session.shutdown()
            timer.cancel()
            self._live.pop(ws, None)
            self.close_codes.append(ws.close_code)
