"""Sans-I/O Gemini Live protocol: BidiGenerateContent frames in, session events and frames out.

Connection lifecycle::

    CONNECTING --setupComplete--> READY --close()--> CLOSED
    (setup sent, nothing else)    (history replayed, pending input sent again, queued input)

Rules this module keeps (each one is a failure seen in other frameworks):

* ``setup`` is the first message and nothing else is sent before ``setupComplete``.
* Server JSON is accepted in text and binary frames; every part of a ``serverContent`` is used.
* Barge-in: ``interrupted`` becomes an INTERRUPTED event (flush playback) and any late output of
  the cut turn is dropped. :meth:`interrupt` has no wire message to send (Gemini has no cancel):
  it emits INTERRUPTED and drops the rest of the turn locally; with manual turn detection it also
  sends ``activityStart``, which makes the server stop. With server VAD the server finishes the
  answer into its own history (Gemini has no truncation call).
* Tool calls: ``args`` objects become JSON strings; results go back as
  ``toolResponse.functionResponses[{id, name, response}]`` (``scheduling`` for NON_BLOCKING
  tools); ``toolCallCancellation`` is its own event and a cancelled call's result is refused.
* Seamless continuation: resumption handles are requested (``transparent``) and the latest
  resumable one kept; on ``goAway`` the call moves (``rotation``) as soon as the model is quiet,
  and in any case ``go_away_margin_s`` before the server's deadline; the same path recovers from
  a dropped connection. :mod:`.resumption` works out exactly what the handle covers, so the new
  connection is sent again every audio chunk, text and tool response it lacks, and tool calls the
  handle predates are replayed with their results as history: nothing is lost, nothing is
  answered twice. Without a handle the whole history is replayed as ``clientContent`` turns.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...config import Config, ToolCall, ToolResult
from ...conversation import Conversation, FunctionCall, FunctionOutput, HistoryItem, Message
from ...errors import (
    InvalidInputError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderProtocolError,
    S2SError,
    SessionClosedError,
)
from ...events import EventType, Role, SessionEvent, Usage
from ...log import logger
from ...protocol import Continuation, ProviderProtocol
from . import wire
from .closes import close_error
from .resumption import COVERED, Ledger, Plan, Record, item_key, owes_answer, plan
from .settings import PROVIDER, GeminiSettings

__all__ = ["GeminiLiveProtocol", "State"]

log = logger.getChild(PROVIDER)

#: Pending caller audio goes out again in messages of this size (1 s at 16 kHz).
RESEND_CHUNK_BYTES = wire.INPUT_RATE * 2


class State(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


@dataclass(slots=True)
class _Turn:
    """A model turn: from its first output to ``turnComplete``."""

    response_id: str
    cut: bool = False  # interrupted: later output is dropped
    calls: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    name: str
    answered: bool = False


def _b64decode(data: object) -> bytes:
    try:
        return wire.b64decode(data if isinstance(data, str) else "")
    except ValueError as exc:
        raise ProviderProtocolError(
            f"{PROVIDER}: audio data is not valid base64", provider=PROVIDER
        ) from exc


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class GeminiLiveProtocol(ProviderProtocol):
    """One Gemini Live connection (see the module docstring for the rules it keeps)."""

    provider = PROVIDER
    input_rate = wire.INPUT_RATE
    output_rate = wire.OUTPUT_RATE

    def __init__(
        self,
        config: Config,
        settings: GeminiSettings,
        continuation: Continuation | None = None,
        *,
        on_handle_refused: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.state = State.CONNECTING
        self.conversation = continuation.conversation.copy() if continuation else Conversation()
        carried = dict(continuation.state) if continuation else {}
        handle = carried.get("handle") if settings.session_resumption else None
        carried["handle"] = handle
        self.ledger = Ledger(handle=handle if isinstance(handle, str) and handle else None)
        self._plan: Plan | None = plan(self.conversation, carried) if continuation else None
        self._carried_audio = continuation.pending_audio if continuation else b""
        covered_audio = carried.get("covered_audio", b"")
        self._covered_audio = covered_audio if isinstance(covered_audio, bytes) else b""
        self._on_handle_refused = on_handle_refused
        self._tag = secrets.token_hex(3)
        self._seq = 0
        self._queued: list[tuple[str, Any]] = []
        self._turn: _Turn | None = None
        self._last_response_id: str | None = None
        self._calls: dict[str, _Call] = {}
        self._held: list[HistoryItem] = []
        self._cancelled: set[str] = {str(i) for i in carried.get("cancelled") or []}
        self._assistant_item: str | None = None
        self._assistant_text = ""
        self._user_item: str | None = None
        self._user_text = ""
        self._user_open = False  # the model has not started answering the caller's turn yet
        self._user_final_sent = False
        self._awaiting_answer = False
        self._activity_open = bool(carried.get("activity_open")) and self.ledger.handle is not None
        self._go_away_at: float | None = None
        self._connected_at: float | None = None
        self._handed_over = False
        self._closing = False
        if self._plan is not None:
            self._adopt(self._plan, carried)

    def _adopt(self, carried_plan: Plan, carried: dict[str, Any]) -> None:
        """Take over a previous connection's history: what is covered, open, held."""
        items = list(self.conversation)
        answered = {i.call_id for i in items if isinstance(i, FunctionOutput)}
        for n in carried_plan.covered:
            self.ledger.keys[item_key(items[n])] = COVERED
            item = items[n]
            if isinstance(item, FunctionCall) and item.call_id not in answered:
                self._calls[item.call_id] = _Call(item.name)
        self._held = [items[n] for n in carried_plan.held]
        if self.ledger.handle is not None:
            for entry in carried.get("pending") or []:
                if entry.get("covered"):
                    self.ledger.record(self._carried_record(entry, index=None))

    def _carried_record(self, entry: Any, index: int | None) -> Record:
        kind = entry.get("kind")
        items = list(self.conversation)
        if kind == "audio":
            source = self._covered_audio if entry.get("covered") else self._carried_audio
            return Record("audio", index, audio=source[entry["start"] : entry["end"]])
        if kind in ("activity_start", "activity_end"):
            return Record(kind, index)
        item = items[entry["item"]]
        if isinstance(item, FunctionOutput):
            return Record("tool_response", index, item=item_key(item), call_id=item.call_id)
        return Record("text", index, text=getattr(item, "text", ""), item=item_key(item))

    # -- ids and sending ---------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._tag}{self._seq}"

    def _send_frame(self, frame: str) -> int:
        """Send one client message; returns the index the server counts it by."""
        index = self.ledger.sent()
        self._send(frame)
        return index

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def idle(self) -> bool:
        return (
            self._turn is None
            and not self._awaiting_answer
            and not self._held
            and not any(not call.answered for call in self._calls.values())
        )

    @property
    def deadline(self) -> float | None:
        if self._go_away_at is None or self.rotation or self._handed_over:
            return None
        if self.state is State.CLOSED:
            return None
        return self._go_away_at

    def timer_expired(self, now: float) -> None:
        if self._go_away_at is not None and now >= self._go_away_at and not self.rotation:
            self._cut_turn("go_away", now)
            self.rotation = "go_away"

    def connection_made(self, now: float) -> None:
        self._connected_at = now
        handle = self.ledger.handle
        self._send_frame(wire.dumps(self.settings.setup(handle)))
        if handle:
            log.info("resuming the session with handle %s…", handle[:12])

    def close(self, now: float) -> None:
        self._closing = True
        self.state = State.CLOSED

    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        setting_up = self.state is State.CONNECTING
        was_closing = self._closing
        self.state = State.CLOSED
        if was_closing and code in (1000, None):
            return None
        error = close_error(code, reason)
        handle = self.ledger.handle
        if setting_up and handle and isinstance(error, InvalidRequestError):
            # The server refused to resume (an expired or unknown handle): continue without it,
            # replaying the history instead.
            if self._on_handle_refused is not None:
                self._on_handle_refused(handle)
            return ProviderConnectionError(
                f"{PROVIDER}: the server refused to resume the session "
                f"({code}: {reason or 'no reason'}); continuing with the conversation history "
                "instead",
                code=error.code,
                provider=PROVIDER,
            )
        if error.retryable and not setting_up:
            self._cut_turn("connection_lost", now)
        return error

    def continuation(self, reason: str) -> Continuation:
        if reason != "snapshot":
            self._handed_over = True  # later output is the new connection's to give
        drop = []
        if self._turn is not None and self._assistant_item is not None:
            drop.append(self._assistant_item)  # cut mid-answer: the model answers again
        if self._user_item is not None and self._user_open:
            drop.append(self._user_item)  # its audio is sent again instead
        conversation, audio, state = self.ledger.carry(self.conversation, drop)
        state["cancelled"] = sorted(self._cancelled)
        state["activity_open"] = self._activity_open
        return Continuation(conversation, audio, state, reason)

    # -- application input -----------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self.state is State.CLOSED:
            raise SessionClosedError(f"{what}: the connection is closed")

    def send_audio(self, pcm: bytes, now: float) -> None:
        self._check_open("send_audio")
        if not pcm:
            return
        if self.state is not State.READY:
            self._queued.append(("audio", pcm))
            return
        if self.settings.manual_turns and not self._activity_open:
            self._activity(start=True, now=now)
        index = self._send_frame(wire.audio(pcm))
        self.ledger.record(Record("audio", index, audio=pcm, at=now))

    def send_text(self, text: str, now: float) -> None:
        self._check_open("send_text")
        message = Message(Role.USER, text, self._new_id("u"))
        self.conversation.append(message)
        if self.state is not State.READY:
            self._queued.append(("text", message))
            return
        self._send_text(message)

    def _activity(self, *, start: bool, now: float) -> None:
        """Manual turn detection: the caller's turn starts or ends (kept for a new connection)."""
        self._activity_open = start
        kind = "activity_start" if start else "activity_end"
        field = "activityStart" if start else "activityEnd"
        index = self._send_frame(wire.realtime_input(**{field: {}}))
        self.ledger.record(Record(kind, index, at=now))

    def _send_text(self, message: Message) -> None:
        index = self._send_frame(wire.realtime_input(text=message.text))
        key = item_key(message)
        self.ledger.mark_sent(key, index)
        self.ledger.record(Record("text", index, text=message.text, item=key))
        self._awaiting_answer = True

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        call_id = result.call_id
        if call_id in self._cancelled:
            raise InvalidInputError(
                f"tool call {call_id!r} was cancelled by the provider (toolCallCancellation); "
                "its result is not sent"
            )
        held = {i.call_id: i for i in self._held if isinstance(i, FunctionCall)}
        call = self._calls.get(call_id)
        if call is None and call_id not in held:
            known = ", ".join(sorted([*self._calls, *held])) or "none"
            raise InvalidInputError(
                f"no tool call {call_id!r} in this session (open calls: {known})"
            )
        answered = {i.call_id for i in self.conversation if isinstance(i, FunctionOutput)}
        if (call is not None and call.answered) or call_id in answered:
            raise InvalidInputError(f"tool call {call_id!r} was already answered")
        output = FunctionOutput(call_id, result.content, result.is_error)
        self.conversation.append(output)
        if call is None:
            self._held.append(output)
            self._release_held()
            return
        call.answered = True
        if self.state is not State.READY:
            self._queued.append(("tool_result", output))
            return
        self._send_tool_output(output, call.name)

    def _send_tool_output(self, output: FunctionOutput, name: str) -> None:
        scheduling = self.settings.scheduling(name)
        response = wire.function_response(
            output.call_id,
            name,
            wire.result_payload(output.output, output.is_error),
            scheduling,
        )
        index = self._send_frame(wire.tool_response([response]))
        key = item_key(output)
        self.ledger.mark_sent(key, index)
        self.ledger.record(Record("tool_response", index, item=key, call_id=output.call_id))
        if scheduling != "SILENT":
            self._awaiting_answer = True

    def end_turn(self, now: float) -> None:
        self._check_open("end_turn")
        if self.state is not State.READY:
            self._queued.append(("end_turn", None))
            return
        if self.settings.manual_turns:
            if self._activity_open:
                self._activity(start=False, now=now)
                self._awaiting_answer = True
        else:
            self._send_frame(wire.realtime_input(audioStreamEnd=True))

    def interrupt(self, now: float) -> None:
        self._check_open("interrupt")
        turn = self._turn
        speaking = self._assistant_item is not None or (turn is not None and not self._waits(turn))
        if turn is not None and not turn.cut and speaking:  # not a turn waiting on tools
            if self.settings.manual_turns and self.ready and not self._activity_open:
                self._activity(start=True, now=now)  # the caller holds the floor until end_turn()
            self._cut(turn, "client", now)

    # -- sending a carried history once set up ----------------------------------------------------

    def _setup_complete(self, now: float) -> None:
        if self.state is not State.CONNECTING:
            return
        self.state = State.READY
        if self._connected_at is not None:
            self.ledger.window_s = min(1.0, max(0.0, now - self._connected_at))
        carried = self._plan
        self._plan = None
        if carried is not None:
            items = list(self.conversation)
            replay = [items[n] for n in carried.replay]
            if replay:
                turn_complete = owes_answer(replay) and not self._held
                self._send_history(replay, turn_complete)
            audio = bytearray()
            for entry in carried.resend:
                if entry.get("kind") == "audio":
                    audio += self._carried_record(entry, index=None).audio
                    continue
                self._resend_audio(bytes(audio), now)
                audio.clear()
                self._resend(entry, items, now)
            self._resend_audio(bytes(audio), now)
            self._release_held()
        queued, self._queued = self._queued, []
        for op, value in queued:
            if op == "audio":
                self.send_audio(value, now)
            elif op == "text":
                self._send_text(value)
            elif op == "tool_result":
                call = self._calls.get(value.call_id)
                self._send_tool_output(value, call.name if call else "")
            else:
                self.end_turn(now)
        self._maybe_rotate()

    def _resend_audio(self, pcm: bytes, now: float) -> None:
        for start in range(0, len(pcm), RESEND_CHUNK_BYTES):
            chunk = pcm[start : start + RESEND_CHUNK_BYTES]
            index = self._send_frame(wire.audio(chunk))
            self.ledger.record(Record("audio", index, audio=chunk, at=now))

    def _resend(self, entry: Any, items: list[HistoryItem], now: float) -> None:
        if entry.get("kind") in ("activity_start", "activity_end"):
            self._activity(start=entry["kind"] == "activity_start", now=now)
            return
        item = items[entry["item"]]
        if isinstance(item, Message):
            self._send_text(item)
        elif isinstance(item, FunctionOutput):
            call = self.conversation.find_call(item.call_id)
            self._send_tool_output(item, call.name if call else "")

    def _release_held(self) -> None:
        """Send held tool calls with their results as history once every one is answered."""
        if not self._held or self.state is not State.READY:
            return
        answered = {i.call_id for i in self._held if isinstance(i, FunctionOutput)}
        calls = [i for i in self._held if isinstance(i, FunctionCall)]
        if any(c.call_id not in answered for c in calls):
            return
        held, self._held = self._held, []
        self._send_history(held, owes_answer(held))

    def _send_history(self, items: list[HistoryItem], turn_complete: bool) -> None:
        turns = self._turns(items)
        if not turns:
            return
        index = self._send_frame(wire.client_content(turns, turn_complete))
        for item in items:
            self.ledger.mark_sent(item_key(item), index)
        if turn_complete:
            self._awaiting_answer = True

    def _turns(self, items: list[HistoryItem]) -> list[dict[str, Any]]:
        """History items as ``Content`` turns (consecutive parts of one role merged)."""
        turns: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, Message):
                if not item.text:
                    continue
                role = "user" if item.role is Role.USER else "model"
                part = wire.text_part(item.text)
            elif isinstance(item, FunctionCall):
                role = "model"
                try:
                    args = json.loads(item.arguments or "{}")
                except ValueError:
                    args = {}
                part = wire.function_call_part(item.call_id, item.name, _dict(args))
            else:
                role = "user"
                call = self.conversation.find_call(item.call_id)
                part = {
                    "functionResponse": wire.function_response(
                        item.call_id,
                        call.name if call else "",
                        wire.result_payload(item.output, item.is_error),
                    )
                }
            if turns and turns[-1]["role"] == role:
                turns[-1]["parts"].append(part)
            else:
                turns.append({"role": role, "parts": [part]})
        return turns

    # -- provider input ------------------------------------------------------------------------

    def receive_data(self, data: str | bytes, now: float) -> None:
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError(
                f"{PROVIDER}: server sent a frame that is not JSON", provider=PROVIDER
            ) from exc
        if not isinstance(message, dict):
            raise ProviderProtocolError(
                f"{PROVIDER}: server sent JSON that is not an object", provider=PROVIDER
            )
        self.ledger.got()
        if self._handed_over:
            return  # the call moved on: the new connection answers from here
        self._handle(message, now)

    def _handle(self, message: dict[str, Any], now: float) -> None:
        if "setupComplete" in message:
            self._setup_complete(now)
        if (update := message.get("sessionResumptionUpdate")) is not None:
            self._resumption_update(_dict(update), now)
        if (usage := message.get("usageMetadata")) is not None:
            self._usage(_dict(usage), now)
        if (content := message.get("serverContent")) is not None:
            self._server_content(_dict(content), now)
        if (tool_call := message.get("toolCall")) is not None:
            self._tool_call(_dict(tool_call), now)
        if (cancellation := message.get("toolCallCancellation")) is not None:
            self._tool_call_cancellation(_dict(cancellation), now)
        if (activity := message.get("voiceActivity")) is not None:
            kind = _dict(activity).get("voiceActivityType")
            self._voice_activity(kind == "ACTIVITY_START", kind == "ACTIVITY_END", now)
        if (signal := message.get("voiceActivityDetectionSignal")) is not None:
            kind = _dict(signal).get("vadSignalType")
            self._voice_activity(kind == "VAD_SIGNAL_TYPE_SOS", kind == "VAD_SIGNAL_TYPE_EOS", now)
        if (go_away := message.get("goAway")) is not None:
            self._go_away(_dict(go_away), now)

    def _resumption_update(self, update: dict[str, Any], now: float) -> None:
        handle = update.get("newHandle")
        if not update.get("resumable") or not isinstance(handle, str) or not handle:
            return  # not resumable at this moment: keep the previous handle
        index = update.get("lastConsumedClientMessageIndex")
        try:
            last = int(index) if index is not None else None
        except (TypeError, ValueError):
            last = None
        self.ledger.new_handle(handle, last, now)
        self._maybe_rotate()

    def _go_away(self, go_away: dict[str, Any], now: float) -> None:
        left = wire.parse_duration(go_away.get("timeLeft"))
        left = 0.0 if left is None else left
        at = now + max(0.0, left - self.settings.go_away_margin_s)
        if self._go_away_at is None or at < self._go_away_at:
            self._go_away_at = at
        log.info("server goAway: %.1f s left; moving the call at the next quiet moment", left)
        self._maybe_rotate()

    def _maybe_rotate(self) -> None:
        if self._go_away_at is not None and not self.rotation and self.ready and self.idle:
            self.rotation = "go_away"

    def _voice_activity(self, started: bool, stopped: bool, now: float) -> None:
        if started:
            self._emit(SessionEvent(EventType.SPEECH_STARTED, at=now))
        elif stopped:
            self._emit(SessionEvent(EventType.SPEECH_STOPPED, at=now))

    # -- turns -----------------------------------------------------------------------------------

    def _begin_turn(self, now: float) -> _Turn:
        if self._turn is None:
            self._turn = _Turn(self._new_id("resp"))
            self._last_response_id = self._turn.response_id
            self.ledger.answer_started()
            self._awaiting_answer = False
            self._user_open = False
            self._emit(
                SessionEvent(EventType.RESPONSE_STARTED, response_id=self._turn.response_id, at=now)
            )
        return self._turn

    def _assistant(self) -> str:
        if self._assistant_item is None:
            self._assistant_item = self._new_id("a")
            self._assistant_text = ""
            self.conversation.append(Message(Role.ASSISTANT, "", self._assistant_item))
            self.ledger.mark_received(self._assistant_item)
        return self._assistant_item

    def _close_assistant(self, *, final: bool) -> str | None:
        """The current answer item is complete (or cut); returns its id."""
        item_id = self._assistant_item
        if item_id is None:
            return None
        self._assistant_item = None
        self.conversation.set_text(item_id, self._assistant_text)
        if final and self._assistant_text and self.settings.output_transcription:
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=self._assistant_text,
                    role=Role.ASSISTANT,
                    final=True,
                    response_id=self._last_response_id,
                    item_id=item_id,
                )
            )
        return item_id

    def _server_content(self, content: dict[str, Any], now: float) -> None:
        if (transcription := content.get("inputTranscription")) is not None:
            self._input_transcription(_dict(transcription), now)
        model_turn = _dict(content.get("modelTurn"))
        for part in model_turn.get("parts") or []:
            self._model_part(_dict(part), now)
        if (transcription := content.get("outputTranscription")) is not None:
            text = _dict(transcription).get("text") or ""
            turn = self._begin_turn(now)
            if text and not turn.cut:
                item_id = self._assistant()
                self._assistant_text += text
                self._emit(
                    SessionEvent(
                        EventType.TRANSCRIPT,
                        text=text,
                        role=Role.ASSISTANT,
                        response_id=turn.response_id,
                        item_id=item_id,
                        at=now,
                    )
                )
        if content.get("interrupted"):
            self._interrupted(now)
        if content.get("generationComplete") and self._turn is not None:
            self._close_assistant(final=not self._turn.cut)
        if content.get("turnComplete"):
            self._turn_complete(content, now)

    def _model_part(self, part: dict[str, Any], now: float) -> None:
        inline = _dict(part.get("inlineData"))
        if inline:
            audio = _b64decode(inline.get("data"))
            turn = self._begin_turn(now)
            if turn.cut or not audio:
                return
            mime = str(inline.get("mimeType") or wire.OUTPUT_MIME)
            if not mime.startswith("audio/pcm"):
                return  # not audio we can play
            self._emit(
                SessionEvent(
                    EventType.AUDIO_OUTPUT,
                    audio=audio,
                    sample_rate=self.output_rate,
                    response_id=turn.response_id,
                    item_id=self._assistant(),
                    at=now,
                )
            )
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            turn = self._begin_turn(now)
            if not turn.cut:
                item_id = self._assistant()
                self._assistant_text += part["text"]
                self._emit(
                    SessionEvent(
                        EventType.TEXT_OUTPUT,
                        text=part["text"],
                        response_id=turn.response_id,
                        item_id=item_id,
                        at=now,
                    )
                )

    def _input_transcription(self, transcription: dict[str, Any], now: float) -> None:
        text = transcription.get("text") or ""
        if self._user_item is None:
            if not text:
                return
            self._user_item = self._new_id("u")
            self._user_text = ""
            self._user_open = self._turn is None or self._turn.cut
            self._user_final_sent = False
            self.conversation.append(Message(Role.USER, "", self._user_item))
            self.ledger.mark_received(self._user_item)
        if text:
            self._user_text += text
            self.conversation.set_text(self._user_item, self._user_text)
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=text,
                    role=Role.USER,
                    item_id=self._user_item,
                    at=now,
                )
            )
        if transcription.get("finished"):
            self._finish_user_transcript(now)

    def _finish_user_transcript(self, now: float) -> None:
        if self._user_item is not None and not self._user_final_sent and self._user_text:
            self._user_final_sent = True
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=self._user_text.strip(),
                    role=Role.USER,
                    final=True,
                    item_id=self._user_item,
                    at=now,
                )
            )

    def _interrupted(self, now: float) -> None:
        turn = self._turn
        if turn is None:
            return
        if not turn.cut:
            self._cut(turn, "barge_in", now)
        self._user_item = None  # what the caller says now is a new turn

    def _cut(self, turn: _Turn, reason: str, now: float) -> None:
        """Later output of ``turn`` is dropped; INTERRUPTED tells the application to flush."""
        turn.cut = True
        item_id = self._close_assistant(final=False)
        self._emit(
            SessionEvent(
                EventType.INTERRUPTED,
                reason=reason,
                response_id=turn.response_id,
                item_id=item_id,
                at=now,
            )
        )

    def _turn_complete(self, content: dict[str, Any], now: float) -> None:
        turn = self._begin_turn(now)
        self._finish_user_transcript(now)
        self._close_assistant(final=not turn.cut)
        reason = "cancelled" if turn.cut else ("tool_calls" if self._waits(turn) else "completed")
        data: dict[str, Any] = {}
        if content.get("turnCompleteReason"):
            data["turn_complete_reason"] = content["turnCompleteReason"]
        self._turn = None
        self._user_item = None
        self._emit(
            SessionEvent(
                EventType.TURN_END, reason=reason, response_id=turn.response_id, data=data, at=now
            )
        )
        self._maybe_rotate()

    def _waits(self, turn: _Turn) -> bool:
        """The turn waits for BLOCKING calls' results (NON_BLOCKING ones run in the background)."""
        return any(
            c in self._calls
            and not self._calls[c].answered
            and self.settings.scheduling(self._calls[c].name) is None
            for c in turn.calls
        )

    def _cut_turn(self, cause: str, now: float) -> None:
        """The call leaves this connection mid-turn: end the turn here.

        An answer being spoken is cut (INTERRUPTED: the new connection says it again in full); a
        turn waiting for tool results ends with reason "tool_calls" (the new connection carries
        the calls and their results).
        """
        turn = self._turn
        if turn is None or turn.cut:
            return
        turn.cut = True
        if self._assistant_item is not None:
            self._emit(
                SessionEvent(
                    EventType.INTERRUPTED,
                    reason=cause,
                    response_id=turn.response_id,
                    item_id=self._assistant_item,
                    at=now,
                )
            )
        waiting = self._waits(turn)
        self._emit(
            SessionEvent(
                EventType.TURN_END,
                reason="tool_calls" if waiting and self._assistant_item is None else "cancelled",
                response_id=turn.response_id,
                data={"cause": cause},
                at=now,
            )
        )

    # -- tools and usage -------------------------------------------------------------------------

    def _tool_call(self, tool_call: dict[str, Any], now: float) -> None:
        turn = self._begin_turn(now)
        self._close_assistant(final=not turn.cut)
        for raw in tool_call.get("functionCalls") or []:
            call = _dict(raw)
            call_id = call.get("id") or self._new_id("call")
            name = str(call.get("name") or "")
            if call_id in self._calls or self.conversation.find_call(call_id) is not None:
                continue
            arguments = json.dumps(_dict(call.get("args")))
            self.conversation.append(FunctionCall(call_id, name, arguments, call_id))
            self.ledger.mark_received(call_id)
            self._calls[call_id] = _Call(name)
            turn.calls.append(call_id)
            self._emit(
                SessionEvent(
                    EventType.TOOL_CALL,
                    tool_call=ToolCall(call_id, name, arguments),
                    response_id=turn.response_id,
                    item_id=call_id,
                    at=now,
                )
            )

    def _tool_call_cancellation(self, cancellation: dict[str, Any], now: float) -> None:
        ids = tuple(str(i) for i in cancellation.get("ids") or [])
        for call_id in ids:
            call = self._calls.pop(call_id, None)
            if call is not None and not call.answered:
                self._cancelled.add(call_id)
                self.conversation.remove(call_id)
        if ids:
            self._emit(SessionEvent(EventType.TOOL_CALL_CANCELLED, call_ids=ids, at=now))
        self._maybe_rotate()

    def _usage(self, usage: dict[str, Any], now: float) -> None:
        def by_modality(key: str) -> dict[str, int]:
            out: dict[str, int] = {}
            for entry in usage.get(key) or []:
                entry = _dict(entry)
                modality = str(entry.get("modality", ""))
                out[modality] = out.get(modality, 0) + int(entry.get("tokenCount") or 0)
            return out

        prompt = by_modality("promptTokensDetails")
        response = by_modality("responseTokensDetails")
        self._emit(
            SessionEvent(
                EventType.USAGE,
                response_id=self._turn.response_id if self._turn else self._last_response_id,
                at=now,
                usage=Usage(
                    input_tokens=int(usage.get("promptTokenCount") or 0),
                    output_tokens=int(usage.get("responseTokenCount") or 0),
                    total_tokens=int(usage.get("totalTokenCount") or 0),
                    input_audio_tokens=prompt.get("AUDIO", 0),
                    input_text_tokens=prompt.get("TEXT", 0),
                    output_audio_tokens=response.get("AUDIO", 0),
                    output_text_tokens=response.get("TEXT", 0),
                    cached_tokens=int(usage.get("cachedContentTokenCount") or 0),
                ),
            )
        )
