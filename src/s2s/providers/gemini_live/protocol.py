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

import json
import secrets
from collections.abc import Callable
from typing import Any

from ...config import Config
from ...conversation import Conversation, HistoryItem, Message
from ...errors import (
    InvalidRequestError,
    ModelUnavailableError,
    ProviderConnectionError,
    ProviderProtocolError,
    S2SError,
)
from ...events import EventType, Role, SessionEvent, Usage
from ...log import logger
from ...protocol import Continuation
from ..shared import ToolLedger
from . import wire
from .base import State, _dict
from .closes import close_error
from .replay import ReplayMixin
from .resumption import Ledger, Plan, Record, item_key, plan
from .settings import PROVIDER, GeminiSettings
from .tools import ToolsMixin
from .turns import TurnsMixin, _Turn

__all__ = ["GeminiLiveProtocol", "State"]

log = logger.getChild(PROVIDER)


class GeminiLiveProtocol(TurnsMixin, ToolsMixin, ReplayMixin):
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
        # Another provider's continuation (a failover) says nothing of what its audio covers:
        # all of it goes out as caller input once set up, before anything newer.
        foreign = continuation is not None and "pending" not in continuation.state
        self._foreign_audio = self._carried_audio if foreign else b""
        covered_audio = carried.get("covered_audio", b"")
        self._covered_audio = covered_audio if isinstance(covered_audio, bytes) else b""
        self._on_handle_refused = on_handle_refused
        self._tag = secrets.token_hex(3)
        self._seq = 0
        self._queued: list[tuple[str, Any]] = []
        self._turn: _Turn | None = None
        self._last_response_id: str | None = None
        self.tools = ToolLedger(
            PROVIDER, self.conversation, cancelled=(str(i) for i in carried.get("cancelled") or [])
        )
        self._held: list[HistoryItem] = []
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
            and not self.tools.waiting
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
        error = close_error(code, reason, after_go_away=self._go_away_at is not None)
        handle = self.ledger.handle
        if (
            setting_up
            and handle
            and isinstance(error, InvalidRequestError)
            and not isinstance(error, ModelUnavailableError)
        ):
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
        if reason == "failover":  # another provider has no handle: it needs the whole open turn
            audio = b"".join(r.audio for r in self.ledger.pending if r.kind == "audio")
        state["cancelled"] = self.tools.cancelled
        state["activity_open"] = self._activity_open
        return Continuation(conversation, audio, state, reason)

    # -- application input -----------------------------------------------------------------------

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

    # -- usage -----------------------------------------------------------------------------------

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
