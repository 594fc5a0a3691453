"""A small scripted deployment for the Twilio simulator's tests.

An aiohttp app answers the voice webhook (and any redirect targets) after checking
``X-Twilio-Signature`` with Twilio's own ``RequestValidator``; a websockets server accepts the
stream after checking the signature over its ``ws://`` URL (403 otherwise) and runs a script
against the connection while a reader records everything the simulator sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..conftest import SECOND

TOKEN = "test-auth-token-0123"


@dataclass
class HttpHit:
    path: str
    form: dict[str, str]
    signature_ok: bool


@dataclass
class Upgrade:
    path: str
    headers: Headers
    signature_ok: bool


@dataclass
class Peer:
    """One stream connection as the server sees it."""

    ws: ServerConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> None:
        async with asyncio.timeout(timeout * SECOND):
            while not predicate(self.messages):
                if self.closed.is_set():
                    raise AssertionError(
                        f"stream closed; got {[m['event'] for m in self.messages]}"
                    )
                self.changed.clear()
                await self.changed.wait()

    def events(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event]

    @property
    def stream_sid(self) -> str:
        return str(self.events("start")[0]["streamSid"])

    async def started(self) -> str:
        await self.until(lambda ms: any(m["event"] == "start" for m in ms))
        return self.stream_sid

    async def media(self, audio: bytes) -> None:
        payload = base64.b64encode(audio).decode()
        await self.send(
            {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}
        )

    async def mark(self, name: str) -> None:
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def clear(self) -> None:
        await self.send({"event": "clear", "streamSid": self.stream_sid})

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(message) if isinstance(message, dict) else message)

    def caller_audio(self) -> bytes:
        return b"".join(base64.b64decode(m["media"]["payload"]) for m in self.events("media"))


Script = Callable[[Peer], Awaitable[None]]


async def keep_open(peer: Peer) -> None:
    """The default script: say nothing and wait for the caller to hang up."""
    await peer.closed.wait()


class Deployment:
    """Voice webhook + stream server on 127.0.0.1, ephemeral ports."""

    def __init__(
        self,
        script: Script = keep_open,
        *,
        after: str = "",
        stream_query: str = "?token=dropped-by-twilio",
        parameters: dict[str, str] | None = None,
        auth_token: str = TOKEN,
        voice_status: int = 200,
        voice_twiml: str | None = None,
        routes: dict[str, str] | None = None,
        stream_host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = script
        self.after = after
        self.stream_query = stream_query
        self.parameters = (
            {"tenant": "acme", "sessionToken": "opaque-123"} if parameters is None else parameters
        )
        self.validator = RequestValidator(auth_token)
        self.voice_status = voice_status
        self.voice_twiml = voice_twiml
        self.routes = routes or {}
        self.stream_host = stream_host
        self.tls = tls
        self.ws_scheme, self.http_scheme = ("wss", "https") if tls else ("ws", "http")
        self.hits: list[HttpHit] = []
        self.upgrades: list[Upgrade] = []
        self.peers: list[Peer] = []
        self.handler_errors: list[BaseException] = []
        self.peer_ready = asyncio.Event()
        self._ws_server: Server | None = None
        self._runner: web.AppRunner | None = None
        self.ws_port = 0
        self.http_port = 0

    @property
    def voice_url(self) -> str:
        return self.http_url("/voice")

    @property
    def stream_url(self) -> str:
        return f"{self.ws_scheme}://127.0.0.1:{self.ws_port}/stream"

    def http_url(self, path: str) -> str:
        return f"{self.http_scheme}://127.0.0.1:{self.http_port}{path}"

    def twiml(self) -> str:
        if self.voice_twiml is not None:
            return self.voice_twiml
        params = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in self.parameters.items())
        base = f"{self.ws_scheme}://{self.stream_host}:{self.ws_port}/stream"
        url = f"{base}{self.stream_query}".replace("&", "&amp;")
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{url}">'
            f"{params}</Stream></Connect>{self.after}</Response>"
        )

    async def __aenter__(self) -> Deployment:
        self._ws_server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check_upgrade,
            compression=None,
            ssl=self.tls,
        )
        self.ws_port = next(iter(self._ws_server.sockets)).getsockname()[1]
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._http)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.http_port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP --------------------------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.Response:
        url = self.http_url(request.path_qs)
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = bool(self.validator.validate(url, form, signature))
        self.hits.append(HttpHit(request.path, form, ok))
        if not ok:
            return web.Response(status=403, text="bad signature")
        if request.path == "/voice":
            return web.Response(
                status=self.voice_status, text=self.twiml(), content_type="application/xml"
            )
        if request.path in self.routes:
            return web.Response(text=self.routes[request.path], content_type="text/xml")
        return web.Response(status=404, text="no such route")

    # -- WebSocket ---------------------------------------------------------------------------

    def _check_upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        # The public URL of the stream, as configured (Twilio drops the query string).
        signature = request.headers.get("X-Twilio-Signature", "")
        ok = bool(self.validator.validate(self.stream_url, {}, signature))
        self.upgrades.append(Upgrade(request.path, request.headers, ok))
        if not ok:
            return connection.respond(403, "bad signature\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        peer = Peer(ws)
        self.peers.append(peer)
        self.peer_ready.set()
        reader = asyncio.create_task(self._read(peer))
        try:
            await self.script(peer)
        except BaseException as exc:  # surfaced by the tests through handler_errors
            self.handler_errors.append(exc)
            raise
        finally:
            await ws.close()
            await reader

    async def _read(self, peer: Peer) -> None:
        try:
            async for frame in peer.ws:
                peer.messages.append(json.loads(frame))
                peer.arrivals.append(asyncio.get_running_loop().time())
                peer.changed.set()
        except ConnectionClosed:
            pass
        finally:
            peer.closed.set()
            peer.changed.set()

    async def peer(self) -> Peer:
        async with asyncio.timeout(5 * SECOND):
            await self.peer_ready.wait()
        return self.peers[-1]
