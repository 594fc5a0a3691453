"""Genesys Cloud Audio Connector: ``WS /v1/telephony/genesys/{tenant}[/{connector}]``.

AudioHook v2, Audio Connector flavour. Genesys appends the Architect action's Connector ID to
the integration's base URI; it is kept with the call (``metadata.genesys.connector_id``).

Before the upgrade: ``X-API-KEY`` must be a key of ``tenant``; when the tenant configures a
client secret, the HTTP message signature must verify (draft-11, HMAC-SHA256); the
organization must be one the tenant allows. A refusal is an HTTP 401/403 (Genesys logs it).

After it, :class:`~s2s.telephony.audiohook.AudioHookServer` keeps the protocol (sequence
numbers, ``pong`` before anything else, states) and this module does the I/O: ``open`` creates
the session (the connection probe, with nil UUIDs, gets ``opened`` and no bot), caller frames go
to it, model audio goes out as binary PCMU frames of ``telephony.genesys_frame_ms`` paced to
real time, barge-in is the ``barge_in`` event, a 429 holds our frames for ``retryAfter``, and
``end_call`` / ``transfer_call`` end with ``disconnect{completed, outputVariables}`` once the
goodbye has played. The session always ends with our ``closed`` answering Genesys' ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from s2s.log import logger, session_id_var
from s2s.service.telephony_config import TelephonySettings
from s2s.telephony import audiohook_messages as messages
from s2s.telephony.audiohook import AudioHookServer
from s2s.telephony.http_signature import SignatureError, normalize_authority, verify
from s2s.telephony.outbound import OutboundAudio, Segment

from ..errors import ApiError
from ..tenancy import Principal
from ..web import deny
from .bridge import CallBridge, PlatformGone, detached, gone_on_failure
from .calls import CallOutcome, call_request
from .gateway import Gateway

__all__ = ["GenesysGateway"]

log = logger.getChild("telephony")

#: Genesys waits 10 s for ``closed``; after our ``disconnect`` we wait this long for ``close``.
CLOSE_WAIT_S = 10.0
#: Session endings that are failures for the Architect flow (``disconnect{error}``).
FAILURES = frozenset({"provider_error", "internal_error", "start_failed", "stream_lost"})
_UUID_CHARS = frozenset("0123456789abcdefABCDEF-")


class GenesysGateway(Gateway):
    """Genesys' route for one ingress replica."""

    def _admit(self, websocket: WebSocket, tenant: str) -> tuple[TelephonySettings, str, str]:
        """Check the upgrade request: (settings, session id, organization id) or ApiError."""
        telephony = self.telephony(tenant)
        if telephony is None or telephony.genesys is None:
            raise ApiError(404, "not_found", f"no Genesys calls for tenant {tenant!r}")
        headers = websocket.headers
        principal = self.auth.authenticate({"x-api-key": headers.get("x-api-key", "")}, {})
        if principal is None or principal.tenant != tenant:
            raise ApiError(401, "unauthorized", "X-API-KEY is not a key of this tenant")
        session_id = headers.get("audiohook-session-id", "")
        organization = headers.get("audiohook-organization-id", "")
        for name, value in (("Session", session_id), ("Organization", organization)):
            if len(value) != 36 or not set(value) <= _UUID_CHARS:
                raise ApiError(400, "invalid_request", f"Audiohook-{name}-Id must be a UUID")
        allowed = telephony.genesys.organization_ids
        if allowed is not None and organization not in allowed:
            raise ApiError(403, "forbidden", "this Genesys organization may not connect")
        secret = telephony.genesys.client_secret()
        if secret is not None:
            path = websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
            host = headers.get("host", websocket.url.netloc)
            try:
                verify(
                    target=path,
                    authority=normalize_authority(host, websocket.url.scheme),
                    headers=dict(headers),
                    secret_b64=secret,
                    now=time.time(),
                )
            except SignatureError as exc:
                log.warning("Genesys connection for %s refused: %s", tenant, exc)
                raise ApiError(
                    401, "unauthorized", "the request signature does not verify"
                ) from exc
        return telephony, session_id.lower(), organization

    async def connect(self, websocket: WebSocket, tenant: str, connector: str = "") -> None:
        try:
            telephony, session_uuid, organization = self._admit(websocket, tenant)
        except ApiError as error:
            await deny(websocket, error, 4000 + error.status)
            return
        await websocket.accept()
        call = _GenesysCall(self, websocket, tenant, telephony, session_uuid, organization)
        call.connector = connector[:64]
        # Its own task: Serve cancels this handler as soon as Genesys disconnects, and the call
        # must still read what came before (its ``close``) and stop its session.
        await asyncio.shield(detached(call.serve()))


class _GenesysCall:
    """One AudioHook session: the protocol engine, the socket, and the call's bridge."""

    def __init__(
        self,
        gateway: GenesysGateway,
        websocket: WebSocket,
        tenant: str,
        telephony: TelephonySettings,
        session_uuid: str,
        organization: str,
    ) -> None:
        self.gateway = gateway
        self.websocket = websocket
        self.tenant = tenant
        self.telephony = telephony
        self.server = AudioHookServer(session_uuid, organization)
        self.server_uuid = session_uuid
        self.connector = ""
        self.bridge: CallBridge | None = None
        self.session_id: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._done = asyncio.Event()

    # -- sending ----------------------------------------------------------------------------

    async def send_texts(self) -> None:
        async with self._lock, gone_on_failure():
            for text in self.server.data_to_send():
                await self.websocket.send_text(text)

    async def send_audio(self, audio: bytes) -> None:
        hold = self.server.retry_after_until(time.time())
        if hold is not None:  # Genesys asked us to slow down: late, but nothing dropped
            await asyncio.sleep(hold - time.time())
        if not self.server.can_send_audio:
            return  # paused (hold, secure pause) or ending: the caller is not listening
        async with self._lock, gone_on_failure():
            await self.websocket.send_bytes(audio)

    # -- receiving --------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            await self.run()
        except (WebSocketDisconnect, PlatformGone):
            pass
        except Exception:
            log.exception("Genesys session %s failed", self.server_id)
        finally:
            await self.stop()

    async def run(self) -> None:
        while self.server.state != "closed":
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    audio = self.server.receive_audio(message["bytes"])
                    if self.bridge is not None:
                        await self.bridge.caller_audio(audio)
                    continue
                events = self.server.receive_text(message.get("text") or "")
            except messages.AudioHookProtocolError as exc:
                log.warning("Genesys session %s: %s", self.server_id, exc)
                await self._fail(exc.disconnect_reason, exc.message)
                continue
            await self.send_texts()  # a pong goes out before anything else happens
            for event in events:
                await self._on(event)
            if self.session_id is not None and session_id_var.get() != self.session_id:
                session_id_var.set(self.session_id)
        with contextlib.suppress(Exception):
            await self.websocket.close(1000)

    @property
    def server_id(self) -> str:
        return self.session_id or "(no session yet)"

    async def _on(self, event: messages.ClientEvent) -> None:
        match event:
            case messages.OpenRequested():
                self._spawn(self._open(event))
            case messages.Dtmf(digit=digit) if self.bridge is not None:
                await self.bridge.key_pressed(digit)
            case messages.CloseRequested(reason=reason):
                if self.bridge is not None:
                    await self.bridge.hung_up(
                        "caller_hung_up" if reason == "end" else "stream_lost"
                    )
                self.server.closed()
                await self.send_texts()
            case messages.ClientError(code=429, retry_after_s=retry_after):
                until = self.server.record_rate_limit(retry_after, time.time())
                log.warning(
                    "Genesys session %s: rate limited for %.1f s",
                    self.server_id,
                    until - time.time(),
                )
            case messages.ClientError(code=code, message=text):
                log.warning("Genesys session %s: client error %s: %s", self.server_id, code, text)
            case messages.UpdateRequested():
                self.server.updated()
                await self.send_texts()
            case _:
                pass  # paused / resumed / discarded / playback reports: the clock covers them

    async def _open(self, request: messages.OpenRequested) -> None:
        if request.probe:  # Genesys checking the integration: answer, start no bot
            self.server.open(self.server.choose_media(request.media))
            await self.send_texts()
            return
        media = self.server.choose_media(request.media)
        if media is None:
            await self._fail("error", "no PCMU 8 kHz mono external medium was offered")
            return
        gateway = self.gateway
        body = call_request(
            gateway.config,
            self.telephony,
            platform="genesys",
            call_id=request.conversation_id,
            caller=request.participant.ani,
            called=request.participant.dnis,
            extra_metadata={
                "genesys": {
                    "input_variables": dict(request.input_variables),
                    "audiohook_session_id": self.server_uuid,
                    "organization_id": request.organization_id,
                    "connector_id": self.connector,
                }
            },
        )
        try:  # admitted now, answered at once; the actor starts while audio flows
            spec = await gateway.creator.admit_call(Principal(self.tenant), body)
        except ApiError as exc:
            log.warning("Genesys call for %s refused: %s", self.tenant, exc.message)
            await self._fail("error", exc.message)
            return
        self.session_id = spec.session_id
        meta = await gateway.store.meta(spec.session_id)
        frames = gateway.config.telephony
        self.bridge = CallBridge(
            session_id=spec.session_id,
            meta=meta or {},
            router=gateway.router,
            hub=gateway.hub,
            tokens=gateway.tokens,
            settings=self.telephony,
            platform=_GenesysPlatform(self),
            outbound=OutboundAudio(
                frame_ms=frames.genesys_frame_ms,
                lead_ms=frames.genesys_lead_ms,
                max_frame_ms=2 * frames.genesys_frame_ms,
                min_interval_ms=frames.genesys_frame_ms,
            ),
            metrics=gateway.creator.metrics,
            launch=lambda: gateway.creator.launch(spec),
        )
        self.server.open(media)
        await self.send_texts()
        log.info(
            "Genesys call %s for %s: session %s",
            request.conversation_id,
            self.tenant,
            spec.session_id,
        )
        self._spawn(self.bridge.run())

    async def _fail(self, reason: Any, info: str) -> None:
        """End the session from our side with ``disconnect`` (the client then closes)."""
        if self.bridge is not None:
            with contextlib.suppress(Exception):
                await self.bridge.hung_up("stream_lost")
        if not self.server.disconnect_sent and self.server.state not in ("closing", "closed"):
            self.server.disconnect(reason, info=info[:200])
            await self.send_texts()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        task.add_done_callback(self._reap)
        self._tasks.append(task)

    def _reap(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Genesys session %s: %r", self.server_id, task.exception())
            detached(self._fail("error", "internal error"))

    async def stop(self) -> None:
        if self.bridge is not None and not self.bridge.ended.is_set():
            await self.bridge.hung_up("stream_lost")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _GenesysPlatform:
    """Genesys' side of a bridge: binary frames, the ``barge_in`` event, ``disconnect``."""

    name = "genesys"
    confirms_playback = False

    def __init__(self, call: _GenesysCall) -> None:
        self.call = call

    async def play(self, segment: Segment) -> None:
        await self.call.send_audio(segment.audio)

    async def flush(self) -> None:
        server = self.call.server
        if server.state in ("active", "paused") and not server.disconnect_sent:
            server.barge_in()
            await self.call.send_texts()

    async def finish(self, outcome: CallOutcome) -> None:
        """``disconnect``: completed with the outcome as Architect outputs, or error."""
        server = self.call.server
        if server.disconnect_sent or server.state in ("closing", "closed"):
            return
        session_id = self.call.session_id or ""
        if outcome.reason in FAILURES:  # Architect takes the action's failure path
            server.disconnect("error", info=outcome.reason)
        else:
            server.disconnect(
                "completed",
                info=outcome.reason,
                output_variables=outcome.output_variables(session_id),
            )
        await self.call.send_texts()
