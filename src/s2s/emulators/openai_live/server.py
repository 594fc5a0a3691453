"""The GPT-Live emulator server: ``ws://127.0.0.1:PORT/v1/live/sessions``.

::

    async with LiveEmulator(api_key="sk-test") as emulator:
        engine = s2s.new("openai_live", s2s.Config(extra={
            "api_key": "sk-test", "base_url": emulator.url}))

The official SDK connects with ``AsyncOpenAI(websocket_base_url=emulator.sdk_base_url)`` and
``client.live.connect()``. The upgrade always succeeds; a missing or wrong key gets an ``error``
event and close 3000 (as the Realtime emulator; GPT-Live's own close codes are undocumented).

Failures (:data:`FAILURES`, worded like production, drift reference §1.10 and §5) are ``error``
events after ``session.started``: :meth:`LiveEmulator.inject_failure` on live sessions, or
``options.failure`` on every session right after it starts. The fatal ones (quota, credits,
billing, key, account) are followed by a WebSocket close 1011 with no ``session.closed``: the
worst case for a client that retries 1011 (as the SDK's reconnect does), so a client must
classify the error and stop. ``rate_limit_exceeded`` leaves the session open.
:meth:`LiveEmulator.end_sessions` ends live sessions with ``session.closed{reason}`` (e.g.
``"content"``); ``options.session_limit_s`` ends each with ``reason:"expired"``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..base import apply_overrides
from ..websocket import WebSocketEmulator
from .events import Ids, error
from .options import LiveEmulatorOptions
from .session import LiveSession

__all__ = ["FAILURES", "FATAL", "LiveEmulator"]

PATH = "/v1/live/sessions"

#: Failure name -> (error type, message); the code is the name.
FAILURES: dict[str, tuple[str, str]] = {
    "insufficient_quota": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    "credit_balance_exhausted": (
        "insufficient_quota",
        "Your credit balance is too low to access the API. Please go to Plans & Billing to "
        "upgrade or purchase credits.",
    ),
    "billing_hard_limit_reached": (
        "invalid_request_error",
        "Billing hard limit has been reached.",
    ),
    "invalid_api_key": (
        "invalid_request_error",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    "account_deactivated": (
        "invalid_request_error",
        "This key is associated with a deactivated account. If you feel this is an error, "
        "contact us through our help center at help.openai.com.",
    ),
    "rate_limit_exceeded": (
        "rate_limit_error",
        "Rate limit reached for gpt-live-1 on session seconds per minute. Please try again in 1s.",
    ),
}
#: Failures after which the server closes the socket (1011, no session.closed).
FATAL = frozenset(FAILURES) - {"rate_limit_exceeded"}


class LiveEmulator(WebSocketEmulator[LiveSession]):
    """A protocol-faithful GPT-Live server on loopback (an async context manager)."""

    label = "OpenAI GPT-Live"
    refusal = (1011, "server_error.overloaded")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: LiveEmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(host=host, port=port)
        self.options = options or LiveEmulatorOptions()
        apply_overrides(self.options, overrides)
        self._connections: dict[LiveSession, ServerConnection] = {}

    @property
    def url(self) -> str:
        """Base URL for our client (``Config.extra["base_url"]``)."""
        return f"ws://{self.host}:{self.port}{PATH}"

    @property
    def sdk_base_url(self) -> str:
        """``websocket_base_url`` for the official ``openai`` SDK."""
        return f"ws://{self.host}:{self.port}/v1"

    # -- faults --------------------------------------------------------------------------------

    async def inject_failure(self, name: str) -> None:
        """Send failure ``name`` (a :data:`FAILURES` key) on every started live session."""
        for session in self.live_sessions:
            if session.resource is not None:
                await self._fail(session, name)

    async def _fail(self, session: LiveSession, name: str) -> None:
        err_type, message = FAILURES[name]
        await session.error(name, message, type=err_type)
        if name in FATAL:
            session.closed = True
            connection = self._connections.get(session)
            if connection is not None:
                await connection.close(1011, f"{err_type}.{name}")

    async def end_sessions(self, reason: str) -> None:
        """End every live session with ``session.closed{reason}``."""
        for session in self.live_sessions:
            await session.end(reason)

    # -- connection handling -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != PATH:
            return connection.respond(404, f"Not Found: {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.connections += 1
        ids = Ids()
        lock = asyncio.Lock()

        async def send(event: dict[str, Any]) -> None:
            async with lock:
                try:
                    await ws.send(json.dumps(event, separators=(",", ":")))
                except ConnectionClosed:
                    pass  # the client is gone; what it sent before closing is still handled

        try:
            auth = request.headers.get("Authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not key or (self.options.api_key is not None and key != self.options.api_key):
                code = "invalid_api_key" if key else "missing_api_key"
                message = (
                    FAILURES["invalid_api_key"][1]
                    if key
                    else "Missing bearer or basic authentication in header"
                )
                await send(error(ids, code, message))
                await ws.close(3000, f"invalid_request_error.{code}")
                self.close_codes.append(3000)
                return
            refusal = self._take_refusal()
            if refusal is not None:
                await ws.close(*refusal)
                self.close_codes.append(refusal[0])
                return
            await self._serve(ws, send, ids)
        except ConnectionClosed:
            pass

    async def _serve(self, ws: ServerConnection, send: Any, ids: Ids) -> None:
        async def close(code: int, reason: str) -> None:
            await ws.close(code, reason)

        session = LiveSession(send, close, self.options, ids)
        self.sessions.append(session)
        self._live[ws] = session
        self._connections[session] = ws
        timer: asyncio.Task[None] | None = None
        try:
            async for frame in ws:
                started = session.resource is not None
                await session.handle(frame)
                if not started and session.resource is not None:
                    timer = asyncio.create_task(session.run_session_timer())
                    if self.options.failure is not None:
                        await self._fail(session, self.options.failure)
        except ConnectionClosed:
            pass
        finally:
            session.closed = True
            if timer is not None:
                timer.cancel()
            self._live.pop(ws, None)
            self._connections.pop(session, None)
            self.close_codes.append(ws.close_code)
