"""Model turns: server content in, output and transcript events out.

A turn runs from the model's first output to ``turnComplete``. Its audio, text and output
transcription become AUDIO_OUTPUT / TEXT_OUTPUT / TRANSCRIPT events on one assistant item; the
caller's input transcription builds the user item. On models that report ``interactionStatus``
(extended thinking) a ``turnComplete`` while the status is IN_PROGRESS closes only a spoken chunk
(its transcript is final, the turn goes on) and the turn ends at IDLE (or the deprecated
REQUIRES_ACTION); without the field ``turnComplete`` ends the turn. Barge-in
(``interrupted``), a client :meth:`interrupt` and the call leaving the connection mid-turn cut
the turn: INTERRUPTED tells the application to flush, and later output of the cut turn is
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...conversation import Message
from ...errors import ProviderProtocolError
from ...events import EventType, Role, SessionEvent
from . import wire
from .base import ProtocolBase, _dict
from .settings import PROVIDER

__all__ = ["TurnsMixin"]


@dataclass(slots=True)
class _Turn:
    """A model turn: from its first output to ``turnComplete``."""

    response_id: str
    cut: bool = False  # interrupted: later output is dropped
    calls: list[str] = field(default_factory=list)
    #: ``interactionStatus`` IN_PROGRESS: background work goes on, ``turnComplete`` closes only
    #: a spoken chunk.
    in_progress: bool = False
    #: A ``turnComplete`` arrived while in progress: the turn ends at IDLE.
    held: bool = False


def _b64decode(data: object) -> bytes:
    try:
        return wire.b64decode(data if isinstance(data, str) else "")
    except ValueError as exc:
        raise ProviderProtocolError(
            f"{PROVIDER}: audio data is not valid base64", provider=PROVIDER
        ) from exc


class TurnsMixin(ProtocolBase):
    """Turn and transcript assembly for :class:`~.protocol.GeminiLiveProtocol`."""

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
        status = content.get("interactionStatus")
        if status == "IN_PROGRESS" and (self._turn is not None or content.get("turnComplete")):
            self._begin_turn(now).in_progress = True
        elif status in ("IDLE", "REQUIRES_ACTION") and self._turn is not None:
            self._turn.in_progress = False  # REQUIRES_ACTION: the deprecated name of IDLE
        current = self._turn
        if content.get("turnComplete"):
            if current is not None and current.in_progress and not current.cut:
                self._chunk_complete(current, now)
            else:
                self._turn_complete(content, now)
        elif current is not None and current.held and not current.in_progress:
            self._turn_complete(content, now)  # IDLE after a held turnComplete

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

    def _chunk_complete(self, turn: _Turn, now: float) -> None:
        """``turnComplete`` while the interaction is IN_PROGRESS: one spoken chunk (a filler)
        is complete; the turn goes on until ``interactionStatus`` IDLE."""
        turn.held = True
        self._finish_user_transcript(now)
        self._close_assistant(final=True)
        self._user_item = None

    def _turn_complete(self, content: dict[str, Any], now: float) -> None:
        turn = self._begin_turn(now)
        self._finish_user_transcript(now)
        self._close_assistant(final=not turn.cut)
        reason = "cancelled" if turn.cut else ("tool_calls" if self._waits(turn) else "completed")
        data: dict[str, Any] = {}
        if content.get("turnCompleteReason"):
            data["turn_complete_reason"] = content["turnCompleteReason"]
        if content.get("interactionStatus"):
            data["interaction_status"] = content["interactionStatus"]
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
            (call := self.tools.get(c)) is not None
            and not call.answered
            and self.settings.blocking(call.name)
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
