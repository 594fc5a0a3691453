"""Twilio: the voice webhook, the Media Stream socket, and the ``<Redirect>`` after it.

* ``POST /v1/telephony/twilio/{tenant}/voice``: checks ``X-Twilio-Signature`` (the tenant's
  auth token, Twilio's own ``RequestValidator``), creates the call's session and answers TwiML:
  ``<Connect><Stream>`` to the stream URL with a one-use token as a ``<Parameter>`` (Twilio
  drops query strings), then a ``<Redirect>`` Twilio follows once we close the stream. A call
  the tenant's quotas or the cluster cannot take is answered ``<Reject reason="busy"/>``.
* ``WS /v1/telephony/twilio/{tenant}/stream``: the signature over the ``wss://`` URL is checked
  before the upgrade (403 otherwise); ``start`` must carry a valid token for this tenant.
* ``POST /v1/telephony/twilio/{tenant}/after?session_id=…``: the call's outcome as TwiML:
  ``<Dial>`` for a transfer, else ``<Hangup/>``.

URLs are built from ``telephony.public_origin`` when set (behind TLS termination the request
shows another scheme and host), else from the request's own scheme and ``Host``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from actors import SessionSpec
from s2s.log import logger, session_id_var
from s2s.service.config import ServiceConfig
from s2s.service.state import ENDED
from s2s.service.telephony_config import TelephonySettings
from s2s.telephony import twilio as wire
from s2s.telephony.outbound import OutboundAudio, Segment

from ..errors import ApiError
from ..tenancy import Principal
from ..web import deny
from .bridge import CallBridge, PlatformGone, detached, gone_on_failure
from .calls import CallOutcome, call_request
from .gateway import Gateway

__all__ = ["TwilioGateway", "public_url"]

log = logger.getChild("telephony")

#: How long Twilio has to send ``start`` after the upgrade.
START_TIMEOUT_S = 10.0
MAX_FORM_BYTES = 16_384


def public_url(
    config: ServiceConfig,
    scope_url: Any,
    headers: Mapping[str, str],
    path: str,
    *,
    websocket: bool,
    query: str = "",
) -> str:
    """The URL a platform used (or is told to use) for ``path`` on this service."""
    origin = config.telephony.public_origin
    if origin is None:
        scheme = "https" if scope_url.scheme in ("https", "wss") else "http"
        origin = f"{scheme}://{headers.get('host') or scope_url.netloc}"
    if websocket:
        origin = "wss" + origin[5:] if origin.startswith("https") else "ws" + origin[4:]
    return origin + path + (f"?{query}" if query else "")


class TwilioGateway(Gateway):
    """Twilio's routes for one ingress replica."""

    def _settings(self, tenant: str) -> tuple[TelephonySettings, str]:
        """The tenant's telephony settings and Twilio auth token; 404 if it takes no Twilio
        calls, 503 while its token is not set."""
        telephony = self.telephony(tenant)
        if telephony is None or telephony.twilio is None:
            raise ApiError(404, "not_found", f"no Twilio calls for tenant {tenant!r}")
        token = telephony.twilio.auth_token()
        if token is None:
            log.error("tenant %s: $%s is not set", tenant, telephony.twilio.auth_token_env)
            raise ApiError(503, "unavailable", "Twilio is not configured here", retry_after=60)
        return telephony, token

    async def _signed_form(self, request: Request, token: str) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "too_large", "webhook body too large")
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        url = public_url(
            self.config,
            request.url,
            request.headers,
            request.url.path,
            websocket=False,
            query=request.url.query,
        )
        signature = request.headers.get("x-twilio-signature", "")
        if not RequestValidator(token).validate(url, params, signature):
            log.warning("Twilio webhook %s: bad X-Twilio-Signature", request.url.path)
            raise ApiError(403, "forbidden", "X-Twilio-Signature does not match")
        return params

    async def voice(self, request: Request, tenant: str) -> Response:
        telephony, token = self._settings(tenant)
        form = await self._signed_form(request, token)
        call_sid = form.get("CallSid", "")
        body = call_request(
            self.config,
            telephony,
            platform="twilio",
            call_id=call_sid,
            caller=form.get("From", ""),
            called=form.get("To", ""),
        )
        reply = VoiceResponse()
        try:  # admitted now; its actor starts when the stream connects
            spec = await self.creator.admit_call(Principal(tenant), body)
        except ApiError as exc:
            if exc.status not in (429, 503):
                raise
            log.warning("Twilio call %s for %s refused: %s", call_sid, tenant, exc.message)
            reply.reject(reason="busy")  # the caller hears busy; Twilio bills nothing
            return Response(str(reply), media_type="application/xml")
        sid = spec.session_id
        stream_token = await self.tokens.issue(sid, tenant, call_sid)
        base = f"/v1/telephony/twilio/{tenant}"
        connect = Connect()
        stream = connect.stream(
            url=public_url(
                self.config, request.url, request.headers, f"{base}/stream", websocket=True
            )
        )
        stream.parameter(name="token", value=stream_token)
        stream.parameter(name="session_id", value=sid)
        reply.append(connect)
        after = public_url(
            self.config,
            request.url,
            request.headers,
            f"{base}/after",
            websocket=False,
            query=urlencode({"session_id": sid}),
        )
        reply.redirect(after, method="POST")
        log.info("Twilio call %s for %s: session %s", call_sid, tenant, sid)
        return Response(str(reply), media_type="application/xml")

    async def after(self, request: Request, tenant: str) -> Response:
        """Where Twilio goes once the stream closed: transfer or hang up."""
        _, token = self._settings(tenant)
        form = await self._signed_form(request, token)
        session_id = request.query_params.get("session_id", "")
        meta = await self.store.meta(session_id) if session_id else None
        call = ((meta or {}).get("metadata") or {}).get("telephony") or {}
        if (
            meta is None
            or meta.get("tenant") != tenant
            or call.get("call_id") != form.get("CallSid")
        ):
            raise ApiError(404, "not_found", f"no call {session_id!r} for this tenant")
        outcome = await self.tokens.outcome(session_id)
        reply = VoiceResponse()
        if outcome is not None and outcome.action == "transfer" and outcome.target:
            dial = reply.dial()
            if outcome.target.startswith("sip:"):
                dial.sip(outcome.target)
            else:
                dial.number(outcome.target)
        else:
            reply.hangup()
        return Response(str(reply), media_type="application/xml")

    # -- the stream -------------------------------------------------------------------------

    async def stream(self, websocket: WebSocket, tenant: str) -> None:
        try:
            telephony, token = self._settings(tenant)
            url = public_url(
                self.config, websocket.url, websocket.headers, websocket.url.path, websocket=True
            )
            signature = websocket.headers.get("x-twilio-signature", "")
            if not RequestValidator(token).validate(url, {}, signature):
                log.warning("Twilio stream for %s: bad X-Twilio-Signature", tenant)
                raise ApiError(403, "forbidden", "X-Twilio-Signature does not match")
        except ApiError as error:
            await deny(websocket, error, 4403)
            return
        await websocket.accept()
        # The call runs in its own task: Serve cancels this handler the moment Twilio closes
        # the socket, and the call must still read what Twilio sent before (its ``stop``).
        await asyncio.shield(detached(self._run(websocket, tenant, telephony)))

    async def _run(self, websocket: WebSocket, tenant: str, telephony: TelephonySettings) -> None:
        try:
            await self._serve(websocket, tenant, telephony)
        except (WebSocketDisconnect, PlatformGone):
            pass
        except (wire.TwilioProtocolError, ApiError) as exc:
            log.warning("Twilio stream for %s: %s", tenant, exc)
            with contextlib.suppress(Exception):
                await websocket.close(1011 if isinstance(exc, ApiError) else 1008)
        except Exception:
            log.exception("Twilio stream for %s failed", tenant)
            with contextlib.suppress(Exception):
                await websocket.close(1011)

    async def _serve(self, websocket: WebSocket, tenant: str, telephony: TelephonySettings) -> None:
        stream = wire.TwilioStream()
        async with asyncio.timeout(START_TIMEOUT_S):
            start = await self._start(websocket)
        binding = await self.tokens.redeem(start.custom_parameters.get("token", ""))
        if binding is None or binding["tenant"] != tenant or binding["call_id"] != start.call_sid:
            raise wire.TwilioProtocolError("start carries no valid stream token for this call")
        stream.started(start)
        session_id = binding["session_id"]
        session_id_var.set(session_id)
        meta = await self.store.meta(session_id)
        if meta is None or meta.get("status") in ENDED:
            raise ApiError(404, "not_found", f"session {session_id} is gone")
        spec = SessionSpec.from_dict(meta["spec"])
        platform = _TwilioPlatform(websocket, stream)
        frame = self.config.telephony
        bridge = CallBridge(
            session_id=session_id,
            meta=meta,
            router=self.router,
            hub=self.hub,
            tokens=self.tokens,
            settings=telephony,
            platform=platform,
            outbound=OutboundAudio(frame_ms=frame.twilio_frame_ms, lead_ms=frame.twilio_lead_ms),
            metrics=self.creator.metrics,
            launch=lambda: self.creator.launch(spec),
        )
        runner = asyncio.create_task(bridge.run(), name=f"twilio call {session_id}")
        try:
            await self._receive(websocket, bridge, runner)
        finally:
            if not bridge.ended.is_set():  # the socket went away without a stop
                await bridge.hung_up("stream_lost")
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner

    async def _start(self, websocket: WebSocket) -> wire.Start:
        while True:
            message = wire.parse(await websocket.receive_text())
            if isinstance(message, wire.Start):
                return message
            if not isinstance(message, wire.Connected):
                raise wire.TwilioProtocolError(f"{type(message).__name__} before start")

    async def _receive(
        self, websocket: WebSocket, bridge: CallBridge, runner: asyncio.Task[None]
    ) -> None:
        """Read Twilio's messages until ``stop``, or until the call ends on our side."""
        reader = asyncio.create_task(self._read(websocket, bridge))
        done, _ = await asyncio.wait({reader, runner}, return_when=asyncio.FIRST_COMPLETED)
        if reader not in done:  # the call ended on our side (or its bridge failed)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _read(self, websocket: WebSocket, bridge: CallBridge) -> None:
        # One long-lived reader: a frame already queued is handled without an event-loop turn
        # (a task per frame raced against the bridge cost three turns a frame, which a busy
        # replica could not keep up with at 50 frames a second per call).
        while True:
            message = wire.parse(await websocket.receive_text())
            match message:
                case wire.Media(payload=payload):
                    await bridge.caller_audio(payload)
                case wire.Mark(name=name):
                    await bridge.confirmed(name)
                case wire.Dtmf(digit=digit):
                    await bridge.key_pressed(digit)
                case wire.Stop():
                    await bridge.hung_up("caller_hung_up")
                    return
                case _:
                    raise wire.TwilioProtocolError(f"unexpected {type(message).__name__}")


class _TwilioPlatform:
    """Twilio's side of a bridge: ``media`` + ``mark`` per segment, ``clear``, close."""

    name = "twilio"
    confirms_playback = True

    def __init__(self, websocket: WebSocket, stream: wire.TwilioStream) -> None:
        self.websocket = websocket
        self.stream = stream
        self._lock = asyncio.Lock()

    async def play(self, segment: Segment) -> None:
        async with self._lock, gone_on_failure():
            await self.websocket.send_text(self.stream.media(segment.audio))
            await self.websocket.send_text(self.stream.mark(segment.name))

    async def flush(self) -> None:
        async with self._lock, gone_on_failure():
            await self.websocket.send_text(self.stream.clear())

    async def finish(self, outcome: CallOutcome) -> None:
        """Close the stream: Twilio then runs the ``<Redirect>`` after ``</Connect>``."""
        with contextlib.suppress(Exception):
            async with self._lock:
                await self.websocket.close(1000, outcome.reason[:100])
