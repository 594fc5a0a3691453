"""Sans-I/O OpenAI Realtime (GA) protocol: JSON frames in, session events and frames out.

Connection lifecycle::

    CONNECTING --session.created--> CONFIGURING --session.updated--> READY --close()--> CLOSED
                 (we send session.update)        (we replay history, pending audio, queued input)

Rules this module keeps (each one is a failure seen in other frameworks):

* Parallel tool calls of one response get all their outputs, then exactly **one**
  ``response.create``; ``response.create`` is never sent while a response is active, so the server
  never answers ``conversation_already_has_active_response``.
* On barge-in (``speech_started`` while answer audio is still playing) the answer is cut to what
  the caller heard (:mod:`.answers`): the items of a response play one after another on one
  timeline, the playing item is truncated to what was heard of it (deleted at 0 ms), later items
  are deleted, earlier ones left alone; the playhead comes from the application's playback
  reports, else the wall clock. With server VAD the server cancels the response itself, so we
  send no ``response.cancel`` (no self-interruption).
* Caller audio not yet committed by the server is remembered, so a new connection can be given it
  again; with the conversation history this makes a connection switch lose nothing.
* Fatal errors (bad key, bad model, beta header) arrive as an ``error`` event and a close in the
  same millisecond: the error is held and reported with the close code (3000 / 4000).
* Failures no retry can fix (quota, billing, account, model: :mod:`.failures`) set
  :attr:`failure` at once, from an ``error`` event or a failed ``response.done``, so the session
  ends instead of reconnecting into the same failure.
* A ``Config.audio_format="pcmu"`` session speaks ``audio/pcmu`` both ways: caller audio and
  AUDIO_OUTPUT events are G.711 mu-law at 8 kHz (one byte a sample), and every byte count
  (playback, truncation's ``audio_end_ms``, pending audio) is reckoned in it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from ...audio.formats import PCMU_RATE, bytes_per_sample
from ...config import Config, ToolResult
from ...conversation import Conversation, Message
from ...errors import InvalidRequestError, ProviderProtocolError, S2SError
from ...events import EventType, Role, SessionEvent
from ...log import logger
from ...protocol import Continuation, ProviderProtocol
from ..shared import Outbox, check_open
from . import wire
from .answers import AnswerItems
from .caller import CALLER_EVENTS, caller_event
from .failures import HELD_CODES, close_error, event_error, terminal_error
from .history import replay_item
from .lifetime import Lifetime
from .pending_audio import PendingAudio
from .settings import PROVIDER, OpenAISettings
from .tool_calls import ToolCalls
from .turns import turn_end_events

__all__ = ["OpenAIRealtimeProtocol", "State"]

log = logger.getChild(PROVIDER)


class State(enum.Enum):
    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    READY = "ready"
    CLOSED = "closed"


@dataclass(slots=True)
class _Response:
    id: str
    calls: int = 0
    cancel_sent: bool = False


class OpenAIRealtimeProtocol(ProviderProtocol):
    """One OpenAI Realtime connection (see the module docstring for the rules it keeps)."""

    provider = PROVIDER
    #: PCM16 24 kHz by default; a ``pcmu`` session's instances use 8 kHz mu-law both ways.
    input_rate = wire.SAMPLE_RATE
    output_rate = wire.SAMPLE_RATE
    #: Formats this protocol takes and emits itself (see :mod:`s2s.audio.formats`).
    audio_formats = frozenset({"pcm16", "pcmu"})

    def __init__(
        self,
        config: Config,
        settings: OpenAISettings,
        continuation: Continuation | None = None,
    ) -> None:
        super().__init__(config)
        self.settings = settings
        #: The audio format of this connection, both ways: "pcm16" or "pcmu".
        self.audio_format = settings.audio_format
        if self.audio_format == "pcmu":
            self.input_rate = self.output_rate = PCMU_RATE
        width = bytes_per_sample(self.audio_format)
        self._out_bytes_per_ms = self.output_rate * width / 1000
        self.state = State.CONNECTING
        self.conversation = continuation.conversation.copy() if continuation else Conversation()
        self._replay = list(self.conversation)
        self._replay_want_response = bool(continuation and continuation.state.get("want_response"))
        # Audio the server has not committed. Starts with the previous connection's, which we
        # send again once ready (unless it was in another format: a resume with a new config).
        self._pending = PendingAudio.carried_over(
            continuation, self.audio_format, rate=self.input_rate, sample_width=width
        )
        self._outbox = Outbox[str](self._send)  # application frames, held until READY
        self._response: _Response | None = None
        self._response_requested = False
        self._want_response = False
        self._calls = ToolCalls(self.conversation)
        self._answers = AnswerItems(
            self.conversation, self.output_rate, self.audio_format, self._out_bytes_per_ms
        )
        self._cancelled = self._answers.cancelled  # responses whose late output we drop
        self._held_error: dict[str, Any] | None = None
        self._cancel_ids: set[str] = set()
        self._event_seq = 0
        self._lifetime = Lifetime(settings.rotate_after_s, settings.max_session_s)
        self._caller_speaking = False
        self.expires_at: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def idle(self) -> bool:
        return (
            self._response is None
            and not self._response_requested
            and not self._want_response
            and not self._calls.waiting
        )

    @property
    def deadline(self) -> float | None:
        if self.state is State.CLOSED or self.rotation:
            return None
        return self._lifetime.deadline()

    def timer_expired(self, now: float) -> None:
        if self.rotation:
            return
        if self._lifetime.expired(now):
            self.rotation = "session_limit"
        else:
            self._maybe_rotate()

    def _maybe_rotate(self) -> None:
        quiet = (
            self._response is None and not self._response_requested and not self._caller_speaking
        )
        if self._lifetime.rotate_if_quiet(quiet):
            self.rotation = "session_limit"

    def connection_made(self, now: float) -> None:
        self._lifetime.connected_at = now

    def close(self, now: float) -> None:
        self.state = State.CLOSED

    def continuation(self, reason: str) -> Continuation:
        return Continuation(
            conversation=self.conversation.copy(),
            pending_audio=self._pending.snapshot(),
            state={
                "want_response": self._want_response or self._replay_want_response,
                "audio_format": self.audio_format,
            },
            reason=reason,
        )

    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        was_closing = self.state is State.CLOSED
        self.state = State.CLOSED
        if self.failure is not None and code not in (3000, 4000):
            return self.failure
        return close_error(code, reason, self._held_error, was_closing)

    # -- application input -----------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        check_open(self.state is State.CLOSED, PROVIDER, what)

    def _send_app(self, frame: str) -> None:
        self._outbox.put(frame)

    def _next_event_id(self, kind: str) -> str:
        self._event_seq += 1
        return f"s2s_{kind}_{self._event_seq}"

    def send_audio(self, pcm: bytes, now: float) -> None:
        self._check_open("send_audio")
        if not pcm:
            return
        self._pending.add(pcm)
        self._send_app(wire.audio_append(pcm))

    def send_text(self, text: str, now: float) -> None:
        self._check_open("send_text")
        self.conversation.append(Message(Role.USER, text))
        self._send_app(wire.item_create(wire.user_text_item(text)))
        self._want_response = True
        self._maybe_request_response()

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        frame, group = self._calls.answer(result)
        self._send_app(frame)
        self._maybe_release(group)

    def _maybe_release(self, group: str | None) -> None:
        """Ask for exactly one response once a group of parallel calls is fully answered."""
        active = self._response.id if self._response is not None else None
        if self._calls.group_ready(group, active):
            self._calls.release(group)
            self._want_response = True
            self._maybe_request_response()

    def end_turn(self, now: float) -> None:
        self._check_open("end_turn")
        self._pending.commit_ends_now()
        self._send_app(wire.dumps({"type": "input_audio_buffer.commit"}))
        if self.settings.turn_detection is None:
            self._want_response = True
            self._maybe_request_response()

    def interrupt(self, now: float) -> None:
        self._check_open("interrupt")
        response = self._response
        if response is not None and not response.cancel_sent:
            event_id = self._next_event_id("cancel")
            self._cancel_ids.add(event_id)
            response.cancel_sent = True
            self._cancelled.add(response.id)
            self._send_app(wire.dumps({"type": "response.cancel", "event_id": event_id}))
        item_id = self._cut(now)
        if response is not None or item_id is not None:
            self._emit(
                SessionEvent(EventType.INTERRUPTED, reason="client", item_id=item_id, at=now)
            )

    def _cut(self, now: float) -> str | None:
        """Cut the playing answer to what the caller heard (see :meth:`AnswerItems.cut`)."""
        running = self._response.id if self._response is not None else None
        cut = self._answers.cut(now, running)
        if cut is None:
            return None
        for frame in cut.frames:
            self._send_app(frame)
        return cut.item_id

    def report_playback(self, item_id: str, played_ms: int) -> None:
        self._answers.playback.report(item_id, played_ms)

    def _maybe_request_response(self) -> None:
        if (
            self._want_response
            and self.state is State.READY
            and self._response is None
            and not self._response_requested
        ):
            self._want_response = False
            self._response_requested = True
            self._send(wire.dumps({"type": "response.create"}))

    # -- provider input ------------------------------------------------------------------------

    def receive_data(self, data: str | bytes, now: float) -> None:
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError(
                f"{PROVIDER}: server sent a frame that is not JSON", provider=PROVIDER
            ) from exc
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProviderProtocolError(
                f"{PROVIDER}: server sent JSON without an event type", provider=PROVIDER
            )
        self._handle(message, now)

    def _handle(self, ev: dict[str, Any], now: float) -> None:
        match ev["type"]:
            case "response.output_audio.delta":
                self._emit_some(self._answers.audio_event(ev, now))
            case "response.output_audio_transcript.delta":
                self._emit_some(self._answers.transcript_event(ev, now))
            case "response.output_audio_transcript.done":
                text = ev.get("transcript", "")
                self._emit_some(self._answers.done_event(ev, text, EventType.TRANSCRIPT, now))
            case "response.output_text.delta":
                self._emit(
                    SessionEvent(
                        EventType.TEXT_OUTPUT,
                        text=ev.get("delta", ""),
                        response_id=ev.get("response_id"),
                        item_id=ev.get("item_id"),
                        at=now,
                    )
                )
            case "response.output_text.done":
                text = ev.get("text", "")
                self._emit_some(self._answers.done_event(ev, text, EventType.TEXT_OUTPUT, now))
            case "input_audio_buffer.speech_started":
                self._speech_started(ev, now)
            case kind if kind in CALLER_EVENTS:
                if kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed"):
                    self._caller_speaking = False
                self._emit_some(caller_event(ev, self._pending, self.conversation, now))
            case "conversation.item.deleted":
                self.conversation.remove(ev.get("item_id", ""))
            case "response.created":
                response = ev.get("response") or {}
                self._response = _Response(id=response.get("id", ""))
                self._response_requested = False
                self._want_response = False
                self._emit(
                    SessionEvent(EventType.RESPONSE_STARTED, response_id=self._response.id, at=now)
                )
            case "response.output_item.added":
                self._item_added(ev.get("item") or {}, ev.get("response_id"))
            case "response.function_call_arguments.done":
                self._tool_call(
                    ev.get("call_id", ""),
                    ev.get("name", ""),
                    ev.get("arguments", ""),
                    ev.get("item_id"),
                    ev.get("response_id"),
                    now,
                )
            case "response.output_item.done":
                item = ev.get("item") or {}
                if item.get("type") == "function_call":
                    self._tool_call(
                        item.get("call_id", ""),
                        item.get("name", ""),
                        item.get("arguments", ""),
                        item.get("id"),
                        ev.get("response_id"),
                        now,
                    )
            case "response.done":
                self._response_done(ev.get("response") or {}, now)
            case "rate_limits.updated":
                self._emit(
                    SessionEvent(
                        EventType.RATE_LIMITS,
                        data={"rate_limits": ev.get("rate_limits", [])},
                        at=now,
                    )
                )
            case "session.created":
                self._session_created(ev, now)
            case "session.updated":
                self._session_updated(ev, now)
            case "error":
                self._error(ev.get("error") or {}, now)
            case _:
                pass  # item bookkeeping events, content parts, ...: nothing to act on

    def _session_created(self, ev: dict[str, Any], now: float) -> None:
        if self.state is not State.CONNECTING:
            return
        self.expires_at = (ev.get("session") or {}).get("expires_at")
        self.state = State.CONFIGURING
        self._send(
            wire.dumps(
                {
                    "type": "session.update",
                    "event_id": "s2s_setup",
                    "session": self.settings.session_config(),
                }
            )
        )

    def _session_updated(self, ev: dict[str, Any], now: float) -> None:
        if self.state is not State.CONFIGURING:
            return
        self.state = State.READY
        for item in self._replay:
            replayed = replay_item(item)
            if replayed is not None:
                self._send(wire.item_create(replayed))
        self._replay = []
        for chunk in self._pending.replay_chunks():
            self._send(wire.audio_append(chunk))
        self._outbox.open()
        if self._replay_want_response:
            self._want_response = True
            self._replay_want_response = False
        self._maybe_request_response()

    def _speech_started(self, ev: dict[str, Any], now: float) -> None:
        self._caller_speaking = True
        self._emit(SessionEvent(EventType.SPEECH_STARTED, item_id=ev.get("item_id"), at=now))
        response = self._response
        if response is not None:
            if not self.settings.interrupt_response:
                return  # the model keeps talking; the application decides
            self._cancelled.add(response.id)  # the server cancels it itself (turn_detected)
        item_id = self._cut(now)
        if item_id is not None or response is not None:
            self._emit(
                SessionEvent(EventType.INTERRUPTED, reason="barge_in", item_id=item_id, at=now)
            )

    def _emit_some(self, event: SessionEvent | None) -> None:
        if event is not None:
            self._emit(event)

    def _tool_call(
        self,
        call_id: str,
        name: str,
        arguments: str,
        item_id: str | None,
        response_id: str | None,
        now: float,
    ) -> None:
        call = self._calls.made(call_id, name, arguments, item_id, response_id)
        if call is None:
            return
        if self._response is not None:
            self._response.calls += 1
        self._emit(
            SessionEvent(
                EventType.TOOL_CALL,
                tool_call=call,
                response_id=response_id,
                item_id=item_id,
                at=now,
            )
        )

    def _item_added(self, item: dict[str, Any], response_id: str | None) -> None:
        item_id = item.get("id")
        if item.get("type") != "message" or not item_id:
            return
        if self._answers.was_cut(response_id):
            # a later item of an answer the caller cut off: never heard, so never said
            self._send_app(self._answers.drop(item_id))
            return
        self.conversation.append(Message(Role.ASSISTANT, "", item_id))
        self._answers.item_added(item_id, response_id)

    def _response_done(self, response: dict[str, Any], now: float) -> None:
        active = self._response
        self._response = None
        made_calls = active is not None and active.calls > 0
        events, terminal = turn_end_events(response, made_calls, now)
        if terminal is not None and self.failure is None:
            self.failure = terminal  # every response will fail: end the session
        for event in events:
            self._emit(event)
        if active is not None and made_calls:
            self._maybe_release(active.id)
        self._maybe_request_response()
        self._maybe_rotate()

    def _error(self, err: dict[str, Any], now: float) -> None:
        code = err.get("code")
        message = err.get("message", "")
        terminal = terminal_error(err)
        if terminal is not None:
            # quota, account or model: every response fails and the server closes; the close
            # (3000/4000 for a refused handshake) may follow in the same millisecond
            self._held_error = err
            if self.failure is None:
                self.failure = terminal
            return
        if code in HELD_CODES:
            self._held_error = err  # the close follows in the same millisecond
            return
        if code == "response_cancel_not_active" and err.get("event_id") in self._cancel_ids:
            return  # we cancelled a response that had just finished: harmless
        if code == "conversation_already_has_active_response":
            # A server-VAD response started between our check and our request; it already
            # includes what we added, so nothing is lost. Logged because it should be rare.
            log.warning("server already had an active response; not requesting another")
            self._response_requested = False
            return
        if err.get("event_id") == "s2s_setup":
            self.failure = InvalidRequestError(
                f"{PROVIDER}: the server refused the session configuration: {message}",
                code=code,
                provider=PROVIDER,
            )
            return
        self._emit(SessionEvent(EventType.ERROR, at=now, error=event_error(err)))
