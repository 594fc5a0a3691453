"""The ingress: a Ray Serve deployment with a FastAPI app. Any replica serves any session.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures at runtime,
and Serve re-wraps the methods, so string annotations would not resolve.)

State lives in the session actors and Redis, so a replica only routes: it authenticates the
caller (:mod:`deployments.tenancy`), creates calls (:mod:`deployments.creation`: validation,
admission against the tenant's quotas and the cluster's slots, a bounded start), finds a
session's actor and media channel (:mod:`deployments.router`), and relays the session's
events (:mod:`deployments.streams`).

Routes under ``/v1`` need a tenant's API key (``Authorization: Bearer <key>``, ``X-API-Key``
or, for browsers' WebSockets and EventSource, ``?api_key=``); a session of another tenant is a
404 on every route. Admin keys see every tenant's sessions and reach ``/metrics`` and
``/openapi.json``; metrics keys (for Prometheus) reach ``/metrics`` and nothing else:

* ``POST /v1/sessions``, ``GET /v1/sessions``, ``GET`` / ``DELETE /v1/sessions/{id}``
* ``WS /v1/sessions/{id}/stream?last_seq=N``: binary frames are audio, text frames JSON
  (see :mod:`deployments.api`); reconnecting with ``last_seq`` resumes without loss
* ``POST /v1/sessions/{id}/audio|text|interrupt|playback|tool_results``: for clients without
  WebSockets
* ``GET /v1/sessions/{id}/events``: Server-Sent Events, resumable with ``Last-Event-ID``
* ``GET /v1/calls/feed``: the key's live calls as Server-Sent Events (the console's call list)
* ``GET /console/``: the supervisor console and the browser softphone (static pages, public;
  they hold no data and use the API with the key the user gives them)
* ``GET /healthz`` (public: ok or unhealthy), ``GET /metrics`` (an admin or a metrics key) and
  ``GET /openapi.json`` (admin)
"""

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from ray import serve
from redis.exceptions import RedisError

import s2s
from s2s.log import configure_process_logging, logger
from s2s.service.config import ServiceConfig
from s2s.service.metrics import Metrics
from s2s.service.redis_client import connect
from s2s.service.state import ENDED, SessionStore
from s2s.service.subscribe import SubscriptionHub
from s2s.tools.registry import ToolRegistry, pool_registries

from .admission import Admission
from .api import (
    CONTROL,
)
from .calls_feed import CallsFeed
from .console import console_file, redirect
from .creation import SessionCreator
from .errors import ApiError, describe
from .node_gauges import scrape
from .router import SessionRouter
from .serve_drain import replica_draining
from .streams import StreamRelay
from .telephony.calls import CallTokens
from .telephony.genesys import GenesysGateway
from .telephony.twilio import TwilioGateway
from .tenancy import Authenticator, Principal
from .web import (
    CLOSE_RESTARTING,
    SESSION_ID,
    audio_format,
    close_code_for,
    deny,
    media_input,
    public_meta,
    read_body,
    resume_position,
)

__all__ = ["Ingress", "app"]

log = logger.getChild("ingress")

#: How often a replica checks whether Serve has begun stopping it.
DRAIN_POLL_S = 0.5
RESTARTING_REASON = "server restarting: reconnect and resume"

app = FastAPI(
    title="s2s",
    version=s2s.__version__,
    description="Speech-to-speech sessions for contact-centre backends.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.exception_handler(ApiError)
async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


@app.exception_handler(RedisError)
async def _redis_unavailable(request: Request, exc: RedisError) -> JSONResponse:
    log.warning("%s %s: Redis failed: %r", request.method, request.url.path, exc)
    error = ApiError(503, "unavailable", "the service's store is unavailable", retry_after=2)
    return JSONResponse(error.body(), status_code=503, headers=error.headers())


@app.exception_handler(RequestValidationError)
async def _bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(ApiError(400, "invalid_request", describe(exc)).body(), status_code=400)


# Helpers above sit before the class on purpose: Serve captures the class when the decorator
# runs, and names defined after it would not exist for the replicas.
@serve.deployment(name="Ingress")
@serve.ingress(app)
class Ingress:
    """Routes calls to their session actors. Configured from the service config (a dict)."""

    def __init__(self, service: dict[str, Any]) -> None:
        configure_process_logging()
        self.config = ServiceConfig.model_validate(service)
        if self.config.redis.url == "embedded":
            raise s2s.ConfigurationError("the ingress needs a real redis.url, not 'embedded'")
        self.auth = Authenticator(self.config)
        self.redis = connect(self.config.redis)
        self.store = SessionStore(self.redis, ttl_s=self.config.redis.replay_log_ttl_s)
        self.admission = Admission(self.redis)
        self.router = SessionRouter(self.config, self.store)
        self.hub = SubscriptionHub(self.redis)
        self.metrics = Metrics()
        self.streams = StreamRelay(self.config, self.router, self.hub, self.metrics)
        self.feed = CallsFeed(self.redis, self.store, keepalive_s=self.config.serve.sse_keepalive_s)
        self.pools, self.tool_owner = pool_registries(
            {name: pool.modules for name, pool in self.config.tool_pools.items()}
        )
        self.tools = ToolRegistry([t for registry in self.pools.values() for t in registry])
        self._flusher: asyncio.Task[None] | None = None
        self._drain_watch: asyncio.Task[None] | None = None
        self.creator = SessionCreator(
            self.config,
            self.auth,
            self.store,
            self.admission,
            self.router,
            self.metrics,
            self.tools,
            self.tool_owner,
        )

        self.tokens = CallTokens(self.redis, self.config.telephony.stream_token_ttl_s)
        parts = (self.config, self.auth, self.creator, self.router, self.hub, self.store)
        self.twilio = TwilioGateway(*parts, self.tokens)
        self.genesys_gateway = GenesysGateway(*parts, self.tokens)

    async def aclose(self) -> None:
        """Drop this replica's channels and Redis connections (the actors keep their calls)."""
        for task in (self._flusher, self._drain_watch):
            if task is not None:
                task.cancel()
        await self.router.aclose()
        await self.hub.close()
        with contextlib.suppress(Exception):
            await self.metrics.flush(self.redis)
        await self.redis.aclose()

    # -- helpers ------------------------------------------------------------------------------

    def _known(self, headers: Any, query: Any) -> Principal:
        self._start_flusher()
        principal = self.auth.authenticate(headers, query)
        if principal is None:
            raise ApiError(401, "unauthorized", "missing or wrong API key")
        return principal

    def _principal(self, headers: Any, query: Any) -> Principal:
        """A tenant's or an admin's key (a metrics key is refused: it reads /metrics only)."""
        principal = self._known(headers, query)
        if principal.metrics_only:
            raise ApiError(403, "forbidden", "a metrics key may read /metrics only")
        return principal

    def _auth(self, request: Request) -> Principal:
        return self._principal(request.headers, request.query_params)

    def _admin(self, request: Request) -> Principal:
        principal = self._auth(request)
        if not principal.admin:
            raise ApiError(403, "forbidden", "this route needs an admin key")
        return principal

    def _metrics_reader(self, request: Request) -> Principal:
        principal = self._known(request.headers, request.query_params)
        if not principal.reads_metrics:
            raise ApiError(403, "forbidden", "this route needs a metrics or an admin key")
        return principal

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_metrics())
        if self._drain_watch is None or self._drain_watch.done():
            self._drain_watch = asyncio.get_running_loop().create_task(self._watch_drain())

    async def _watch_drain(self) -> None:
        """Once Serve begins stopping this replica, close its stream sockets with 1012 so the
        clients reconnect to another replica and resume at once (not after the grace period)."""
        while not replica_draining():  # noqa: ASYNC110 - a flag Serve sets, no event to wait on
            await asyncio.sleep(DRAIN_POLL_S)
        log.warning(
            "this replica is stopping; telling %d stream client(s) to reconnect",
            self.streams.open_sockets,
        )
        while True:  # sockets opened meanwhile (routed before the stop) go the same way
            with contextlib.suppress(Exception):
                await self.streams.close_all(CLOSE_RESTARTING, RESTARTING_REASON)
            await asyncio.sleep(DRAIN_POLL_S)

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                await self.metrics.flush(self.redis)
            except Exception as exc:  # Redis hiccup: the counters wait for the next flush
                log.warning("metrics flush failed: %s", exc)

    async def _owned(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """The session's record if the caller may see it; else 404 (existence stays secret)."""
        if not SESSION_ID.match(session_id):
            raise ApiError(
                400, "invalid_session_id", "a session id is 8-64 letters, digits, '-' or '_'"
            )
        meta = await self.store.meta(session_id)
        if meta is None or not principal.owns(meta.get("tenant")):
            raise ApiError(404, "not_found", f"no session {session_id!r}")
        return meta

    # -- sessions -----------------------------------------------------------------------------

    @app.post("/v1/sessions", status_code=201)
    async def create_session(self, request: Request) -> JSONResponse:
        return await self.creator.create(self._auth(request), request)

    @app.get("/v1/sessions")
    async def list_sessions(self, request: Request) -> JSONResponse:
        principal = self._auth(request)
        ids = await self.store.live(None if principal.admin else principal.tenant)
        metas = await asyncio.gather(*(self.store.meta(sid) for sid in ids))
        return JSONResponse(
            {
                "sessions": [
                    public_meta(m)
                    for m in metas
                    if m is not None and principal.owns(m.get("tenant"))
                ]
            }
        )

    @app.get("/v1/sessions/{session_id}")
    async def get_session(self, session_id: str, request: Request) -> JSONResponse:
        principal = self._auth(request)
        meta = public_meta(await self._owned(principal, session_id))
        if meta.get("status") not in ENDED:
            with contextlib.suppress(Exception):
                handle = await self.router.lookup(session_id)
                if handle is not None:
                    meta["live"] = await self.router.call(handle, "info", within=5.0)
        return JSONResponse(meta)

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(self, session_id: str, request: Request) -> JSONResponse:
        principal = self._auth(request)
        meta = await self._owned(principal, session_id)
        handle = await self.router.lookup(session_id)
        await self.router.forget(session_id)
        if handle is None:
            outside = await self.router.outside_channel(session_id)
            if outside is not None:  # the actor is on another cluster: ask it to end the call
                await outside.send("close")
                await outside.close()
                return JSONResponse(
                    {"session_id": session_id, "status": "closing", "reason": "closed_by_client"}
                )
            return JSONResponse(
                {
                    "session_id": session_id,
                    "status": meta.get("status") if meta.get("status") == "failed" else "closed",
                    "reason": meta.get("closed_reason", "closed"),
                }
            )
        try:
            result: dict[str, Any] = await self.router.call(handle, "close", within=15.0)
        except Exception:
            result = {"session_id": session_id, "status": "closed", "reason": "actor_gone"}
        return JSONResponse(result)

    # -- the stream -----------------------------------------------------------------------------

    @app.websocket("/v1/sessions/{session_id}/stream")
    async def stream(self, websocket: WebSocket, session_id: str) -> None:
        try:
            principal = self._principal(websocket.headers, websocket.query_params)
            meta = await self._owned(principal, session_id)
            last_seq = resume_position(websocket.query_params.get("last_seq"), "last_seq")
        except ApiError as error:
            await deny(websocket, error, close_code_for(error.status))
            return
        await websocket.accept()
        await self.streams.run(websocket, session_id, meta, last_seq)

    # -- HTTP alternatives ----------------------------------------------------------------------

    @app.post("/v1/sessions/{session_id}/audio", status_code=202)
    async def push_audio(self, session_id: str, request: Request) -> JSONResponse:
        principal = self._auth(request)
        meta = await self._owned(principal, session_id)
        data = await read_body(request, self.config.serve.max_body_bytes)
        if audio_format(meta) == "pcm16" and len(data) % 2:
            raise ApiError(400, "invalid_audio", f"audio has an odd number of bytes ({len(data)})")
        step = self.config.serve.max_frame_bytes
        received = time.time()
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            await self.router.send(session_id, meta, "audio", chunk, received, confirm=True)
        return JSONResponse({"accepted_bytes": len(data)}, status_code=202)

    @app.post("/v1/sessions/{session_id}/text", status_code=202)
    async def push_text(self, session_id: str, request: Request) -> JSONResponse:
        return await self._http_control(session_id, request, "text")

    @app.post("/v1/sessions/{session_id}/interrupt", status_code=202)
    async def push_interrupt(self, session_id: str, request: Request) -> JSONResponse:
        return await self._http_control(session_id, request, "interrupt")

    @app.post("/v1/sessions/{session_id}/playback", status_code=202)
    async def push_playback(self, session_id: str, request: Request) -> JSONResponse:
        return await self._http_control(session_id, request, "playback")

    @app.post("/v1/sessions/{session_id}/tool_results", status_code=202)
    async def push_tool_result(self, session_id: str, request: Request) -> JSONResponse:
        return await self._http_control(session_id, request, "tool_result")

    async def _http_control(self, session_id: str, request: Request, kind: str) -> JSONResponse:
        principal = self._auth(request)
        meta = await self._owned(principal, session_id)
        body = await read_body(request, self.config.serve.max_control_bytes)
        document: Any = {}
        if body:
            try:
                document = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise ApiError(400, "invalid_request", "the body must be JSON") from exc
            if not isinstance(document, dict):
                raise ApiError(400, "invalid_request", "the body must be a JSON object")
        try:
            message = CONTROL.validate_python({**document, "type": kind})
        except ValidationError as exc:
            raise ApiError(400, "invalid_request", describe(exc)) from exc
        kind, payload = media_input(message)
        await self.router.send(session_id, meta, kind, payload, confirm=True)
        return JSONResponse({"accepted": kind}, status_code=202)

    @app.get("/v1/sessions/{session_id}/events")
    async def events(self, session_id: str, request: Request, audio: bool = True) -> Response:
        principal = self._auth(request)
        await self._owned(principal, session_id)
        raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        after = resume_position(raw, "Last-Event-ID")
        return StreamingResponse(
            self.streams.sse(session_id, after, audio),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/calls/feed")
    async def calls_feed(self, request: Request) -> Response:
        """The live calls the key may see, as Server-Sent Events (``snapshot``, then ``call``)."""
        principal = self._auth(request)
        self.feed.admit()
        return StreamingResponse(
            self.feed.stream(principal),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- the console (static pages; the data comes from the API with the user's key) -----------

    @app.get("/console")
    async def console_root(self) -> Response:
        return redirect()

    @app.get("/console/{name:path}")
    async def console(self, name: str, request: Request) -> Response:
        return console_file(name, request.headers.get("if-none-match"))

    # -- phone calls ----------------------------------------------------------------------------

    @app.post("/v1/telephony/twilio/{tenant}/voice")
    async def twilio_voice(self, tenant: str, request: Request) -> Response:
        self._start_flusher()
        return await self.twilio.voice(request, tenant)

    @app.post("/v1/telephony/twilio/{tenant}/after")
    async def twilio_after(self, tenant: str, request: Request) -> Response:
        return await self.twilio.after(request, tenant)

    @app.websocket("/v1/telephony/twilio/{tenant}/stream")
    async def twilio_stream(self, websocket: WebSocket, tenant: str) -> None:
        await self.twilio.stream(websocket, tenant)

    @app.websocket("/v1/telephony/genesys/{tenant}")
    async def genesys(self, websocket: WebSocket, tenant: str) -> None:
        await self.genesys_gateway.connect(websocket, tenant)

    @app.websocket("/v1/telephony/genesys/{tenant}/{connector}")
    async def genesys_connector(self, websocket: WebSocket, tenant: str, connector: str) -> None:
        """The same, with the Architect action's Connector ID appended (kept with the call)."""
        await self.genesys_gateway.connect(websocket, tenant, connector)

    # -- operations -----------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz(self) -> JSONResponse:
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
        except Exception as exc:
            log.warning("health check: Redis does not answer: %r", exc)
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def prometheus(self, request: Request) -> Response:
        self._metrics_reader(request)
        page = await scrape(self.redis, self.store, self.metrics, self.config.sessions.resource)
        return Response(page, media_type="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    async def openapi(self, request: Request) -> JSONResponse:
        self._admin(request)
        return JSONResponse(app.openapi())
