"""A small scripted AudioHook server for the Genesys simulator tests.

It verifies the upgrade like the reference server (API key, HTTP message signature, written here
independently of ``s2s.phone.genesys_signature``), answers ``open`` with ``opened`` (the first
offered medium unless told otherwise), ``ping`` with ``pong`` and ``close`` with ``closed``, and
records everything it receives. Tests drive the rest through :class:`ServerSession`, whose
``send`` can break any framing rule on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
PATH = "/audiohook/v2/connector-7?tenant=acme"


@dataclass
class Behaviour:
    """How the server answers; the defaults are a conformant server."""

    opened_delay_s: float = 0.0
    #: ``opened.parameters`` from ``open.parameters``; default: the first offered medium.
    opened_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Runs between ``open`` and ``opened`` (e.g. to send audio too early).
    before_opened: Callable[[ServerSession], Awaitable[None]] | None = None
    #: Pings answered; later ones are left without a pong.
    pongs_to_answer: int | None = None
    pong_clientseq_delta: int = 0
    answer_close: bool = True
    #: Refuse ``open`` whose organizationId differs from the header (``disconnect``).
    check_organization: bool = True


@dataclass
class ServerSession:
    """One AudioHook session on the server side."""

    ws: ServerConnection
    request_headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    frame_times: list[float] = field(default_factory=list)
    seq: int = 0
    clientseq: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    async def send(
        self,
        kind: str,
        parameters: dict[str, Any] | None = None,
        *,
        seq: int | None = None,
        clientseq: int | None = None,
        omit: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Send a server message; ``seq``/``clientseq``/``omit``/``extra`` break it on purpose."""
        self.seq = self.seq + 1 if seq is None else seq
        message: dict[str, Any] = {
            "version": "2",
            "id": self.request_headers["audiohook-session-id"],
            "type": kind,
            "seq": self.seq,
            "clientseq": self.clientseq if clientseq is None else clientseq,
            "parameters": parameters if parameters is not None else {},
        }
        for key in omit:
            message.pop(key)
        message.update(extra or {})
        await self.ws.send(json.dumps(message))

    async def send_audio(self, data: bytes) -> None:
        await self.ws.send(data)

    async def wait_for(self, predicate: Callable[[ServerSession], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: predicate(self))

    async def wait_message(self, kind: str, timeout: float, count: int = 1) -> dict[str, Any]:
        await self.wait_for(lambda s: len(s.of_type(kind)) >= count, timeout)
        return self.of_type(kind)[count - 1]

    async def _record(self, raw: str | bytes) -> dict[str, Any] | None:
        message = None
        if isinstance(raw, bytes):
            self.audio += raw
            self.frame_times.append(time.monotonic())
        else:
            message = json.loads(raw)
            message["_at"] = time.monotonic()
            self.messages.append(message)
            self.clientseq = message["seq"]
        async with self.changed:
            self.changed.notify_all()
        return message


def signature_problem(request: Request, api_key: str, secret: str | None) -> str | None:
    """Why the reference server would refuse this upgrade, or ``None``."""
    headers = request.headers
    if headers.get("X-API-KEY") != api_key:
        return "unknown API key"
    signature_input, signature = headers.get("Signature-Input"), headers.get("Signature")
    if secret is None:
        return None
    if signature_input is None or signature is None:
        return "unsigned request"
    match = re.fullmatch(
        r"sig1=\((?P<names>[^)]*)\)(?P<params>(;\w+=(\"[^\"]*\"|\d+))*)", signature_input
    )
    if match is None:
        return "malformed Signature-Input"
    names = re.findall(r'"([^"]+)"', match["names"])
    params = {
        k: v.strip('"') for k, v, _ in re.findall(r";(\w+)=((\"[^\"]*\")|\d+)", match["params"])
    }
    now = time.time()
    if params.get("keyid") != api_key:
        return "keyid is not X-API-KEY"
    if params.get("alg") != "hmac-sha256" or len(params.get("nonce", "")) < 22:
        return "bad alg or nonce"
    created, expires = int(params.get("created", "0")), int(params.get("expires", "0"))
    if now - created > 10 + 3 or created > now + 3 or expires < now:
        return "signature expired"
    values = {"@request-target": request.path, "@authority": headers["Host"]}
    lines = [f'"{name}": {values.get(name) or headers[name]}' for name in names]
    lines.append(f'"@signature-params": {signature_input.removeprefix("sig1=")}')
    mac = hmac.new(base64.b64decode(secret), "\n".join(lines).encode(), hashlib.sha256).digest()
    expected = f"sig1=:{base64.b64encode(mac).decode()}:"
    if not hmac.compare_digest(expected, signature):
        return "signature mismatch"
    return None


class AudioHookServer:
    """A scripted AudioHook endpoint on 127.0.0.1 (an ephemeral port)."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        api_key: str = API_KEY,
        secret: str | None = SECRET,
        refuse_status: int | None = None,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.api_key, self.secret, self.refuse_status = api_key, secret, refuse_status
        self.sessions: list[ServerSession] = []
        self.refusals: list[str] = []
        self.requests: list[Request] = []
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._new_session = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}{PATH}"

    async def __aenter__(self) -> AudioHookServer:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, compression=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def session(self, timeout: float = 5.0) -> ServerSession:
        async with asyncio.timeout(timeout):
            await self._new_session.wait()
        return self.sessions[0]

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        problem = signature_problem(request, self.api_key, self.secret)
        if self.refuse_status is not None:
            problem = problem or "refused by the test"
        if problem is not None:
            self.refusals.append(problem)
            status = HTTPStatus(self.refuse_status or 401)
            return connection.respond(status, problem + "\n")
        return None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        session = ServerSession(ws, headers)
        self.sessions.append(session)
        self._new_session.set()
        b = self.behaviour
        pings = 0
        try:
            async for raw in ws:
                message = await session._record(raw)
                if message is None:
                    continue
                kind = message["type"]
                if kind == "open":
                    self._spawn(self._open(session, message["parameters"]))
                elif kind == "ping":
                    pings += 1
                    if b.pongs_to_answer is None or pings <= b.pongs_to_answer:
                        await session.send(
                            "pong", clientseq=message["seq"] + b.pong_clientseq_delta
                        )
                elif kind == "close" and b.answer_close:
                    await session.send("closed")
        except ConnectionClosed:
            pass

    async def _open(self, session: ServerSession, params: dict[str, Any]) -> None:
        b = self.behaviour
        org = session.request_headers["audiohook-organization-id"]
        if b.check_organization and params["organizationId"] != org:
            await session.send("disconnect", {"reason": "unauthorized", "info": "org mismatch"})
            return
        if b.before_opened is not None:
            await b.before_opened(session)
        if b.opened_delay_s:
            await asyncio.sleep(b.opened_delay_s)
        if b.opened_params is not None:
            opened = b.opened_params(params)
        else:
            opened = {"startPaused": False, "media": params["media"][:1]}
        await session.send("opened", opened)
