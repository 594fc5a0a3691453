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
connections right after the upgrade), :meth:`go_away` (now, with a deadline),
:meth:`exhaust_quota` (the production shape: set up, then a close 1011 "You exceeded your current
quota…") and ``options.message_delay_s`` (latency on every server message). Per-model rules
(what each model id accepts, retired ids) are in :mod:`.models`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...providers.gemini_live.wire import PATH
from ..base import apply_overrides
from ..websocket import WebSocketEmulator
from . import messages as msg
from .session import EmulatedSession, EmulatorOptions, HandleStore

__all__ = ["GeminiEmulator"]


DEADLINE_REASON = "Deadline expired before operation could complete."


class GeminiEmulator(WebSocketEmulator[EmulatedSession]):
    """A protocol-faithful Gemini Live server on loopback, over TLS (an async context manager)."""

    label = "Gemini Live"
    tls = True

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
        super().__init__(host=host, port=port, certfile=certfile, keyfile=keyfile)
        self.options = options or EmulatorOptions()
        apply_overrides(self.options, overrides)
        self.handles = HandleStore()

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

    # -- faults --------------------------------------------------------------------------------

    async def close_connections(
        self, code: int = 1011, reason: str = "Internal error occurred."
    ) -> int:
        """Close every live connection with ``code`` and ``reason``."""
        live = list(self._live.items())
        for _, session in live:
            await session.refuse(code, reason)
        return len(live)

    def exhaust_quota(self, close_after_s: float | None = None, *, exhausted: bool = True) -> None:
        """Run out of quota (``exhausted=False``: restore it).

        New connections get ``setupComplete``, then a close 1011 with the quota sentence
        ``close_after_s`` later (default ``options.quota_close_after_s``); open ones are closed
        ``options.quota_mid_session_s`` after their next client message.
        """
        self.options.quota_exhausted = exhausted
        if close_after_s is not None:
            self.options.quota_close_after_s = close_after_s

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

        session.tasks.spawn(close_later())

    # -- connection handling -------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if not PATH.match(urlsplit(request.path).path):
            return connection.respond(404, f"Not Found: {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.connections += 1
        refusal = self._take_refusal()
        if refusal is not None:
            code, reason = refusal
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
        session.tasks.spawn(self._connection_limit(session))
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
