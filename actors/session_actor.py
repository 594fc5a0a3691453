"""One Ray actor per live call: it owns the provider session and everything about the call.

The actor

* opens the ``s2s`` session (continuing a saved one when it replaces an actor that died),
* takes the caller's input from ingress replicas over its media channel (in order, each input
  position once, acknowledged back to the replica),
* publishes every event as a versioned envelope (replay log + pub/sub, see ``s2s.service``),
* sends tool calls to the pool that serves the tool and applies each result exactly once
  (:mod:`.tool_calls`),
* saves the conversation state a replacement would need, keeps a lease in the live-session
  registry, closes the call after ``idle_timeout_s`` without caller input or at
  ``max_duration_s``, and frees its name when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Coroutine
from typing import Any

import ray

import s2s
from s2s.audio.formats import duration_ms
from s2s.errors import InvalidInputError, S2SError, SessionClosedError
from s2s.events import EventType, SessionEvent
from s2s.log import configure_process_logging, logger, session_id_var
from s2s.service.config import ServiceConfig
from s2s.service.eventlog import EventLog, last_seq, read_log
from s2s.service.media import Endpoint, MediaServer
from s2s.service.metrics import Metrics
from s2s.service.redis_client import connect
from s2s.service.state import SessionStore
from s2s.tasks import TaskSet

from .call_reporting import CallReporter, count_event
from .provider_health import Down, account_failure, choose_start, mark_down
from .spec import SessionSpec, media_host, provider_config
from .tool_calls import ToolLedger

__all__ = ["SessionActor"]

log = logger.getChild("actor")

#: Lease length in the live registry; refreshed at a third of it.
LEASE_S = 30.0
#: Why a client (a phone bridge, say) may close a call; anything else is "closed_by_client".
CLIENT_CLOSE_REASONS = frozenset(
    {"closed_by_client", "caller_hung_up", "end_call", "transferred", "stream_lost"}
)
#: Phone keys (DTMF digits) a key press may name.
DTMF_KEYS = frozenset("0123456789*#ABCD")
#: Inputs (frames: 20 ms of audio each, typically) handled past the last saved state that make
#: the actor save again (after ``snapshot_interval_s``): the replicas keep input until it is
#: saved, so this bounds what they hold (~5 s + the interval), and a long turn is saved too.
SAVE_AFTER_INPUTS = 250


class SessionActor:
    """The body of the session actor (wrapped with ``ray.remote`` in :mod:`actors.handles`)."""

    def __init__(self, session_id: str, spec: dict[str, Any], service: dict[str, Any]) -> None:
        self.session_id = session_id
        self.spec = SessionSpec.from_dict(spec)
        self.service = ServiceConfig.model_validate(service)
        logs = self.service.observability.logs
        configure_process_logging(session_id=session_id, fmt=logs.format, tenant=self.spec.tenant)
        session_id_var.set(session_id)
        self._start_lock = asyncio.Lock()
        self._started: dict[str, Any] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._session: s2s.Session | None = None
        self._log: EventLog | None = None
        self._store: SessionStore | None = None
        self._redis: Any = None
        self._media: MediaServer | None = None
        self._endpoint: Endpoint | None = None
        self._tasks = TaskSet()
        self._tools: ToolLedger | None = None
        self._report: CallReporter | None = None  # turns, call summary, metrics, traces
        self._last_input = time.monotonic()
        self._started_at = time.monotonic()
        self._metrics = Metrics()
        self._snapshot_due: asyncio.TimerHandle | None = None
        self._close_reason = ""
        #: The Ray node this actor runs on ("" outside Ray, e.g. in unit tests).
        self._node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    # -- lifecycle (Ray methods) -----------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Connect the provider (or continue a saved call). Idempotent: racing callers share it.

        Any failure ends the actor (its slot and name freed, the session marked failed) and is
        raised to the caller.
        """
        async with self._start_lock:
            if self._started is not None:
                return self._started
            if self._closing:
                raise SessionClosedError(f"session {self.session_id} has ended")
            try:
                self._started = await self._start()
                # What the start loaded (Ray, the provider client, config) lives as long as the
                # call: keep it out of every later garbage collection, which then only walks
                # the per-frame garbage (as Serve does for its replicas).
                gc.freeze()
            except BaseException as exc:
                error = exc if isinstance(exc, S2SError) else S2SError(f"start failed: {exc!r}")
                if not isinstance(exc, S2SError):
                    log.exception("session start failed")
                await self._end("start_failed", error, status="failed")
                raise
            return self._started

    async def _start(self) -> dict[str, Any]:
        self._redis = connect(self.service.redis)
        self._store = SessionStore(self._redis, ttl_s=self.service.redis.replay_log_ttl_s)
        saved = await self._store.load_state(self.session_id)
        seq = max(int((saved or {}).get("seq", 0)), await last_seq(self._redis, self.session_id))
        self._log = EventLog(
            self._redis,
            self.session_id,
            max_events=self.service.redis.replay_log_events,
            ttl_s=self.service.redis.replay_log_ttl_s,
            start_seq=seq,
        )
        config = provider_config(self.service, self.spec)
        provider, skipped = self.spec.provider, list[Down]()
        if saved is None:  # a new call starts past providers down for its account
            cooldown = self.service.failover_cooldown_s
            provider, config, skipped = await choose_start(self._redis, self.spec, config, cooldown)
        self._report = CallReporter(
            self.session_id,
            self.spec,
            self.service,
            model=config.model or "",
            store=self._store,
            redis=self._redis,
            events=self._log,
            metrics=self._metrics,
            tasks=self._tasks,
            previous=await self._store.meta(self.session_id) if saved is not None else None,
        )
        await self._report.begin()
        engine = s2s.new(provider, config)
        resume = (saved or {}).get("continuation")
        self._session = await engine.start(session_id=self.session_id, resume=resume)
        self._report.started(self._session.provider, self._session.config.model or "")
        self._tools = ToolLedger(
            self.session_id,
            self.spec,
            self.service,
            redis=self._redis,
            session=self._session,
            events=self._log,
            metrics=self._metrics,
            tasks=self._tasks,
            saved=saved or {},
            save_now=self._save_state,
            on_result=self._report.tool_result,
        )
        if saved is not None:  # results the dead actor applied after its last save
            after = int(saved.get("seq", 0))
            await self._tools.reconcile(await read_log(self._redis, self.session_id, after))
        self._media = MediaServer(
            self._on_media,
            media_host(self.service),
            position=int((saved or {}).get("input_position", 0)),
            still_current=self._still_current,
            superseded=self._retire,
        )
        self._endpoint = await self._media.start()
        await self._store.claim(self.session_id, self._endpoint.token)
        self._log.publish(
            "session_started",
            {
                "provider": provider,
                "resumed": saved is not None,
                "sample_rate": self.spec.config["sample_rate"],
                "audio_format": self.spec.config.get("audio_format", "pcm16"),
                # a phone call says where it came from: {platform, call_id, from, to}
                **(
                    {"telephony": self.spec.metadata["telephony"]}
                    if "telephony" in self.spec.metadata
                    else {}
                ),
            },
        )
        for mark in skipped:
            self._log.publish("provider_skipped", {**mark.to_dict(), "to": provider})
            self._metrics.inc("s2s_provider_skips", provider=mark.provider, code=mark.code)
        await self._store.update(
            self.session_id, status="live", actor=ray_actor_name(self.session_id)
        )
        await self._lease()
        self._metrics.inc("s2s_sessions_started", provider=provider)
        for name, coro in (
            ("event pump", self._pump_events()),
            ("tool-result reader", self._tools.read(lambda: self._closing)),
            ("housekeeping", self._housekeeping()),
        ):
            self._tasks.spawn(self._supervised(name, coro))
        log.info(
            "session actor started (%s%s)",
            provider,
            ", resumed from saved state" if saved else "",
        )
        return {
            "session_id": self.session_id,
            "media": self._endpoint.to_dict(),
            "resumed": saved is not None,
            "seq": self._log.seq,
        }

    async def _supervised(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        """Run one of the call's loops; an unexpected failure is logged (with the session id)
        and ends the call with a reason in ``session_closed``, never a silent call."""
        try:
            await loop
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the session's %s failed; ending the call", name)
            if not self._closing:
                failure = S2SError(f"the session's {name} failed: {type(exc).__name__}")
                await self._end("internal_error", failure)

    async def _still_current(self) -> bool:
        """Whether this actor still owns the call (no ingress revoked it to replace it)."""
        assert self._store is not None
        owner = await self._store.owner(self.session_id)
        return owner is None or self._endpoint is None or owner == self._endpoint.token

    async def _retire(self) -> None:
        """A replacement has taken the call (this actor was frozen meanwhile): stop without a
        word, so nothing it does now reaches the call (no events, no release of its slot)."""
        if self._closing:
            return
        self._closing = True
        self._close_reason = "superseded"
        log.warning("session actor superseded by a replacement; exiting quietly")
        if self._log is not None:
            self._log.silence()
        if self._report is not None:
            self._report.silence()
        if self._media is not None:
            await self._media.close()
        self._tasks.cancel(spare_current=True)
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
        self._closed.set()
        _exit_actor()

    async def _lease(self) -> None:
        assert self._store is not None
        endpoint = None
        if self._endpoint is not None:
            endpoint = {**self._endpoint.to_dict(), "node_id": self._node_id}
        await self._store.lease(self.session_id, LEASE_S, endpoint, tenant=self.spec.tenant)

    async def media_endpoint(self) -> dict[str, Any]:
        if self._closing:
            raise SessionClosedError(f"session {self.session_id} has ended")
        if self._endpoint is None:
            await self.start()
        assert self._endpoint is not None
        return self._endpoint.to_dict()

    async def info(self) -> dict[str, Any]:
        session = self._session
        return {
            "session_id": self.session_id,
            "provider": session.provider if session is not None else self.spec.provider,
            "status": "closing" if self._closing else ("live" if session else "starting"),
            "seq": self._log.seq if self._log else 0,
            "duration_s": round(time.monotonic() - self._started_at, 1),
            "idle_s": round(time.monotonic() - self._last_input, 1),
            "pending_tool_calls": sorted(self._tools.pending) if self._tools else [],
            "input_position": self._media.position if self._media else 0,
            "pid": os.getpid(),
            "node_id": self._node_id,
            "audio_in_s": round(session.stats.audio_in_ms / 1000, 2) if session else 0.0,
            "audio_out_s": round(session.stats.audio_out_ms / 1000, 2) if session else 0.0,
            "resumptions": session.stats.resumptions if session else 0,
        }

    async def close(self, reason: str = "closed_by_client") -> dict[str, Any]:
        """End the call, publish ``session_closed``, release the name."""
        await self._end(reason, None)
        return {"session_id": self.session_id, "status": "closed", "reason": self._close_reason}

    async def ping(self) -> bool:
        return not self._closing

    # -- caller input ------------------------------------------------------------------------------

    async def _on_media(self, kind: str, payload: Any, sent_at: float) -> None:
        session = self._session
        if session is None or self._closing:
            return
        self._last_input = time.monotonic()
        media = self._media
        if media is not None and media.position - media.durable >= SAVE_AFTER_INPUTS:
            self._save_soon()  # bounds what the replicas keep for a replacement
        try:
            if kind == "audio":
                await session.send_audio(payload)
                config = session.config
                seconds = duration_ms(len(payload), config.sample_rate, config.audio_format) / 1000
                self._metrics.inc("s2s_audio_in_seconds", seconds, provider=self.spec.provider)
                if sent_at:
                    self._metrics.observe(
                        "s2s_added_latency_seconds", max(0.0, time.time() - sent_at), direction="in"
                    )
            elif kind == "text":
                await session.send_text(payload)
                if self._report is not None:
                    self._report.text_sent()
            elif kind == "interrupt":
                await session.interrupt()
            elif kind == "end_turn":
                await session.end_turn()
            elif kind == "playback":
                session.report_playback(payload["item_id"], payload["played_ms"])
            elif kind == "tool_result":
                assert self._tools is not None
                await self._tools.apply(
                    str(payload["call_id"]),
                    str(payload["content"]),
                    bool(payload.get("is_error", False)),
                    source="client",
                )
            elif kind == "dtmf":
                await self._key_pressed(payload)
            elif kind == "close":
                reason = (payload or {}).get("reason") if isinstance(payload, dict) else None
                if reason not in CLIENT_CLOSE_REASONS:
                    reason = "closed_by_client"
                self._tasks.spawn(self._end(reason, None))
            else:
                raise InvalidInputError(f"unknown input kind {kind!r}")
        except InvalidInputError as exc:  # the caller's mistake: tell them, keep the call
            self._publish_error(exc)
        except (KeyError, TypeError) as exc:
            self._publish_error(InvalidInputError(f"malformed {kind} message: missing {exc}"))
        except SessionClosedError:
            pass

    async def _key_pressed(self, payload: dict[str, Any]) -> None:
        """A phone key press: an event for subscribers, and text for the model if asked."""
        digit = str(payload["digit"])
        if len(digit) != 1 or digit not in DTMF_KEYS:
            raise InvalidInputError(f"dtmf digit {digit!r} is not a phone key")
        assert self._log is not None and self._session is not None
        self._log.publish("dtmf", {"digit": digit})
        if payload.get("to_model"):
            await self._session.send_text(f"(The caller pressed {digit} on the phone keypad.)")

    def _publish_error(self, error: S2SError) -> None:
        if self._log is not None:
            self._log.publish_event(SessionEvent(EventType.ERROR, error=error))

    # -- provider output ---------------------------------------------------------------------------

    async def _pump_events(self) -> None:
        assert self._session is not None and self._log is not None
        try:
            async for event in self._session.recv():
                self._log.publish_event(event)
                if self._report is not None:
                    self._report.event(event)
                await self._observe(event)
        except S2SError as exc:
            await self._end("provider_error", exc)
            return
        await self._end(self._close_reason or "session_ended", None)

    async def _observe(self, event: SessionEvent) -> None:
        kind = event.type
        provider = self._session.provider if self._session is not None else self.spec.provider
        count_event(self._metrics, event, provider)
        if kind is EventType.TOOL_CALL and event.tool_call is not None:
            assert self._tools is not None and self._report is not None
            call = event.tool_call
            await self._tools.route(call, self._report.tool_traceparent(call.id))
            self._save_soon()
        elif kind is EventType.TOOL_CALL_CANCELLED and self._tools is not None:
            self._tools.cancelled(event.call_ids)
        elif kind in (EventType.SESSION_RESUMED, EventType.PROVIDER_SWITCHED, EventType.TURN_END):
            if kind is EventType.PROVIDER_SWITCHED and account_failure(event.data.get("error")):
                error = event.data["error"]  # the last failure: its provider's, if named
                failed = str(error.get("provider") or event.data.get("from", ""))
                self._tasks.spawn(self._account_failed(failed, error))
            self._save_soon()

    async def _account_failed(self, provider: str, error: dict[str, Any]) -> None:
        """``provider`` refused this call's account: new calls skip it for a while."""
        if self._redis is not None and provider:
            cooldown = self.service.failover_cooldown_s
            await mark_down(self._redis, self.spec, provider, error, cooldown)

    # -- state, lease, limits ----------------------------------------------------------------------

    def _save_soon(self) -> None:
        if self._snapshot_due is None and not self._closing:
            loop = asyncio.get_running_loop()
            self._snapshot_due = loop.call_later(
                self.service.sessions.snapshot_interval_s,
                lambda: self._tasks.spawn(self._save_state()),
            )

    async def _save_state(self) -> None:
        """Save what a replacement actor needs (also right after every applied tool result)."""
        if self._snapshot_due is not None:
            self._snapshot_due.cancel()
            self._snapshot_due = None
        session, store, event_log = self._session, self._store, self._log
        if session is None or store is None or event_log is None or self._tools is None:
            return
        # The position and the snapshot are taken together (no await between): the snapshot's
        # pending audio (what the provider has not committed yet, the turn in progress) covers
        # exactly the input up to ``position``, so a replacement continuing from this state
        # needs the input after it only, which the replicas keep until told it is durable.
        position = self._media.applied if self._media else 0
        continuation = session.snapshot()
        await store.save_state(
            self.session_id,
            {
                "continuation": continuation.to_dict(),
                "seq": event_log.seq,
                "input_position": position,
                **self._tools.state(),
            },
        )
        if self._media is not None:
            self._media.set_durable(position)

    async def _housekeeping(self) -> None:
        assert self._store is not None and self._redis is not None
        settings = self.service.sessions
        interval = min(LEASE_S / 3, settings.idle_timeout_s / 4, 5.0)
        while not self._closing:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if now - self._last_input > settings.idle_timeout_s:
                self._tasks.spawn(self._end("idle_timeout", None))
                return
            if now - self._started_at > self._max_duration_s:
                self._tasks.spawn(self._end("max_duration", None))
                return
            try:
                if not await self._still_current():
                    self._tasks.spawn(self._retire())
                    return
                await self._lease()
                await self._metrics.flush(self._redis)
            except Exception as exc:  # Redis hiccup: the next round renews the lease
                log.warning("lease renewal failed: %s", exc)

    @property
    def _max_duration_s(self) -> float:
        limit = self.service.sessions.max_duration_s
        return min(limit, self.spec.max_duration_s or limit)

    async def _end(self, reason: str, error: S2SError | None, status: str = "closed") -> None:
        """Close everything once; the last step frees the actor's name."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._close_reason = reason
        log.info("session ending: %s%s", reason, f" ({error})" if error else "")
        if self._snapshot_due is not None:
            self._snapshot_due.cancel()
        if self._media is not None:
            await self._media.close(reason)
        if self._session is not None:
            await self._session.close()
        self._tasks.cancel(spare_current=True)
        if self._report is not None:
            self._report.ended(reason, error)  # the open turn's envelope, before session_closed
        try:
            if self._log is not None:
                self._log.publish(
                    "session_closed",
                    {"reason": reason, "error": error.to_dict() if error else None},
                )
                await asyncio.wait_for(self._log.flush(), 5.0)
            if error is not None and account_failure(error):
                session = self._session
                failed = error.provider or (session.provider if session else self.spec.provider)
                await self._account_failed(failed, error.to_dict())
            if self._store is not None:
                await self._store.update(
                    self.session_id, status=status, closed_reason=reason, closed_at=time.time()
                )
                await self._store.release(self.session_id, tenant=self.spec.tenant)
            if self._report is not None:
                await self._report.close()
            self._metrics.inc("s2s_sessions_closed", provider=self.spec.provider, reason=reason)
            if self._redis is not None:
                await self._metrics.flush(self._redis)
                await self._redis.aclose()
        except Exception as exc:
            log.warning("cleanup after close was incomplete: %s", exc)
        self._closed.set()
        asyncio.get_running_loop().call_later(0.2, _exit_actor)


def ray_actor_name(session_id: str) -> str:
    return f"session:{session_id}"


def _exit_actor() -> None:
    """Kill this actor process (releasing its name) once the last call returned."""
    with contextlib.suppress(Exception):
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
