"""A phone call's bridge between a platform's media stream and its session (any replica).

The platform side (Twilio, Genesys) is a :class:`Platform`: it plays segments of model audio,
flushes on barge-in and hands the call back when it ends. :class:`CallBridge` does the rest,
the same for every platform:

* caller audio (μ-law, as the session takes it), key presses and hang-ups go to the session's
  actor over the router's media channel, held while the session starts;
* the session's events come from Redis: model audio is paced out through
  :class:`~s2s.telephony.outbound.OutboundAudio`; the caller speaking over it
  (``speech_started`` / ``interrupted``) flushes the platform and reports what was heard, so
  the provider's history is cut where the caller stopped listening;
* playback reports go to the actor as the platform confirms segments (Twilio marks) or as the
  playback clock passes them (Genesys);
* the built-in ``end_call`` / ``transfer_call`` tools are answered here: the outcome is saved,
  the model's goodbye plays out, then the platform hands the call back and the session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

from fastapi import WebSocketDisconnect
from redis.exceptions import RedisError

from s2s.log import logger, session_id_var
from s2s.service.envelope import Envelope
from s2s.service.metrics import Metrics
from s2s.service.state import ENDED
from s2s.service.subscribe import SubscriptionHub
from s2s.service.telephony_config import TelephonySettings
from s2s.telephony.outbound import OutboundAudio, Played, Segment

from ..errors import ApiError
from ..router import SessionRouter
from .calls import END_CALL, TRANSFER_CALL, CallOutcome, CallTokens, decide

__all__ = ["CallBridge", "Platform", "PlatformGone", "detached", "gone_on_failure"]

log = logger.getChild("telephony")

#: The longest a goodbye may take to arrive and play before the call is handed back anyway.
FAREWELL_S = 20.0
#: Playback reports from the clock (platforms without acknowledgements) at most this often.
CLOCK_REPORT_S = 0.2
#: Caller audio kept while the session starts (30 s of μ-law); a start that takes
#: longer fails the call rather than grow without bound.
MAX_EARLY_BYTES = 30 * 8_000
#: A lost event subscription is retried this often, for at most this long.
EVENTS_RETRY_S = 0.5
EVENTS_GIVE_UP_S = 30.0
#: Calls running or being ended (strong references: their handlers may be cancelled).
_CLOSING: set[asyncio.Task[None]] = set()


class PlatformGone(Exception):
    """The platform's socket is gone: the call ends (as lost, unless it already ended)."""


@contextlib.asynccontextmanager
async def gone_on_failure() -> AsyncIterator[None]:
    """Turn a send on a socket the platform closed into :class:`PlatformGone`."""
    try:
        yield
    except (OSError, RuntimeError, WebSocketDisconnect) as exc:
        raise PlatformGone(repr(exc)) from exc


def detached(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``coro`` in a task of its own, kept until it ends: a call outlives the cancelled
    handler of its socket (Serve cancels it as soon as the platform disconnects)."""
    task = asyncio.get_running_loop().create_task(coro)
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
    return task


class Platform(Protocol):
    """What a phone platform's stream does for the bridge."""

    name: str
    confirms_playback: bool
    """True when the platform acknowledges each segment (:meth:`CallBridge.confirmed`)."""

    async def play(self, segment: Segment) -> None: ...

    async def flush(self) -> None:
        """The caller barged in: drop whatever model audio is queued for playback."""

    async def finish(self, outcome: CallOutcome) -> None:
        """The call is over on our side: hand it back to the platform."""


class CallBridge:
    """One live phone call. Create it once the session exists; :meth:`run` until it ends."""

    def __init__(
        self,
        *,
        session_id: str,
        meta: dict[str, Any],
        router: SessionRouter,
        hub: SubscriptionHub,
        tokens: CallTokens,
        settings: TelephonySettings,
        platform: Platform,
        outbound: OutboundAudio,
        metrics: Metrics | None = None,
        launch: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.session_id = session_id
        self.meta = meta
        self.router = router
        self.hub = hub
        self.tokens = tokens
        self.settings = settings
        self.platform = platform
        self.outbound = outbound
        self.metrics = metrics
        self.outcome: CallOutcome | None = None
        self.ended = asyncio.Event()
        self._ending: CallOutcome | None = None
        self._ending_since = 0.0
        self._farewell_spoken = False
        self._wake = asyncio.Event()
        self._last_clock_report = 0.0
        self._closing: asyncio.Task[None] | None = None
        self._launch = launch
        #: Input that arrived before the session's actor was up: sent, in order, once it is.
        self._early: list[tuple[str, Any, float]] = []
        self._early_bytes = 0
        self._ready = launch is None

    # -- from the platform ------------------------------------------------------------------

    async def caller_audio(self, ulaw: bytes) -> None:
        if self.ended.is_set() or not ulaw:
            return
        await self._input("audio", ulaw)

    async def key_pressed(self, digit: str) -> None:
        await self._input("dtmf", {"digit": digit, "to_model": self.settings.dtmf_to_model})

    async def _input(self, kind: str, payload: Any) -> None:
        if self._ready:
            try:
                await self.router.send(self.session_id, self.meta, kind, payload, time.time())
            except Exception:
                if not await self._session_ended():
                    raise
                # The session ended (its end is on its way as an event, with the reason):
                # the caller's audio after that has no conversation to go to.
            return
        size = len(payload) if isinstance(payload, bytes) else 0
        if self._early_bytes + size > MAX_EARLY_BYTES:
            raise ApiError(503, "session_unavailable", "the call's session is not up in time")
        self._early.append((kind, payload, time.time()))
        self._early_bytes += size

    async def _session_ended(self) -> bool:
        if self.ended.is_set():
            return True
        meta = await self.router.store.meta(self.session_id)
        return meta is None or meta.get("status") in ENDED

    async def confirmed(self, name: str) -> None:
        """The platform played segment ``name``."""
        played = self.outbound.confirmed(name)
        if played is not None:
            await self._report(played)
        self._wake.set()

    async def hung_up(self, reason: str = "caller_hung_up") -> None:
        """The caller (or the platform) ended the call."""
        await self._end(self._ending or CallOutcome("hangup", reason), close_platform=False)

    # -- the call ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the session if asked to, then relay its events and pace its audio until the
        call ends."""
        session_id_var.set(self.session_id)
        if not await self._started():
            return
        tasks = [
            asyncio.create_task(self._events(), name=f"call events {self.session_id}"),
            asyncio.create_task(self._pace(), name=f"call audio {self.session_id}"),
            asyncio.create_task(self.ended.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if isinstance(error, PlatformGone):
                    await self.hung_up("stream_lost")
                elif error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._closing is not None:  # the hand-back (closing the platform) completes
                await asyncio.shield(self._closing)

    async def _started(self) -> bool:
        if self._launch is not None:
            try:
                await self._launch()
            except ApiError as exc:
                log.error("call %s: the session did not start: %s", self.session_id, exc.message)
                outcome = CallOutcome("hangup", "start_failed")
                await self._end(outcome, close_platform=True, close_session=False)
                return False
        while self._early:  # input that came while the session started, in order
            kind, payload, at = self._early.pop(0)
            await self.router.send(self.session_id, self.meta, kind, payload, at)
        self._ready = True
        return True

    async def _events(self) -> None:
        """The session's events, in order, once each: a lost subscription (Redis restarting,
        a replica falling behind) resumes after the last event seen; a phone call cannot be
        resumed by its client the way a WebSocket client resumes."""
        seen, failing_since = 0, None
        while True:
            try:
                async with self.hub.subscribe(
                    self.session_id, seen, on_overflow="catch_up"
                ) as envelopes:
                    async for envelope in envelopes:
                        failing_since = None
                        seen = max(seen, envelope.seq)
                        await self._on_event(envelope)
                        if envelope.type == "session_closed":
                            reason = str(envelope.data.get("reason") or "session_ended")
                            outcome = self._ending or CallOutcome("hangup", reason)
                            await self._end(outcome, close_platform=True, close_session=False)
                            return
                return
            except (RedisError, OSError) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > EVENTS_GIVE_UP_S:
                    raise
                log.warning("call %s: events interrupted (%r); resuming", self.session_id, exc)
                await asyncio.sleep(EVENTS_RETRY_S)

    async def _on_event(self, envelope: Envelope) -> None:
        kind = envelope.type
        if kind == "audio_output":
            audio = envelope.audio
            if audio:
                item_id = str(envelope.data.get("item_id") or envelope.data.get("response_id"))
                self.outbound.push(item_id, audio)
                self._wake.set()
        elif kind in ("speech_started", "interrupted"):
            await self._barge_in()
        elif kind == "tool_call":
            call = envelope.data.get("tool_call") or {}
            if call.get("name") in (END_CALL, TRANSFER_CALL):
                await self._call_control(call)
        elif (
            kind == "turn_end"
            and self._ending is not None
            and envelope.data.get("reason") != "tool_calls"
        ):
            self._farewell_spoken = True
            self._wake.set()

    async def _call_control(self, call: dict[str, Any]) -> None:
        try:
            arguments = json.loads(call.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        outcome, result = decide(
            self.settings, str(call["name"]), arguments if isinstance(arguments, dict) else {}
        )
        if outcome is not None and self._ending is None:
            self._ending = outcome
            self._ending_since = time.monotonic()
            await self.tokens.save_outcome(self.session_id, outcome)
            log.info("call %s: %s requested (%s)", self.session_id, call["name"], outcome.target)
        payload = {"call_id": call["id"], "content": result, "is_error": outcome is None}
        await self.router.send(self.session_id, self.meta, "tool_result", payload)
        self._wake.set()

    async def _barge_in(self) -> None:
        now = time.monotonic()
        if not self.outbound.busy(now):
            return
        if not self.platform.confirms_playback:
            self.outbound.estimated_played(now)
        reports = self.outbound.clear()
        await self.platform.flush()
        for played in reports:
            await self._report(played)

    async def _report(self, played: Played) -> None:
        payload = {"item_id": played.item_id, "played_ms": played.played_ms}
        try:
            await self.router.send(self.session_id, self.meta, "playback", payload)
        except Exception as exc:  # a report is advice: never end a call over one
            log.info("call %s: playback report not delivered: %r", self.session_id, exc)

    async def _pace(self) -> None:
        """Send due segments; report clock playback; hand the call back after a goodbye."""
        while not self.ended.is_set():
            now = time.monotonic()
            for segment in self.outbound.take(now):
                await self.platform.play(segment)
            if not self.platform.confirms_playback:
                await self._clock_reports(now)
            if self._ending is not None and self._farewell_done(now):
                await self._end(self._ending, close_platform=True)
                return
            self._wake.clear()
            due = self._next_wakeup(now)
            timeout = None if due is None else max(0.0, due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _next_wakeup(self, now: float) -> float | None:
        """When the pacer has work without being woken (None: only when woken)."""
        times = []
        send_at = self.outbound.next_send_at(now)
        if send_at is not None:
            times.append(send_at)
        clock = not self.platform.confirms_playback
        if clock and self.outbound.busy(now):
            times.append(now + CLOCK_REPORT_S)
        if self._ending is not None:
            times.append(self._ending_since + FAREWELL_S)
            if clock:
                times.append(max(now + 0.01, self.outbound.playing_until()))
        return min(times) if times else None

    def _farewell_done(self, now: float) -> bool:
        if now - self._ending_since >= FAREWELL_S:
            log.warning("call %s: no goodbye within %.0f s; ending", self.session_id, FAREWELL_S)
            return True
        if not self._farewell_spoken:
            return False
        if self.platform.confirms_playback:
            return not self.outbound.busy(now)
        return not self.outbound.queued_bytes and now >= self.outbound.playing_until()

    async def _clock_reports(self, now: float) -> None:
        if now - self._last_clock_report < CLOCK_REPORT_S:
            return
        self._last_clock_report = now
        for played in self.outbound.estimated_played(now):
            await self._report(played)
        self.outbound.settle(now)

    async def _end(
        self, outcome: CallOutcome, *, close_platform: bool, close_session: bool = True
    ) -> None:
        """End the call once. The work runs in its own task: Serve cancels a request's handler
        when the platform hangs up, and a hang-up must still close the session."""
        if self._closing is None:
            self.outcome = outcome
            self.ended.set()
            self._closing = asyncio.create_task(
                self._close(outcome, close_platform, close_session),
                name=f"end call {self.session_id}",
            )
            _CLOSING.add(self._closing)
            self._closing.add_done_callback(_CLOSING.discard)
        await asyncio.shield(self._closing)

    async def _close(self, outcome: CallOutcome, close_platform: bool, close_session: bool) -> None:
        with contextlib.suppress(Exception):
            await self.tokens.save_outcome(self.session_id, outcome)
        if close_session:
            reason = {"hangup": outcome.reason, "transfer": "transferred"}[outcome.action]
            try:
                await self.router.send(self.session_id, self.meta, "close", {"reason": reason})
            except Exception as exc:  # already ended, or unreachable: its lease ends it
                if not await self._session_ended():
                    log.warning("call %s: could not close its session: %r", self.session_id, exc)
        if close_platform:
            await self.platform.finish(outcome)
        if self.metrics is not None:
            self.metrics.inc(
                "s2s_phone_calls_ended", platform=self.platform.name, reason=outcome.reason
            )
        log.info("call %s ended: %s (%s)", self.session_id, outcome.action, outcome.reason)
