"""The ingress: a Ray Serve deployment with a FastAPI app. Any replica serves any session.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures at runtime,
and Serve re-wraps the methods, so string annotations would not resolve.)

State lives in the session actors and Redis, so a replica only routes: it finds a session's
actor by name, forwards the caller's audio and control messages over the actor's media channel,
and relays the session's events from Redis (live pub/sub, gaps filled from the replay log).

Routes (all under ``/v1`` need an API key: ``Authorization: Bearer <key>``, ``X-API-Key`` or,
for browsers' WebSockets and EventSource, ``?api_key=``):

* ``POST /v1/sessions``, ``GET /v1/sessions``, ``GET`` / ``DELETE /v1/sessions/{id}``
* ``WS /v1/sessions/{id}/stream?last_seq=N``: binary frames are audio, text frames JSON
  (see :mod:`deployments.api`); reconnecting with ``last_seq`` resumes without loss
* ``POST /v1/sessions/{id}/audio|text|interrupt|playback|tool_results``: for clients without
  WebSockets
* ``GET /v1/sessions/{id}/events``: Server-Sent Events, resumable with ``Last-Event-ID``
* ``GET /healthz``, ``GET /metrics`` (Prometheus, cluster-wide)
"""

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from redis.asyncio import Redis

import s2s
from actors import SessionHandle, SessionSpec, get_or_create, lookup
from s2s.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    ProviderConnectionError,
    S2SError,
)
from s2s.log import logger
from s2s.service import keys as redis_keys
from s2s.service.config import ServiceConfig
from s2s.service.envelope import Envelope
from s2s.service.media import Endpoint, MediaClient
from s2s.service.metrics import Metrics
from s2s.service.metrics_render import render
from s2s.service.state import SessionStore
from s2s.service.subscribe import SubscriptionHub
from s2s.tools.registry import ToolRegistry, pool_registries

from .api import (
    BLOCKED_EXTRA_KEYS,
    CONTROL,
    CreateSession,
    PingMessage,
    PlaybackMessage,
    TextMessage,
    ToolResultMessage,
    audio_frame,
)

__all__ = ["Ingress", "app"]

log = logger.getChild("ingress")

app = FastAPI(
    title="s2s",
    version=s2s.__version__,
    description="Speech-to-speech sessions for contact-centre backends.",
)

#: Close codes on the stream socket.
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@app.exception_handler(ApiError)
async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}},
        status_code=exc.status,
        headers=headers,
    )


def _error_for(exc: BaseException) -> ApiError:
    """An actor-side failure as an HTTP error."""
    cause = exc
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        cause = exc.cause
    if isinstance(cause, AuthenticationError):
        return ApiError(502, "provider_auth", f"the provider refused the credentials: {cause}")
    if isinstance(cause, ConfigurationError | InvalidInputError):
        return ApiError(400, "invalid_session", str(cause))
    if isinstance(cause, S2SError):
        return ApiError(502, "provider_error", str(cause))
    if isinstance(cause, RayActorError):
        return ApiError(503, "session_unavailable", "the session's actor stopped")
    return ApiError(500, "internal", f"{type(cause).__name__}: {cause}")


def _credential(headers: Any, query: Any) -> str:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    return str(headers.get("x-api-key") or query.get("api_key") or "")


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k != "spec"}
    spec = meta.get("spec") or {}
    config = spec.get("config") or {}
    out["sample_rate"] = config.get("sample_rate")
    out["tools"] = [t["name"] for t in config.get("tools", [])]
    return out


async def _client_error(websocket: WebSocket, code: str, message: str) -> None:
    """An error about the client's own message: the connection stays up."""
    await websocket.send_text(
        json.dumps({"type": "error", "error": {"code": code, "message": message}})
    )


async def _deny(websocket: WebSocket, status: int, message: str, close_code: int) -> None:
    """Refuse a WebSocket before accepting it: an HTTP error if the server can, else a close."""
    try:
        await websocket.send_denial_response(
            JSONResponse(
                {
                    "error": {
                        "code": "unauthorized" if status == 401 else "not_found",
                        "message": message,
                    }
                },
                status_code=status,
            )
        )
    except (RuntimeError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await websocket.accept()
            await websocket.close(close_code, message)


# Helpers above sit before the class on purpose: Serve captures the class when the decorator
# runs, and names defined after it would not exist for the replicas.
@serve.deployment(name="Ingress")
@serve.ingress(app)
class Ingress:
    """Routes calls to their session actors. Configured from the service config (a dict)."""

    def __init__(self, service: dict[str, Any]) -> None:
        self.config = ServiceConfig.model_validate(service)
        if self.config.redis.url == "embedded":
            raise ConfigurationError("the ingress needs a real redis.url, not 'embedded'")
        self.api_keys = self.config.auth.keys()
        if self.config.auth.required and not self.api_keys:
            raise ConfigurationError(
                f"auth.required is true but no API keys are configured (auth.api_keys or "
                f"${self.config.auth.api_keys_env})"
            )
        self.redis = Redis.from_url(self.config.redis.url)
        self.store = SessionStore(self.redis, ttl_s=self.config.redis.replay_log_ttl_s)
        self.hub = SubscriptionHub(self.redis)
        self.pools, self.tool_owner = pool_registries(
            {name: pool.modules for name, pool in self.config.tool_pools.items()}
        )
        self.tools = ToolRegistry([t for registry in self.pools.values() for t in registry])
        self.actors: dict[str, SessionHandle] = {}
        self.channels: dict[str, MediaClient] = {}
        self.channel_locks: dict[str, asyncio.Lock] = {}
        self.metrics = Metrics()
        self._flusher: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Drop this replica's channels and Redis connections (the actors keep their calls)."""
        if self._flusher is not None:
            self._flusher.cancel()
        for channel in list(self.channels.values()):
            await channel.close()
        self.channels.clear()
        await self.hub.close()
        with contextlib.suppress(Exception):
            await self.metrics.flush(self.redis)
        await self.redis.aclose()

    # -- helpers ------------------------------------------------------------------------------

    def _check_key(self, headers: Any, query: Any) -> bool:
        if not self.config.auth.required:
            return True
        given = _credential(headers, query)
        return any(secrets.compare_digest(given, key) for key in self.api_keys)

    def _auth(self, request: Request) -> None:
        self._start_flusher()
        if not self._check_key(request.headers, request.query_params):
            raise ApiError(401, "unauthorized", "missing or wrong API key")

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_metrics())

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(5)
            with contextlib.suppress(Exception):
                await self.metrics.flush(self.redis)

    async def _meta(self, session_id: str) -> dict[str, Any]:
        meta = await self.store.meta(session_id)
        if meta is None:
            raise ApiError(404, "not_found", f"no session {session_id!r}")
        return meta

    async def _actor(self, session_id: str) -> SessionHandle:
        """The session's actor; a replacement (continuing the saved call) if the actor died."""
        handle = self.actors.get(session_id) or lookup(session_id, self.config)
        if handle is not None:
            self.actors[session_id] = handle
            return handle
        meta = await self._meta(session_id)
        if meta.get("status") == "closed":
            raise ApiError(
                410,
                "closed",
                f"session {session_id!r} has ended ({meta.get('closed_reason', 'closed')})",
            )
        log.warning(
            "session %s has no actor; starting a replacement from its saved state", session_id
        )
        spec = SessionSpec.from_dict(meta["spec"])
        handle = get_or_create(spec, self.config)
        try:
            await handle.start.remote()
        except Exception as exc:
            raise _error_for(exc) from exc
        self.actors[session_id] = handle
        return handle

    async def _outside_channel(self, session_id: str) -> MediaClient | None:
        """A channel to a live actor this cluster's Ray cannot see, or None.

        During a rollout a reconnecting caller lands on the new cluster while the call's actor
        still runs on the old one. Its media channel, advertised in Redis for as long as its
        lease, is reachable across clusters; starting a replacement instead would give the call
        two actors. An advertisement nobody answers belongs to a dead actor: None.
        """
        if session_id in self.actors:
            return None
        handle = lookup(session_id, self.config)
        if handle is not None:
            self.actors[session_id] = handle
            return None
        media = await self.store.advertised_media(session_id)
        if media is None:
            return None
        endpoint = Endpoint.from_dict(media)
        client = MediaClient(endpoint)
        try:
            await client.connect()
        except ProviderConnectionError:
            log.warning("session %s: its advertised actor does not answer", session_id)
            return None
        log.info(
            "session %s: its actor runs outside this cluster; reached at %s:%d",
            session_id,
            endpoint.host,
            endpoint.port,
        )
        return client

    async def _channel(self, session_id: str) -> MediaClient:
        lock = self.channel_locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            client = self.channels.get(session_id)
            if client is not None and client.connected:
                return client
            outside = await self._outside_channel(session_id)
            if outside is not None:
                self.channels[session_id] = outside
                return outside
            for attempt in range(2):
                handle = await self._actor(session_id)
                try:
                    endpoint = await handle.media_endpoint.remote()
                    client = MediaClient(Endpoint.from_dict(endpoint))
                    await client.connect()
                except (RayActorError, ProviderConnectionError) as exc:
                    self.actors.pop(session_id, None)
                    if attempt:
                        raise _error_for(exc) from exc
                    await asyncio.sleep(0.2)
                    continue
                self.channels[session_id] = client
                return client
        raise ApiError(503, "session_unavailable", "cannot reach the session")

    async def _send(
        self, session_id: str, kind: str, payload: Any = None, received_at: float | None = None
    ) -> None:
        for attempt in range(2):
            channel = await self._channel(session_id)
            try:
                await channel.send(kind, payload, received_at)
                return
            except ProviderConnectionError:
                self.channels.pop(session_id, None)
                self.actors.pop(session_id, None)
                if attempt:
                    raise ApiError(
                        503, "session_unavailable", "the session's channel dropped"
                    ) from None

    def _urls(self, request: Request, session_id: str) -> dict[str, str]:
        base = str(request.base_url).rstrip("/")
        ws_base = "ws" + base[4:] if base.startswith("http") else base
        path = f"/v1/sessions/{session_id}"
        return {
            "url": base + path,
            "stream_url": ws_base + path + "/stream",
            "events_url": base + path + "/events",
            "audio_url": base + path + "/audio",
        }

    # -- sessions -----------------------------------------------------------------------------

    @app.post("/v1/sessions", status_code=201)
    async def create_session(self, request: Request) -> JSONResponse:
        self._auth(request)
        try:
            body = CreateSession.model_validate(await request.json())
        except ValidationError as exc:
            raise ApiError(400, "invalid_request", _describe(exc)) from exc
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "the body must be JSON") from exc
        spec = self._spec(body)
        meta = await self.store.meta(spec.session_id)
        if meta is None:
            await self.store.create(
                spec.session_id,
                {"provider": spec.provider, "spec": spec.to_dict(), "metadata": body.metadata},
            )
        handle = get_or_create(spec, self.config)
        try:
            info = await handle.start.remote()
        except Exception as exc:
            raise _error_for(exc) from exc
        self.actors[spec.session_id] = handle
        return JSONResponse(
            {
                "session_id": spec.session_id,
                "provider": spec.provider,
                "status": "live",
                "sample_rate": spec.config["sample_rate"],
                "resumed": info.get("resumed", False),
                "tools": [t["name"] for t in spec.config["tools"]],
                **self._urls(request, spec.session_id),
            },
            status_code=201,
        )

    def _spec(self, body: CreateSession) -> SessionSpec:
        provider = body.provider or self.config.default_provider
        if provider not in s2s.list_providers():
            raise ApiError(
                400,
                "unknown_provider",
                f"unknown provider {provider!r}; available: {', '.join(s2s.list_providers())}",
            )
        if provider not in self.config.providers:
            raise ApiError(
                400,
                "provider_not_enabled",
                f"provider {provider!r} is not enabled in this service's configuration",
            )
        blocked = sorted(BLOCKED_EXTRA_KEYS & set(body.extra))
        if blocked:
            raise ApiError(
                400,
                "invalid_request",
                f"extra may not set {', '.join(blocked)}: "
                "the service configures credentials and endpoints",
            )
        names = self.tools.names if body.tools is None else body.tools
        unknown = sorted(set(names) - set(self.tools.names))
        if unknown:
            raise ApiError(
                400,
                "unknown_tool",
                f"unknown tool(s) {', '.join(unknown)}; "
                f"available: {', '.join(self.tools.names) or 'none'}",
            )
        try:
            tools = [
                *self.tools.definitions(names),
                *(
                    s2s.ToolDefinition(t.name, t.description, t.parameters)
                    for t in body.client_tools
                ),
            ]
            config = s2s.Config(
                model=body.model,
                voice=body.voice,
                instructions=body.instructions,
                tools=tools,
                sample_rate=body.sample_rate,
                extra=body.extra,
            )
        except s2s.S2SError as exc:
            raise ApiError(400, "invalid_session", str(exc)) from exc
        return SessionSpec(
            session_id=body.session_id or uuid.uuid4().hex,
            provider=provider,
            config=config.to_dict(),
            redis_url=self.config.redis.url,
            tool_pools={name: self.tool_owner[name] for name in names},
            metadata=body.metadata,
        )

    @app.get("/v1/sessions")
    async def list_sessions(self, request: Request) -> JSONResponse:
        self._auth(request)
        ids = await self.store.live()
        metas = await asyncio.gather(*(self.store.meta(sid) for sid in ids))
        return JSONResponse({"sessions": [_public(m) for m in metas if m is not None]})

    @app.get("/v1/sessions/{session_id}")
    async def get_session(self, session_id: str, request: Request) -> JSONResponse:
        self._auth(request)
        meta = _public(await self._meta(session_id))
        handle = lookup(session_id, self.config)
        if handle is not None:
            with contextlib.suppress(Exception):
                meta["live"] = await asyncio.wait_for(handle.info.remote(), 5.0)
        return JSONResponse(meta)

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(self, session_id: str, request: Request) -> JSONResponse:
        self._auth(request)
        meta = await self._meta(session_id)
        handle = lookup(session_id, self.config)
        self.actors.pop(session_id, None)
        channel = self.channels.pop(session_id, None)
        if channel is not None:
            await channel.close()
        if handle is None:
            outside = await self._outside_channel(session_id)
            if outside is not None:  # the actor is on another cluster: ask it to end the call
                await outside.send("close")
                await outside.close()
                return JSONResponse(
                    {"session_id": session_id, "status": "closing", "reason": "closed_by_client"}
                )
            return JSONResponse(
                {
                    "session_id": session_id,
                    "status": "closed",
                    "reason": meta.get("closed_reason", "closed"),
                }
            )
        try:
            result = await handle.close.remote()
        except RayActorError:
            result = {"session_id": session_id, "status": "closed", "reason": "actor_gone"}
        return JSONResponse(result)

    # -- the stream -----------------------------------------------------------------------------

    @app.websocket("/v1/sessions/{session_id}/stream")
    async def stream(self, websocket: WebSocket, session_id: str, last_seq: int = 0) -> None:
        self._start_flusher()
        if not self._check_key(websocket.headers, websocket.query_params):
            await _deny(websocket, 401, "missing or wrong API key", CLOSE_UNAUTHORIZED)
            return
        meta = await self.store.meta(session_id)
        if meta is None:
            await _deny(websocket, 404, f"no session {session_id!r}", CLOSE_NOT_FOUND)
            return
        await websocket.accept()
        ended = meta.get("status") == "closed"
        outbound = asyncio.create_task(self._relay(websocket, session_id, last_seq))
        inbound = None if ended else asyncio.create_task(self._receive(websocket, session_id))
        tasks = [t for t in (outbound, inbound) if t is not None]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("stream of %s failed: %r", session_id, task.exception())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, websocket: WebSocket, session_id: str, last_seq: int) -> None:
        async with self.hub.subscribe(session_id, last_seq) as envelopes:
            async for envelope in envelopes:
                if envelope.type == "audio_output" and envelope.audio is not None:
                    await websocket.send_bytes(
                        audio_frame(envelope.seq, envelope.data.get("item_id"), envelope.audio)
                    )
                else:
                    await websocket.send_text(json.dumps(envelope.to_json(include_audio=False)))
                if envelope.ts:
                    self.metrics.observe(
                        "s2s_added_latency_seconds",
                        max(0.0, time.time() - envelope.ts),
                        direction="out",
                    )
                if envelope.type == "session_closed":
                    await websocket.close(CLOSE_NORMAL, "session closed")
                    return

    async def _receive(self, websocket: WebSocket, session_id: str) -> None:
        limit = self.config.serve.max_frame_bytes
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                if len(data) > limit:
                    await websocket.close(
                        CLOSE_TOO_BIG,
                        f"audio frame of {len(data)} bytes is over the {limit}-byte limit",
                    )
                    return
                if len(data) % 2:
                    await _client_error(
                        websocket,
                        "invalid_audio",
                        f"audio frame has an odd number of bytes ({len(data)}); send PCM16",
                    )
                    continue
                if data:
                    await self._send(session_id, "audio", data, time.time())
                continue
            text = message.get("text")
            if text is not None:
                await self._control(websocket, session_id, text)

    async def _control(self, websocket: WebSocket, session_id: str, text: str) -> None:
        try:
            message = CONTROL.validate_json(text)
        except ValidationError as exc:
            await _client_error(websocket, "invalid_message", _describe(exc))
            return
        match message:
            case PingMessage():
                await websocket.send_text(json.dumps({"type": "pong"}))
            case TextMessage(text=text):
                await self._send(session_id, "text", text)
            case PlaybackMessage(item_id=item_id, played_ms=played_ms):
                await self._send(
                    session_id, "playback", {"item_id": item_id, "played_ms": played_ms}
                )
            case ToolResultMessage(call_id=call_id, content=content, is_error=is_error):
                await self._send(
                    session_id,
                    "tool_result",
                    {"call_id": call_id, "content": content, "is_error": is_error},
                )
            case _:  # interrupt, end_turn, close
                await self._send(session_id, message.type)

    # -- HTTP alternatives ----------------------------------------------------------------------

    @app.post("/v1/sessions/{session_id}/audio", status_code=202)
    async def push_audio(self, session_id: str, request: Request) -> JSONResponse:
        self._auth(request)
        data = await request.body()
        if len(data) % 2:
            raise ApiError(400, "invalid_audio", f"audio has an odd number of bytes ({len(data)})")
        await self._meta(session_id)
        step = self.config.serve.max_frame_bytes
        received = time.time()
        for start in range(0, len(data), step):
            await self._send(session_id, "audio", data[start : start + step], received)
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
        self._auth(request)
        await self._meta(session_id)
        body = await request.body()
        document: dict[str, Any] = {}
        if body:
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise ApiError(400, "invalid_request", "the body must be JSON") from exc
            if not isinstance(parsed, dict):
                raise ApiError(400, "invalid_request", "the body must be a JSON object")
            document = parsed
        try:
            message = CONTROL.validate_python({**document, "type": kind})
        except ValidationError as exc:
            raise ApiError(400, "invalid_request", _describe(exc)) from exc
        payload = message.model_dump(exclude={"type"})
        if kind == "text":
            await self._send(session_id, "text", payload["text"])
        else:
            await self._send(session_id, kind, payload or None)
        return JSONResponse({"accepted": kind}, status_code=202)

    @app.get("/v1/sessions/{session_id}/events")
    async def events(self, session_id: str, request: Request, audio: bool = True) -> Response:
        self._auth(request)
        await self._meta(session_id)
        raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        try:
            after = int(raw or 0)
        except ValueError as exc:
            raise ApiError(
                400, "invalid_request", f"Last-Event-ID {raw!r} is not a number"
            ) from exc
        return StreamingResponse(
            self._sse(session_id, after, audio),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(self, session_id: str, after: int, audio: bool) -> AsyncIterator[str]:
        async with self.hub.subscribe(session_id, after) as envelopes:
            iterator = envelopes.__aiter__()
            yield ": connected\n\n"
            while True:
                try:
                    envelope: Envelope = await asyncio.wait_for(iterator.__anext__(), 15.0)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                except StopAsyncIteration:
                    return
                data = json.dumps(envelope.to_json(include_audio=audio))
                yield f"id: {envelope.seq}\nevent: {envelope.type}\ndata: {data}\n\n"
                if envelope.type == "session_closed":
                    return

    # -- operations -----------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz(self) -> JSONResponse:
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
        except Exception as exc:
            return JSONResponse({"status": "unhealthy", "redis": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def prometheus(self) -> Response:
        await self.metrics.flush(self.redis)
        fields = await self.redis.hgetall(redis_keys.METRICS)
        live = len(await self.store.live())
        return Response(render(fields, live), media_type="text/plain; version=0.0.4")
