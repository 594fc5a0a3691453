"""The OpenAI Realtime emulator server: ``ws://127.0.0.1:PORT/v1/realtime?model=…``.

::

    async with OpenAIEmulator(api_key="sk-test") as emulator:
        engine = s2s.new("openai_realtime", s2s.Config(extra={
            "api_key": "sk-test", "base_url": emulator.url}))

Handshake checks follow production: the upgrade always succeeds (HTTP 101), then a bad or missing
key gets an ``error`` event and close 3000, the beta header or a missing/unknown model an
``error`` and close 4000, each with the close reason ``"<type>.<code>"``.

Fault injection: :meth:`drop_connections` (TCP reset, no close frame), :meth:`inject_error`,
:meth:`refuse_next` (close the next connections right after the upgrade),
``options.event_delay_s`` (latency on every server event) and ``options.fail_responses`` (an
account out of quota, deactivated or without the model: a good handshake, then every response
fails and the server closes; see :mod:`.failures`).

``gpt-realtime-2*`` models answer in two assistant items, a short spoken preamble and then the
answer (``options.preamble``), as production does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...providers.openai_realtime.wire import GA_MODELS
from ..base import apply_overrides
from ..websocket import WebSocketEmulator
from .events import Ids, error
from .session import EmulatedSession, EmulatorOptions

__all__ = ["OpenAIEmulator"]


PATH = "/v1/realtime"


class OpenAIEmulator(WebSocketEmulator[EmulatedSession]):
    """A protocol-faithful OpenAI Realtime GA server on loopback (an async context manager)."""

    label = "OpenAI Realtime"
    refusal = (1011, "server_error.overloaded")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: EmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(host=host, port=port)
        self.options = options or EmulatorOptions()
        apply_overrides(self.options, overrides)

    @property
    def url(self) -> str:
        """Base URL for our client (``Config.extra["base_url"]``)."""
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def sdk_base_url(self) -> str:
        """``websocket_base_url`` for the official ``openai`` SDK."""
        return f"ws://{self.host}:{self.port}/v1"

    # -- faults --------------------------------------------------------------------------------

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
            refusal = self._take_refusal()
            if refusal is not None:
                code, reason = refusal
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
