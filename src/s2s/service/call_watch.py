"""Following one call as it happens: its state, its turns and their response latency, its counts.

Pure (no I/O, no clock of its own): the session actor feeds a :class:`CallWatch` every
:class:`~s2s.events.SessionEvent` it publishes, the caller's text input and the tool results it
applies, each with the time it happened (unix seconds); every input returns a :class:`Change`
saying what to publish (the ``turn`` envelope, the call summary), record (metrics) and trace.

**State** (:class:`CallState`), the first that applies: ``ended``; ``starting`` (the provider is
not connected yet); ``reconnecting`` (a replacement actor is continuing the call after its actor
was lost, until its provider connection is up: the library moves a call to a new provider
connection without announcing the start, holding the caller's input meanwhile, and reports it
once done with ``session_resumed``, so a provider resumption shows in ``resumptions``, not as a
state); ``caller_speaking`` (between ``speech_started`` and ``speech_stopped``);
``model_speaking`` (from a response's first audio until that audio has played out at the
caller's side, estimated as real time from its arrival, or a barge-in); ``tool_running`` (a
tool call without a result); else ``listening``.

**Turns.** A turn opens when the caller stops speaking or sends text. Its response latency runs
from then to the first model audio after it (the moment the actor sends that audio to the
caller). A tool call made meanwhile belongs to the turn, whose latency then includes the tool.
Should the caller speak again before any answer audio, the open turn continues and its opening
moves to the caller's last word. A turn completes once the ``turn_end`` of its answer has come
(reason ``completed``, ``cancelled``, ...; ``tool_calls`` keeps it open for the answer that
follows the results) and its audio has played out; at a barge-in (``interrupted``: the caller
spoke, or an interruption came, while the model was speaking); when another turn opens over an
answered one (``superseded``); or when the call ends (``call_ended``).

The records it produces (:class:`CallSummary`, :class:`TurnRecord`, :class:`ToolStat`) and
:class:`SummaryPacer` (one summary per 250 ms per call, the last change always going out) live
in :mod:`.call_records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..events import EventType, SessionEvent
from .call_records import (
    CallState,
    CallSummary,
    Change,
    OpenTurn,
    SummaryPacer,
    ToolStat,
    TurnRecord,
    ms,
)

__all__ = [
    "CallState",
    "CallSummary",
    "CallWatch",
    "Change",
    "SummaryPacer",
    "ToolStat",
    "TurnRecord",
]


_SUMMARY_FIELDS = [name for name in CallSummary.__dataclass_fields__ if name != "ended"]


class CallWatch:
    """One call's state, turns and counts. ``previous``: the summary a lost actor published
    (meta field ``call``), whose counts a replacement carries on."""

    def __init__(
        self,
        session_id: str,
        tenant: str,
        provider: str,
        model: str,
        started_at: float,
        previous: Mapping[str, Any] | None = None,
    ) -> None:
        old = dict(previous or {})
        self.session_id, self.tenant = session_id, tenant
        self.provider, self.model = provider, model
        self.started_at = float(old.get("started_at") or started_at)
        self.turns = int(old.get("turns") or 0)
        self.barge_ins = int(old.get("barge_ins") or 0)
        self.errors = int(old.get("errors") or 0)
        self.last_error: dict[str, str] | None = old.get("last_error")
        self.resumptions = int(old.get("resumptions") or 0)
        self.failovers = int(old.get("failovers") or 0)
        self.first_audio_ms: float | None = old.get("first_audio_ms")
        self.last_response_latency_ms: float | None = old.get("last_response_latency_ms")
        self._phase = CallState.RECONNECTING if previous else CallState.STARTING
        self._caller_speaking = False
        self._responding = False  # the current response has sent audio, no turn_end yet
        self._playback_until = 0.0  # when the model audio sent so far has played out
        self._turn: OpenTurn | None = None
        self._pending: dict[str, tuple[ToolStat, OpenTurn | None]] = {}
        self._state = self.state_at(started_at)

    # -- inputs ------------------------------------------------------------------------------

    def started(self, at: float, provider: str | None = None, model: str | None = None) -> Change:
        """The provider connection is up: the call is live."""
        self.provider, self.model = provider or self.provider, model or self.model
        return self._apply(at, lambda: self._set_phase(CallState.LISTENING))

    def reconnecting(self, at: float) -> Change:
        return self._apply(at, lambda: self._set_phase(CallState.RECONNECTING))

    def text_sent(self, at: float) -> Change:
        """The caller (or a supervisor) sent text: a turn opens."""
        return self._apply(at, lambda: self._open(at))

    def tool_result(
        self, call_id: str, at: float, *, latency_ms: float, worker: str, is_error: bool
    ) -> Change:
        """A tool call's result reached the model."""
        pending = self._pending.pop(call_id, None)
        if pending is None:
            return self._apply(at, lambda: None)
        stat = replace(
            pending[0],
            latency_ms=latency_ms,
            worker=worker,
            is_error=is_error,
            outcome="error" if is_error else "ok",
        )
        if pending[1] is not None:
            pending[1].tools[call_id] = stat
        return self._apply(at, lambda: {"tool_finished": stat})

    def tick(self, at: float) -> Change:
        """Time passed (the model's audio may have played out by now)."""
        return self._apply(at, lambda: None)

    def ended(self, at: float, reason: str, error: Mapping[str, Any] | None = None) -> Change:
        def end() -> dict[str, Any]:
            if error is not None:
                self._error(error)
            done = self._complete("call_ended")
            self._phase = CallState.ENDED
            return {"completed": done}

        return self._apply(at, end)

    def event(self, event: SessionEvent, at: float) -> Change:
        return self._apply(at, lambda: self._on_event(event, at))

    # -- reading -----------------------------------------------------------------------------

    @property
    def state(self) -> CallState:
        return self._state

    def state_at(self, at: float) -> CallState:
        if self._phase is not CallState.LISTENING:
            return self._phase
        if self._caller_speaking:
            return CallState.CALLER_SPEAKING
        if self._responding or at < self._playback_until:
            return CallState.MODEL_SPEAKING
        return CallState.TOOL_RUNNING if self._pending else CallState.LISTENING

    def next_tick(self, at: float) -> float | None:
        """When the state will change without an input (the model's audio plays out): call
        :meth:`tick` then."""
        if self._responding or self._phase is not CallState.LISTENING:
            return None
        return self._playback_until if self._playback_until > at else None

    def summary(self, at: float) -> CallSummary:
        values: dict[str, Any] = {name: getattr(self, name, None) for name in _SUMMARY_FIELDS}
        values |= {"state": self._state.value, "updated_at": at}
        return CallSummary(**values, ended=self._state is CallState.ENDED)

    # -- internals ---------------------------------------------------------------------------

    def _apply(self, at: float, step: Any) -> Change:
        before = self.summary(0.0)
        details = dict(step() or {})
        turn = self._turn
        if turn is not None and turn.ending and at >= self._playback_until:
            details["completed"] = (*details.get("completed", ()), *self._complete(""))
        self._state = self.state_at(at)
        return Change(summary=self.summary(0.0) != before, **details)

    def _set_phase(self, phase: CallState) -> None:
        if self._phase is not CallState.ENDED:
            self._phase = phase

    def _open(self, at: float) -> dict[str, Any]:
        turn = self._turn
        if turn is not None and turn.first_audio_at is None:
            turn.opened_at = at  # the caller added to it before any answer: one turn
            turn.caller_resumed = False
            return {}
        done = self._complete("superseded")
        self.turns += 1
        self._turn = OpenTurn(self.turns, at)
        return {"opened": self.turns, "completed": done}

    def _complete(self, reason: str) -> tuple[TurnRecord, ...]:
        """Complete the open turn: with its answer's reason if that ended, else ``reason``."""
        turn, self._turn = self._turn, None
        return () if turn is None else (turn.record(turn.ending or reason),)

    def _error(self, error: Mapping[str, Any]) -> None:
        self.errors += 1
        code = error.get("code") or error.get("type") or "error"
        self.last_error = {"code": str(code), "message": str(error.get("message", ""))}

    def _barge_in(self, at: float) -> dict[str, Any]:
        self._responding = False
        self._playback_until = at
        self.barge_ins += 1
        turn = self._turn
        if turn is not None and turn.first_audio_at is not None:
            turn.interrupted, turn.ending = True, ""
            return {"barge_in": True, "completed": self._complete("interrupted")}
        return {"barge_in": True}

    def _on_event(self, event: SessionEvent, at: float) -> dict[str, Any] | None:
        kind = event.type
        speaking = self._responding or at < self._playback_until
        if kind is EventType.AUDIO_OUTPUT:
            return self._audio(event, at)
        if kind is EventType.SPEECH_STARTED:
            self._caller_speaking = True
            if self._turn is not None and self._turn.first_audio_at is None:
                self._turn.caller_resumed = True
            return self._barge_in(at) if speaking else None
        if kind is EventType.SPEECH_STOPPED:
            self._caller_speaking = False
            return self._open(at)
        if kind is EventType.INTERRUPTED:
            return self._barge_in(at) if speaking else None
        if kind is EventType.TURN_END:
            self._responding = False
            reason = event.reason or "completed"
            turn = self._turn
            if turn is None or reason == "tool_calls":
                return None
            if turn.first_audio_at is None and turn.caller_resumed:
                return None  # cancelled as the caller went on: the answer comes later
            if turn.first_audio_at is not None and at < self._playback_until:
                turn.ending = reason  # completes once its audio has played out
                return None
            return {"completed": self._complete(reason)}
        if kind is EventType.TOOL_CALL and event.tool_call is not None:
            call = event.tool_call
            stat = ToolStat(call.id, call.name)
            self._pending[call.id] = (stat, self._turn)
            if self._turn is not None:
                self._turn.tools[call.id] = stat
            return {"tool_started": stat}
        if kind is EventType.TOOL_CALL_CANCELLED:
            return self._cancelled(event.call_ids)
        if kind is EventType.ERROR and event.error is not None:
            self._error(event.error.to_dict())
        elif kind is EventType.SESSION_RESUMED:
            self.resumptions += 1
            self._set_phase(CallState.LISTENING)
            return {"resumed": event.reason or ""}
        elif kind is EventType.PROVIDER_SWITCHED:
            self.failovers += 1
            old, self.provider = self.provider, str(event.data.get("to") or self.provider)
            self.model = str(event.data.get("model") or self.model)
            self._set_phase(CallState.LISTENING)
            return {"switched": (str(event.data.get("from") or old), self.provider)}
        return None

    def _audio(self, event: SessionEvent, at: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.first_audio_ms is None:
            self.first_audio_ms = out["first_audio_ms"] = ms(max(0.0, at - self.started_at))
        self._responding = True
        self._playback_until = max(self._playback_until, at) + event.duration_ms / 1000
        turn = self._turn
        if turn is not None and turn.first_audio_at is None:
            turn.first_audio_at = at
            latency = ms(max(0.0, at - turn.opened_at))
            self.last_response_latency_ms = out["response_latency_ms"] = latency
        return out

    def _cancelled(self, call_ids: tuple[str, ...]) -> dict[str, Any] | None:
        finished = None
        for call_id in call_ids:
            pending = self._pending.pop(call_id, None)
            if pending is None:
                continue
            finished = replace(pending[0], outcome="cancelled")
            if pending[1] is not None:
                pending[1].tools[call_id] = finished
        return None if finished is None else {"tool_finished": finished}
