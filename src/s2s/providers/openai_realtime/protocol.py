"""Sans-I/O OpenAI Realtime (GA) protocol: JSON frames in, session events and frames out.

Connection lifecycle::

    CONNECTING --session.created--> CONFIGURING --session.updated--> READY --close()--> CLOSED
                 (we send session.update)        (we replay history, pending audio, queued input)

Rules this module keeps (each one is a failure seen in other frameworks):

* Parallel tool calls of one response get all their outputs, then exactly **one**
  ``response.create``; ``response.create`` is never sent while a response is active, so the server
  never answers ``conversation_already_has_active_response``.
* On barge-in (``speech_started`` while answer audio is still playing) the assistant item is
  truncated to what the caller heard: the application's playback reports if any, else the
  wall-clock estimate; never beyond the audio received, and deleted outright at 0 ms. With server
  VAD the server cancels the response itself, so we send no ``response.cancel`` (no
  self-interruption).
* Caller audio not yet committed by the server is remembered, so a new connection can be given it
  again; with the conversation history this makes a connection switch lose nothing.
* Fatal errors (bad key, bad model, beta header) arrive as an ``error`` event and a close in the
  same millisecond: the error is held and reported with the close code (3000 / 4000).
* A ``Config.audio_format="pcmu"`` session speaks ``audio/pcmu`` both ways: caller audio and
  AUDIO_OUTPUT events are G.711 mu-law at 8 kHz (one byte a sample), and every byte count
  (playback, truncation's ``audio_end_ms``, pending audio) is reckoned in it.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from ...audio.formats import PCMU_RATE, bytes_per_sample
from ...config import Config, ToolCall, ToolResult
from ...conversation import Conversation, FunctionCall, FunctionOutput, Message
from ...errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderProtocolError,
    ProviderServerError,
    RateLimitError,
    S2SError,
    SessionClosedError,
    SessionExpiredError,
)
from ...events import EventType, Role, SessionEvent, Usage
from ...log import logger
from ...playback import PlaybackTracker
from ...protocol import Continuation, ProviderProtocol
from . import wire
from .pending_audio import PendingAudio
from .settings import PROVIDER, OpenAISettings

__all__ = ["OpenAIRealtimeProtocol", "State"]

log = logger.getChild(PROVIDER)

#: Error codes that come with a fatal close; held until the close arrives.
FATAL_CODES = frozenset(
    {
        "invalid_api_key",
        "missing_model",
        "invalid_model",
        "beta_api_shape_disabled",
        "session_expired",
        "model_not_found",
    }
)
#: Close codes the official SDK treats as recoverable.
RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})


class State(enum.Enum):
    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    READY = "ready"
    CLOSED = "closed"


@dataclass(slots=True)
class _Response:
    id: str
    call_ids: list[str] = field(default_factory=list)
    cancel_sent: bool = False


@dataclass(slots=True)
class _Call:
    response_id: str | None
    answered: bool = False


def _b64decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProviderProtocolError(
            f"{PROVIDER}: audio delta is not valid base64", provider=PROVIDER
        ) from exc


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
        replay = continuation.pending_audio if continuation else b""
        carried = continuation.state.get("audio_format", "pcm16") if continuation else "pcm16"
        if replay and carried != self.audio_format:
            log.warning(
                "not replaying %d bytes of %s caller audio into a %s connection",
                len(replay),
                carried,
                self.audio_format,
            )
            replay = b""
        self._pending = PendingAudio(replay, rate=self.input_rate, sample_width=width)
        self._queued: list[str] = []  # application frames waiting for READY
        self._response: _Response | None = None
        self._response_requested = False
        self._want_response = False
        self._calls: dict[str, _Call] = {
            call.id: _Call(response_id=None) for call in self.conversation.pending_calls()
        }
        self._transcripts: dict[str, str] = {}
        self._truncated: set[str] = set()
        self._cancelled: set[str] = set()  # responses whose late output we drop
        self._item_response: dict[str, str] = {}
        self._playback = PlaybackTracker()
        self._held_error: dict[str, Any] | None = None
        self._cancel_ids: set[str] = set()
        self._event_seq = 0
        self._connected_at: float | None = None
        self._rotation_due = False
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
            and not any(not call.answered for call in self._calls.values())
        )

    @property
    def deadline(self) -> float | None:
        if self._connected_at is None or self.state is State.CLOSED or self.rotation:
            return None
        if not self._rotation_due:
            return self._connected_at + self.settings.rotate_after_s
        # Waiting for the current answer to end; the hard limit still applies.
        return self._connected_at + max(
            self.settings.rotate_after_s, self.settings.max_session_s - 5.0
        )

    def timer_expired(self, now: float) -> None:
        if self._connected_at is None or self.rotation:
            return
        if now >= self._connected_at + self.settings.max_session_s - 5.0:
            self._rotation_due = False
            self.rotation = "session_limit"
            return
        if now >= self._connected_at + self.settings.rotate_after_s:
            self._rotation_due = True
            self._maybe_rotate()

    def _maybe_rotate(self) -> None:
        if (
            self._rotation_due
            and self._response is None
            and not self._response_requested
            and not self._caller_speaking
        ):
            self._rotation_due = False
            self.rotation = "session_limit"

    def connection_made(self, now: float) -> None:
        self._connected_at = now

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
        held = self._held_error or {}
        held_code = held.get("code")
        message = held.get("message") or reason or "connection closed"
        if code == 3000:
            return AuthenticationError(
                f"{PROVIDER}: {message}", code=held_code or reason or "3000", provider=PROVIDER
            )
        if code == 4000:
            return InvalidRequestError(
                f"{PROVIDER}: {message}", code=held_code or reason or "4000", provider=PROVIDER
            )
        if held_code == "session_expired":
            return SessionExpiredError(f"{PROVIDER}: {message}", code=held_code, provider=PROVIDER)
        if was_closing and code in (1000, None):
            return None
        if code is None or code == 1000 or code in RECOVERABLE_CLOSE_CODES:
            return ProviderConnectionError(
                f"{PROVIDER}: connection closed (code={code}, reason={reason!r})",
                code=str(code) if code is not None else None,
                provider=PROVIDER,
            )
        return ProviderError(
            f"{PROVIDER}: connection closed with code {code}: {reason}",
            code=str(code),
            provider=PROVIDER,
        )

    # -- application input -----------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self.state is State.CLOSED:
            raise SessionClosedError(f"{what}: the connection is closed")

    def _send_app(self, frame: str) -> None:
        if self.state is State.READY:
            self._send(frame)
        else:
            self._queued.append(frame)

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
        call = self._calls.get(result.call_id)
        if call is None:
            known = ", ".join(sorted(self._calls)) or "none"
            raise InvalidInputError(
                f"no tool call {result.call_id!r} in this session (open calls: {known})"
            )
        if call.answered:
            raise InvalidInputError(f"tool call {result.call_id!r} was already answered")
        call.answered = True
        output = json.dumps({"error": result.content}) if result.is_error else result.content
        self.conversation.append(FunctionOutput(result.call_id, output, result.is_error))
        self._send_app(wire.item_create(wire.function_output_item(result.call_id, output)))
        if self._group_complete(call.response_id):
            self._release_group(call.response_id)

    def _group_complete(self, response_id: str | None) -> bool:
        """All calls of one response are answered and that response has finished."""
        if self._response is not None and self._response.id == response_id:
            return False
        return all(c.answered for c in self._calls.values() if c.response_id == response_id)

    def _release_group(self, response_id: str | None) -> None:
        """Ask for exactly one response for a fully answered group of parallel calls."""
        for call_id in [k for k, c in self._calls.items() if c.response_id == response_id]:
            del self._calls[call_id]
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
        """Truncate the latest answer to what was heard, if the caller may not have heard it all.

        That is when its audio is still playing, or when its response is still running: the
        server has then generated audio that has not even arrived yet.
        """
        item_id = self._playback.latest
        if item_id is None or item_id in self._truncated:
            return None
        response = self._response
        running = response is not None and self._item_response.get(item_id) == response.id
        if not (running or self._playback.is_playing(item_id, now)):
            return None
        self._truncate(item_id, now)
        return item_id

    def report_playback(self, item_id: str, played_ms: int) -> None:
        self._playback.report(item_id, played_ms)

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

    def _truncate(self, item_id: str, now: float) -> None:
        """Cut ``item_id`` to what the caller heard (delete it if nothing was heard)."""
        played = self._playback.played_ms(item_id, now)
        received = self._playback.received_ms(item_id)
        if played <= 0:
            self._send_app(wire.dumps({"type": "conversation.item.delete", "item_id": item_id}))
            self.conversation.remove(item_id)
        else:
            self._send_app(
                wire.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item_id,
                        "content_index": 0,
                        "audio_end_ms": played,
                    }
                )
            )
            text = self._transcripts.get(item_id, "")
            heard = text[: int(len(text) * played / received)] if received else ""
            self.conversation.set_text(item_id, heard)
        self._truncated.add(item_id)
        self._playback.forget(item_id)

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
                audio = _b64decode(ev.get("delta", ""))
                item_id = ev.get("item_id")
                if item_id in self._truncated or ev.get("response_id") in self._cancelled:
                    return  # the caller already moved on; do not play the rest
                if item_id:
                    self._playback.on_audio(item_id, len(audio) / self._out_bytes_per_ms, now)
                    self._item_response[item_id] = ev.get("response_id", "")
                self._emit(
                    SessionEvent(
                        EventType.AUDIO_OUTPUT,
                        audio=audio,
                        sample_rate=self.output_rate,
                        encoding=self.audio_format,
                        response_id=ev.get("response_id"),
                        item_id=item_id,
                        at=now,
                    )
                )
            case "response.output_audio_transcript.delta":
                item_id = ev.get("item_id", "")
                self._transcripts[item_id] = self._transcripts.get(item_id, "") + ev.get(
                    "delta", ""
                )
                if item_id not in self._truncated and ev.get("response_id") not in self._cancelled:
                    self._emit(
                        SessionEvent(
                            EventType.TRANSCRIPT,
                            text=ev.get("delta", ""),
                            role=Role.ASSISTANT,
                            response_id=ev.get("response_id"),
                            item_id=item_id,
                            at=now,
                        )
                    )
            case "response.output_audio_transcript.done":
                self._assistant_text_done(ev, ev.get("transcript", ""), EventType.TRANSCRIPT, now)
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
                self._assistant_text_done(ev, ev.get("text", ""), EventType.TEXT_OUTPUT, now)
            case "input_audio_buffer.speech_started":
                self._speech_started(ev, now)
            case "input_audio_buffer.speech_stopped":
                self._caller_speaking = False
                end_ms = ev.get("audio_end_ms")
                if isinstance(end_ms, int | float) and end_ms >= 0:
                    self._pending.commit_ends_at_ms(end_ms)
                self._emit(
                    SessionEvent(EventType.SPEECH_STOPPED, item_id=ev.get("item_id"), at=now)
                )
            case "input_audio_buffer.committed":
                self._pending.forget_committed()
                self._caller_speaking = False
                item_id = ev.get("item_id")
                if item_id and not self.conversation.has_item(item_id):
                    self.conversation.append(Message(Role.USER, "", item_id))
            case "input_audio_buffer.cleared":
                self._pending.clear()
            case "conversation.item.input_audio_transcription.delta":
                self._emit(
                    SessionEvent(
                        EventType.TRANSCRIPT,
                        text=ev.get("delta", ""),
                        role=Role.USER,
                        item_id=ev.get("item_id"),
                        at=now,
                    )
                )
            case "conversation.item.input_audio_transcription.completed":
                transcript = ev.get("transcript", "")
                if ev.get("item_id"):
                    self.conversation.set_text(ev["item_id"], transcript)
                self._emit(
                    SessionEvent(
                        EventType.TRANSCRIPT,
                        text=transcript,
                        role=Role.USER,
                        final=True,
                        item_id=ev.get("item_id"),
                        at=now,
                    )
                )
            case "conversation.item.input_audio_transcription.failed":
                err = ev.get("error") or {}
                self._emit(
                    SessionEvent(
                        EventType.ERROR,
                        item_id=ev.get("item_id"),
                        at=now,
                        error=ProviderError(
                            f"{PROVIDER}: input transcription failed: {err.get('message', '')}",
                            code=err.get("code"),
                            provider=PROVIDER,
                        ),
                    )
                )
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
                item = ev.get("item") or {}
                if item.get("type") == "message" and item.get("id"):
                    self.conversation.append(Message(Role.ASSISTANT, "", item["id"]))
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
            replayed = self._replay_item(item)
            if replayed is not None:
                self._send(wire.item_create(replayed))
        self._replay = []
        for chunk in self._pending.replay_chunks():
            self._send(wire.audio_append(chunk))
        queued, self._queued = self._queued, []
        for frame in queued:
            self._send(frame)
        if self._replay_want_response:
            self._want_response = True
            self._replay_want_response = False
        self._maybe_request_response()

    @staticmethod
    def _replay_item(item: Message | FunctionCall | FunctionOutput) -> dict[str, Any] | None:
        if isinstance(item, Message):
            if not item.text:
                return None  # a turn with no transcript has nothing to carry
            if item.role is Role.USER:
                return wire.user_text_item(item.text)
            return wire.assistant_text_item(item.text)
        if isinstance(item, FunctionCall):
            return wire.function_call_item(item.call_id, item.name, item.arguments)
        return wire.function_output_item(item.call_id, item.output)

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

    def _assistant_text_done(
        self, ev: dict[str, Any], text: str, kind: EventType, now: float
    ) -> None:
        item_id = ev.get("item_id", "")
        self._transcripts[item_id] = text
        if item_id in self._truncated:
            return
        self.conversation.set_text(item_id, text)
        role = Role.ASSISTANT if kind is EventType.TRANSCRIPT else None
        self._emit(
            SessionEvent(
                kind,
                text=text,
                role=role,
                final=True,
                response_id=ev.get("response_id"),
                item_id=item_id,
                at=now,
            )
        )

    def _tool_call(
        self,
        call_id: str,
        name: str,
        arguments: str,
        item_id: str | None,
        response_id: str | None,
        now: float,
    ) -> None:
        if not call_id or self.conversation.find_call(call_id) is not None:
            return  # already reported (arguments.done and output_item.done both carry it)
        self.conversation.append(FunctionCall(call_id, name, arguments, item_id))
        self._calls[call_id] = _Call(response_id=response_id)
        if self._response is not None:
            self._response.call_ids.append(call_id)
        self._emit(
            SessionEvent(
                EventType.TOOL_CALL,
                tool_call=ToolCall(call_id, name, arguments or "{}"),
                response_id=response_id,
                item_id=item_id,
                at=now,
            )
        )

    def _response_done(self, response: dict[str, Any], now: float) -> None:
        status = response.get("status", "completed")
        details = response.get("status_details") or {}
        active = self._response
        self._response = None
        if (usage := response.get("usage")) is not None:
            inp = usage.get("input_token_details") or {}
            out = usage.get("output_token_details") or {}
            self._emit(
                SessionEvent(
                    EventType.USAGE,
                    response_id=response.get("id"),
                    at=now,
                    usage=Usage(
                        input_tokens=usage.get("input_tokens") or 0,
                        output_tokens=usage.get("output_tokens") or 0,
                        total_tokens=usage.get("total_tokens") or 0,
                        input_audio_tokens=inp.get("audio_tokens") or 0,
                        input_text_tokens=inp.get("text_tokens") or 0,
                        output_audio_tokens=out.get("audio_tokens") or 0,
                        output_text_tokens=out.get("text_tokens") or 0,
                        cached_tokens=inp.get("cached_tokens") or 0,
                    ),
                )
            )
        if status == "failed":
            err = details.get("error") or {}
            self._emit(
                SessionEvent(
                    EventType.ERROR,
                    response_id=response.get("id"),
                    at=now,
                    error=ProviderServerError(
                        f"{PROVIDER}: response failed: {err.get('message', 'no details')}",
                        code=err.get("code"),
                        provider=PROVIDER,
                        retryable=False,
                    ),
                )
            )
        reason = status
        if status == "completed" and active is not None and active.call_ids:
            reason = "tool_calls"
        self._emit(
            SessionEvent(
                EventType.TURN_END,
                reason=reason,
                response_id=response.get("id"),
                at=now,
                data={"status_reason": details.get("reason")} if details.get("reason") else {},
            )
        )
        if active is not None and active.call_ids and self._group_complete(active.id):
            self._release_group(active.id)
        self._maybe_request_response()
        self._maybe_rotate()

    def _error(self, err: dict[str, Any], now: float) -> None:
        code = err.get("code")
        message = err.get("message", "")
        if code in FATAL_CODES:
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
        error_cls: type[ProviderError] = ProviderError
        if code in ("rate_limit_exceeded", "insufficient_quota"):
            error_cls = RateLimitError
        elif err.get("type") == "server_error":
            error_cls = ProviderServerError
        self._emit(
            SessionEvent(
                EventType.ERROR,
                at=now,
                error=error_cls(
                    f"{PROVIDER}: {message}"
                    + (f" (param {err['param']})" if err.get("param") else ""),
                    code=code,
                    provider=PROVIDER,
                    retryable=False,
                ),
            )
        )
