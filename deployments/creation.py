"""Creating a session: validate, admit against quotas and capacity, claim the id, start.

Every step that can refuse runs before the next one spends anything: the body and the tenant's
policy are checked (no actor yet), the admission script takes a place atomically, the session
record claims the id (a concurrent create with the same id loses cleanly), and only then is
the actor started, with a bounded wait; a start that fails gives everything back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from actors import SessionSpec
from actors.session_actor import LEASE_S
from s2s.log import logger
from s2s.service.config import ServiceConfig, TenantSettings
from s2s.service.metrics import Metrics
from s2s.service.state import ENDED, SessionStore
from s2s.tools.registry import ToolRegistry

from .admission import Admission
from .api import CreateSession
from .errors import ApiError
from .router import SessionRouter
from .session_requests import build_spec
from .tenancy import Authenticator, Principal
from .web import parse, public_meta, read_body, session_urls

__all__ = ["SessionCreator"]

log = logger.getChild("ingress")


def ray_cluster_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())  # type: ignore[no-untyped-call]


class SessionCreator:
    """The create path of one ingress replica."""

    def __init__(
        self,
        config: ServiceConfig,
        auth: Authenticator,
        store: SessionStore,
        admission: Admission,
        router: SessionRouter,
        metrics: Metrics,
        tools: ToolRegistry,
        tool_owner: dict[str, str],
    ) -> None:
        self.config = config
        self.auth = auth
        self.store = store
        self.admission = admission
        self.router = router
        self.metrics = metrics
        self.tools = tools
        self.tool_owner = tool_owner
        self._capacity: tuple[float, int | None] = (0.0, None)
        self._capacity_lock = asyncio.Lock()

    async def cluster_slots(self) -> int | None:
        """The admission cap: ``sessions.max_sessions``, else the cluster's slots (read from Ray
        at most every 2 s, by one request at a time: a burst must not queue on the GCS)."""
        if self.config.sessions.max_sessions is not None:
            return self.config.sessions.max_sessions
        checked, slots = self._capacity
        if time.monotonic() - checked < 2.0:
            return slots
        async with self._capacity_lock:
            checked, slots = self._capacity
            if time.monotonic() - checked < 2.0:
                return slots
            resource = self.config.sessions.resource
            try:
                total = await self.router.run_blocking(
                    lambda: ray_cluster_resources().get(resource)
                )
            except Exception as exc:
                log.warning("cannot read the cluster's session slots: %s", exc)
                return slots
            slots = None if total is None else int(total)
            self._capacity = (time.monotonic(), slots)
            return slots

    async def create(self, principal: Principal, request: Request) -> JSONResponse:
        """``POST /v1/sessions`` for an authenticated caller."""
        if principal.tenant is None:
            raise ApiError(
                403, "tenant_key_required", "sessions belong to tenants: use a tenant's API key"
            )
        capacity = await self._capacity_left()
        raw = await read_body(request, self.config.serve.max_body_bytes)
        body: CreateSession = parse(CreateSession, raw or b"{}")
        if body.session_id is not None:
            existing = await self._existing(principal, body.session_id, request)
            if existing is not None:
                return existing
        spec, info = await self.start(principal, body, capacity)
        if spec is None:  # a concurrent create with the same id won
            existing = await self._existing(principal, str(body.session_id), request)
            if existing is not None:
                return existing
            raise ApiError(409, "conflict", f"session id {body.session_id!r} is taken")
        return JSONResponse(
            {
                "session_id": spec.session_id,
                "provider": spec.provider,
                "status": "live",
                "sample_rate": spec.config["sample_rate"],
                "resumed": info.get("resumed", False),
                "tools": [t["name"] for t in spec.config["tools"]],
                **session_urls(request, spec.session_id),
            },
            status_code=201,
        )

    async def _capacity_left(self) -> int | None:
        """The admission cap; a 503 at once when the cluster is full (before any parsing)."""
        capacity = await self.cluster_slots()
        if await self.admission.full(capacity):
            self.metrics.inc("s2s_sessions_refused", limit="capacity")
            raise ApiError(503, "at_capacity", "no session slot is free right now", retry_after=2)
        return capacity

    async def admit_call(self, principal: Principal, body: CreateSession) -> SessionSpec:
        """Everything before the actor starts, for a phone call: the spec, admitted against the
        tenant's quotas and the cluster's slots, and claimed in the store. The caller then
        starts it with :meth:`launch` (a phone platform is answered in between, so that a slow
        start never misses its deadline). Refusals are the ApiErrors ``POST /v1/sessions``
        answers with."""
        spec = await self._admit(principal, body, await self._capacity_left())
        if spec is None:
            raise ApiError(409, "conflict", f"session id {body.session_id!r} is taken")
        return spec

    async def launch(self, spec: SessionSpec) -> dict[str, Any]:
        """Start an admitted session's actor; on failure give everything back and raise."""
        try:
            info: dict[str, Any] = await self.router.start(spec)
        except ApiError:
            await self.admission.release(spec.session_id, spec.tenant)
            await self.store.update(spec.session_id, status="failed", closed_reason="start_failed")
            await self.router.forget(spec.session_id)
            raise
        return info

    async def start(
        self, principal: Principal, body: CreateSession, capacity: int | None
    ) -> tuple[SessionSpec | None, dict[str, Any]]:
        """Build, admit, claim and start the session ``body`` asks for: ``(spec, actor info)``,
        or ``(None, {})`` when ``body.session_id`` was taken meanwhile (by anyone)."""
        spec = await self._admit(principal, body, capacity)
        if spec is None:
            return None, {}
        return spec, await self.launch(spec)

    async def _admit(
        self, principal: Principal, body: CreateSession, capacity: int | None
    ) -> SessionSpec | None:
        assert principal.tenant is not None
        tenant = self.auth.tenant(principal.tenant)
        spec = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: build_spec(
                body,
                tenant_name=principal.tenant or "",
                tenant=tenant,
                config=self.config,
                tools=self.tools,
                tool_owner=self.tool_owner,
            ),
        )
        sid = spec.session_id
        refusal = await self.admission.admit(
            sid,
            principal.tenant,
            tenant.quotas,
            capacity=capacity,
            lease_s=self.config.serve.start_timeout_s + LEASE_S,
        )
        if refusal is not None:
            self.metrics.inc("s2s_sessions_refused", limit=refusal.limit)
            raise self._refused(principal.tenant, refusal.limit, refusal.retry_after_s, tenant)
        meta = {
            "provider": spec.provider,
            "tenant": principal.tenant,
            "spec": spec.to_dict(),
            "metadata": body.metadata,
        }
        if not await self.store.create(sid, meta):  # another request took the id meanwhile
            await self.admission.release(sid, principal.tenant)
            return None
        return spec

    async def _existing(
        self, principal: Principal, session_id: str, request: Request
    ) -> JSONResponse | None:
        """A create naming an id that exists: the live session itself if it is the caller's
        (idempotent: the earlier settings stay), else a 409 or 410; None if the id is free."""
        meta = await self.store.meta(session_id)
        if meta is None:
            return None
        if meta.get("tenant") != principal.tenant:
            raise ApiError(409, "conflict", f"session id {session_id!r} is taken")
        if meta.get("status") in ENDED:
            raise ApiError(
                410,
                "closed",
                f"session {session_id!r} has ended ({meta.get('closed_reason', 'closed')}); "
                "a new call needs a new id",
            )
        public = public_meta(meta)
        return JSONResponse(
            {
                "session_id": session_id,
                "provider": public.get("provider"),
                "status": public.get("status"),
                "sample_rate": public["sample_rate"],
                "resumed": False,
                "existing": True,
                "tools": public["tools"],
                **session_urls(request, session_id),
            },
            status_code=200,
        )

    def _refused(
        self, tenant_name: str, limit: str, retry_after: float, tenant: TenantSettings
    ) -> ApiError:
        quotas = tenant.quotas
        if limit == "creates_per_minute":
            return ApiError(
                429,
                "rate_limited",
                f"tenant {tenant_name!r} is over its limit of {quotas.creates_per_minute} "
                "session creations per minute",
                retry_after=retry_after,
            )
        if limit == "max_live_sessions":
            return ApiError(
                429,
                "too_many_sessions",
                f"tenant {tenant_name!r} has its limit of {quotas.max_live_sessions} live sessions",
                retry_after=retry_after,
            )
        return ApiError(
            503, "at_capacity", "no session slot is free right now", retry_after=retry_after
        )
