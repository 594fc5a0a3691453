"""Sans-I/O OpenAI GPT-Live protocol: JSON frames in, session events and frames out.

Connection lifecycle::

    CONNECTING --connection_made--> STARTING --session.started--> READY --close()--> CLOSED
                 (we send session.start)        (the Outbox releases queued input)

How GPT-Live maps onto s2s events (each point is in ``docs/providers.md``):

* Turns are synthesized (:mod:`.turns`): an assistant turn (``live_resp_N`` / ``live_item_N``)
  opens at the first non-silent output audio or output transcript fragment and ends after
  ``turn_gap_ms`` of model-clock silence (TURN_END "completed"). Digital silence between
  assistant turns is dropped; silence inside a turn is delivered. User fragments are partial
  TRANSCRIPT events, finalised when the user's turn closes (gap, or the model starts a turn).
* ``interrupt()``: nothing on the wire stops the model, so the protocol stops delivering the
  current turn (INTERRUPTED "client") until the model's stretch ends (TURN_END "cancelled"); the
  Conversation keeps only the words the caller heard. Caller speech over the model is reported
  as SPEECH_STARTED; the model decides whether to stop.
* Tools run through Responses delegation: function calls are read only from
  ``response.output_item.done`` with status completed, grouped by delegation id in the
  :class:`~s2s.providers.shared.ToolLedger`; each result is a ``response.item.create`` and exactly
  one ``response.create`` follows once every call of the delegation is answered and its backend
  response is complete.
* The timeline only advances while input flows: after ``idle_after_ms`` without application audio
  the protocol sends ``idle_frame_ms`` silence frames (via :attr:`deadline`).
* ``send_text`` is silent context (``session.thinking.append``): GPT-Live has no user text turn.
* ``error`` events are non-fatal ERROR events, except quota/credits/billing
  (QuotaExceededError), key/account (AuthenticationError) and model (ModelUnavailableError)
  codes, matched on ``code`` or ``type``, and any error before ``session.started``.
"""

from __future__ import annotations

import base64
import enum
import json
from typing import Any

from ...config import Config, ToolResult
from ...conversation import Conversation, Message
from ...errors import ProviderProtocolError, S2SError
from ...events import EventType, Role, SessionEvent
from ...protocol import Continuation, ProviderProtocol
from ..shared import Outbox, ToolLedger, check_open
from . import wire
from .delegation import Delegations
from .failures import classify, closed_error, lost_error
from .history import history_input
from .settings import PROVIDER, LiveSettings
from .turns import AssistantTurn, Fragment, UserTurn, is_punctuation

__all__ = ["OpenAILiveProtocol", "State", "history_input"]

_BYTES_PER_MS = wire.SAMPLE_RATE * 2 / 1000
#: At most this much open caller audio is kept for a new connection (60 s at 24 kHz).
MAX_OPEN_AUDIO_BYTES = 60 * wire.SAMPLE_RATE * 2


class State(enum.Enum):
    CONNECTING = "connecting"
    STARTING = "starting"
    READY = "ready"
    CLOSED = "closed"


class OpenAILiveProtocol(ProviderProtocol):
    """One GPT-Live connection (see the module docstring for the mapping)."""

    provider = PROVIDER
    input_rate = wire.SAMPLE_RATE
    output_rate = wire.SAMPLE_RATE
    audio_formats = frozenset({"pcm16"})

    def __init__(
        self, config: Config, settings: LiveSettings, continuation: Continuation | None = None
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.state = State.CONNECTING
        self.conversation = continuation.conversation.copy() if continuation else Conversation()
        self._outbox = Outbox[str](self._send)
        self.ledger = ToolLedger(PROVIDER, self.conversation)
        self._delegations = Delegations(self.ledger, self.conversation, self._outbox.put)
        if continuation is not None and continuation.pending_audio:
            # Caller audio the previous connection (or provider) had not committed: it goes
            # first, once started, before anything newer.
            pending = continuation.pending_audio[: len(continuation.pending_audio) // 2 * 2]
            step = wire.SAMPLE_RATE * 2 // 10
            for i in range(0, len(pending), step):
                self._outbox.put(wire.audio_append(pending[i : i + step]))
        self.session_id: str | None = None
        self.expires_at: int | None = None
        #: Session seconds OpenAI reports (cumulative; GPT-Live bills by duration).
        self.usage_seconds = 0.0
        self._clock_ms = 0.0
        self._gap_ms = settings.turn_gap_ms
        self._assistant: AssistantTurn | None = None
        self._user: UserTurn | None = None
        self._last_user: tuple[str, str] | None = None
        #: Caller audio since the caller's last turn was understood (transcribed) or the model
        #: began to answer: what another connection must hear again to answer the open turn.
        self._open_audio = bytearray()
        # Turn ids continue across connections so a call's history never holds one id twice.
        self._turns = int(continuation.state.get("turns", 0)) if continuation else 0
        self._closed_reason: str | None = None
        self._next_silence_at: float | None = None
        self._silence = bytes(int(wire.SAMPLE_RATE * settings.idle_frame_ms / 1000) * 2)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def idle(self) -> bool:
        return self._assistant is None and not self.ledger.waiting

    @property
    def deadline(self) -> float | None:
        return self._next_silence_at if self.state is State.READY else None

    def timer_expired(self, now: float) -> None:
        due = self._next_silence_at
        if self.state is not State.READY or due is None or now < due:
            return
        self._send(wire.audio_append(self._silence))
        frame_s = self.settings.idle_frame_ms / 1000
        # Keep real-time pace; after a long stall start again from now rather than burst.
        self._next_silence_at = due + frame_s if now - due < 0.5 else now + frame_s

    def connection_made(self, now: float) -> None:
        self.state = State.STARTING
        session = self.settings.session_config(history_input(self.conversation))
        self._send(wire.session_start(session, "s2s_start"))

    def close(self, now: float) -> None:
        if self.state is State.READY:
            self._send(wire.session_close())
        self.state = State.CLOSED
        self._outbox.close()

    def continuation(self, reason: str) -> Continuation:
        conversation = self.conversation.copy()
        pending = bytes(self._open_audio)
        if not pending and self._user is not None and self._user.text:
            conversation.append(Message(Role.USER, self._user.text, self._user.item_id))
        turn = self._assistant
        if turn is not None:
            text = turn.heard_text() if turn.cut_at_ms is not None else turn.text
            if text:
                conversation.append(Message(Role.ASSISTANT, text, turn.item_id))
        return Continuation(
            conversation=conversation,
            pending_audio=pending,
            state={"turns": self._turns},
            reason=reason,
        )

    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        was_closing = self.state is State.CLOSED
        self.state = State.CLOSED
        self._next_silence_at = None
        if self.failure is not None:
            return self.failure
        return lost_error(self._closed_reason, code, reason, closing=was_closing)

    # -- application input ---------------------------------------------------------------------

    def send_audio(self, pcm: bytes, now: float) -> None:
        check_open(self.state is State.CLOSED, PROVIDER, "send_audio")
        if not pcm:
            return
        self._open_audio += pcm
        if len(self._open_audio) > MAX_OPEN_AUDIO_BYTES:
            del self._open_audio[: len(self._open_audio) - MAX_OPEN_AUDIO_BYTES]
        self._outbox.put(wire.audio_append(pcm))
        if self.state is State.READY:
            self._next_silence_at = now + self.settings.idle_after_ms / 1000

    def send_text(self, text: str, now: float) -> None:
        """Silent context (``session.thinking.append``): GPT-Live has no user text turn; the
        model takes it into account when it next decides to speak."""
        check_open(self.state is State.CLOSED, PROVIDER, "send_text")
        self.conversation.append(Message(Role.USER, text))
        self._outbox.put(wire.context_append("thinking", text))

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        check_open(self.state is State.CLOSED, PROVIDER, "send_tool_result")
        self._delegations.answer(result)

    def interrupt(self, now: float) -> None:
        check_open(self.state is State.CLOSED, PROVIDER, "interrupt")
        turn = self._assistant
        if turn is None or turn.cut_at_ms is not None:
            return
        turn.cut_at_ms = turn.heard_until_ms()
        self._emit(
            SessionEvent(
                EventType.INTERRUPTED,
                reason="client",
                response_id=turn.response_id,
                item_id=turn.item_id,
                at=now,
            )
        )

    def end_turn(self, now: float) -> None:
        """No-op: the model decides when the caller has finished."""
        check_open(self.state is State.CLOSED, PROVIDER, "end_turn")

    def report_playback(self, item_id: str, played_ms: int) -> None:
        turn = self._assistant
        if turn is not None and turn.item_id == item_id:
            turn.reported_ms = float(played_ms)

    # -- provider events -----------------------------------------------------------------------

    def receive_data(self, data: str | bytes, now: float) -> None:
        try:
            ev = json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError(
                f"{PROVIDER}: a frame is not JSON: {exc}", provider=PROVIDER
            ) from exc
        match ev.get("type"):
            case "session.output_audio.delta":
                self._output_audio(_b64(ev.get("delta", "")), now)
            case "session.output_transcript.delta":
                self._assistant_fragment(_fragment(ev), now)
            case "session.input_transcript.delta":
                self._user_fragment(_fragment(ev), now)
            case "response.event":
                event = ev.get("event") or {}
                if event.get("type") == "error":  # a backend failure
                    self._error(event.get("error") or event, now)
                for made in self._delegations.on_event(ev.get("delegation_id"), event, now):
                    self._emit(made)
            case "session.started":
                self._started(ev.get("session") or {}, now)
            case "session.usage.updated":
                self.usage_seconds = float((ev.get("usage") or {}).get("seconds") or 0.0)
            case "session.closed":
                self._session_closed(ev, now)
            case "error":
                self._error(ev.get("error") or {}, now)
            case _:
                pass  # acknowledgements, delegation.created, info: nothing to act on

    def _started(self, session: dict[str, Any], now: float) -> None:
        if self.state is not State.STARTING:
            return
        self.state = State.READY
        self.session_id = session.get("id")
        self.expires_at = session.get("expires_at")
        self._outbox.open()
        self._next_silence_at = now + self.settings.idle_after_ms / 1000

    # -- turns -----------------------------------------------------------------------------------

    def _output_audio(self, pcm: bytes, now: float) -> None:
        start = self._clock_ms
        self._clock_ms = end = start + len(pcm) / _BYTES_PER_MS
        turn = self._assistant
        if pcm.strip(b"\x00"):
            if turn is None:
                turn = self._open_assistant(start, now)
            turn.last_voiced_ms = end
        if turn is not None and turn.cut_at_ms is None:
            if turn.audio_from_ms is None:
                turn.audio_from_ms = start
            turn.delivered_to_ms = end
            self._emit(
                SessionEvent(
                    EventType.AUDIO_OUTPUT,
                    audio=pcm,
                    sample_rate=self.output_rate,
                    response_id=turn.response_id,
                    item_id=turn.item_id,
                    at=now,
                )
            )
        self._check_gaps(now)

    def _check_gaps(self, now: float) -> None:
        turn = self._assistant
        if turn is not None and self._clock_ms - turn.last_voiced_ms > self._gap_ms:
            self._close_assistant(now)
        if self._user is not None and self._clock_ms - self._user.last_end_ms > self._gap_ms:
            self._close_user(now)

    def _new_ids(self) -> tuple[str, str]:
        self._turns += 1
        return f"live_resp_{self._turns}", f"live_item_{self._turns}"

    def _open_assistant(self, start_ms: float, now: float) -> AssistantTurn:
        if self._user is not None:
            self._close_user(now)
        self._open_audio.clear()  # the model is answering what it heard
        response_id, item_id = self._new_ids()
        turn = self._assistant = AssistantTurn(response_id, item_id, last_voiced_ms=start_ms)
        self._emit(
            SessionEvent(
                EventType.RESPONSE_STARTED, response_id=response_id, item_id=item_id, at=now
            )
        )
        return turn

    def _close_assistant(self, now: float) -> None:
        turn, self._assistant = self._assistant, None
        if turn is None:
            return
        cut = turn.cut_at_ms is not None
        text = turn.heard_text() if cut else turn.text
        if text:
            self.conversation.append(Message(Role.ASSISTANT, text, turn.item_id))
        if not cut and text:
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=text,
                    role=Role.ASSISTANT,
                    final=True,
                    response_id=turn.response_id,
                    item_id=turn.item_id,
                    at=now,
                )
            )
        self._emit(
            SessionEvent(
                EventType.TURN_END,
                reason="cancelled" if cut else "completed",
                response_id=turn.response_id,
                item_id=turn.item_id,
                at=now,
                data={"heard_text": text} if cut else {},
            )
        )

    def _assistant_fragment(self, fragment: Fragment, now: float) -> None:
        turn = self._assistant
        if turn is not None and fragment.start_ms - turn.last_voiced_ms > self._gap_ms:
            self._close_assistant(now)
            turn = None
        if turn is None:
            turn = self._open_assistant(fragment.start_ms, now)
        turn.fragments.append(fragment)
        turn.last_voiced_ms = max(turn.last_voiced_ms, fragment.end_ms)
        if turn.cut_at_ms is None:
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=fragment.text,
                    role=Role.ASSISTANT,
                    response_id=turn.response_id,
                    item_id=turn.item_id,
                    at=now,
                )
            )

    def _user_fragment(self, fragment: Fragment, now: float) -> None:
        if self._user is None and is_punctuation(fragment.text) and self._last_user is not None:
            item_id, text = self._last_user  # late closing punctuation of the last turn
            self._last_user = (item_id, text + fragment.text.strip())
            self.conversation.set_text(item_id, self._last_user[1])
            return
        if self._user is not None and fragment.start_ms - self._user.last_end_ms > self._gap_ms:
            self._close_user(now)
        if self._user is None:
            self._user = UserTurn(self._new_ids()[1])
            turn = self._assistant
            if turn is not None and not turn.barged:
                turn.barged = True
                self._emit(
                    SessionEvent(EventType.SPEECH_STARTED, item_id=self._user.item_id, at=now)
                )
        self._user.fragments.append(fragment)
        self._emit(
            SessionEvent(
                EventType.TRANSCRIPT,
                text=fragment.text,
                role=Role.USER,
                item_id=self._user.item_id,
                at=now,
            )
        )

    def _close_user(self, now: float) -> None:
        turn, self._user = self._user, None
        if turn is None or not turn.text:
            return
        self._open_audio.clear()  # understood: its text is history now
        self.conversation.append(Message(Role.USER, turn.text, turn.item_id))
        self._last_user = (turn.item_id, turn.text)
        self._emit(
            SessionEvent(
                EventType.TRANSCRIPT,
                text=turn.text,
                role=Role.USER,
                final=True,
                item_id=turn.item_id,
                at=now,
            )
        )

    # -- errors and the end ------------------------------------------------------------------------

    def _session_closed(self, ev: dict[str, Any], now: float) -> None:
        reason = str(ev.get("reason") or "")
        self._closed_reason = reason
        self.usage_seconds = float((ev.get("usage") or {}).get("seconds") or self.usage_seconds)
        if (failure := closed_error(reason)) is not None:
            self.failure = failure

    def _error(self, err: dict[str, Any], now: float) -> None:
        error, fatal = classify(err, starting=self.state is State.STARTING)
        if not fatal:
            self._emit(SessionEvent(EventType.ERROR, at=now, error=error))
        elif self.failure is None:
            self.failure = error


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProviderProtocolError(
            f"{PROVIDER}: audio delta is not valid base64", provider=PROVIDER
        ) from exc


def _fragment(ev: dict[str, Any]) -> Fragment:
    return Fragment(
        str(ev.get("delta") or ""),
        float(ev.get("start_ms") or 0),
        float(ev.get("end_ms") or 0),
    )
