"""Sans-I/O Nova Sonic protocol: one bidirectional stream's events in, session events out.

Frames are single Nova events as JSON text (the transport does the signing and framing). On
:meth:`~NovaProtocol.connection_made` the whole opening goes out at once, because Nova answers
nothing until the caller speaks::

    sessionStart, promptStart (voice, 24 kHz output, tools as stringified JSON Schemas),
    SYSTEM text block, history text blocks, the AUDIO block (open for the whole stream),
    then the caller audio carried over from the previous stream, if any.

The stream is usable once the transport reports the service's HTTP 200 (``streamAccepted``).
:meth:`~NovaProtocol.close` sends the orderly end: ``contentEnd`` for the audio, ``promptEnd``,
``sessionEnd`` (the transport then sends the signed empty frame).

Output mapping: the USER FINAL text block is the caller's transcript; ASSISTANT SPECULATIVE text
is a preview (partial transcript), FINAL text the transcript of what was spoken (and what goes
into history); audio arrives at 24 kHz; a ``toolUse`` becomes a TOOL_CALL when its block ends;
``{ "interrupted" : true }`` or a ``contentEnd`` INTERRUPTED is a barge-in; a turn ends with the
FINAL text block's END_TURN (or ``completionEnd``); usage events become USAGE.

Continuation (Nova streams last at most 8 minutes and there is no server-side resumption): after
``rotate_after_s``, at the first moment no answer is in progress, no tool call is outstanding and
the caller is not speaking, :attr:`rotation` is set (and unconditionally at ``rotate_deadline_s``).
Credentials that expire (SSO, assume-role) bring both moments forward, so the next stream is
signed with fresh ones in time.
The next stream gets the conversation within Nova's history rules (:mod:`.history`) and the
caller audio the model has not transcribed yet (a rolling buffer, cleared at each USER
transcript), so nothing said during the switch is lost. Tool calls made on an earlier stream
stay answerable: their results reach the new stream as text, since its model never saw the call.

Parts kept elsewhere: the error mapping (:mod:`.failures`), the untranscribed caller audio
(:mod:`.caller_audio`), history (:mod:`.history`); the tool calls are a shared
:class:`~s2s.providers.shared.ToolLedger` (a *carried* call is one from an earlier stream).
"""

from __future__ import annotations

import base64
import binascii
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...config import Config, ToolCall, ToolResult
from ...conversation import Conversation, FunctionCall, Message
from ...errors import ProviderConnectionError, ProviderProtocolError, S2SError
from ...events import EventType, Role, SessionEvent
from ...protocol import Continuation, ProviderProtocol
from ..shared import ToolLedger, check_open, result_text
from . import wire
from .caller_audio import REPLAY_CHUNK_BYTES, CallerAudio
from .failures import error_for
from .history import plan, split_text
from .settings import PROVIDER, NovaSettings

__all__ = ["NovaProtocol", "State", "error_for"]

#: Move to fresh credentials this long before a stream's expire (between answers), and this
#: long before at the latest; expiries closer than ``CREDENTIALS_IGNORED_S`` are not acted on.
CREDENTIALS_MARGIN_S = 180.0
CREDENTIALS_DEADLINE_S = 60.0
CREDENTIALS_IGNORED_S = 240.0


class State(enum.Enum):
    CONNECTING = "connecting"  # nothing sent yet
    OPENING = "opening"  # opening events sent; waiting for the service's answer
    READY = "ready"
    CLOSED = "closed"


@dataclass(slots=True)
class _Block:
    """One output content block, between its contentStart and contentEnd."""

    type: str
    role: str
    stage: str | None
    texts: list[str] = field(default_factory=list)
    tool: dict[str, Any] | None = None


@dataclass(slots=True)
class _Turn:
    """The assistant's answer in progress."""

    id: str
    cut_by_client: bool = False
    interrupted: bool = False
    audio_done: bool = False


class NovaProtocol(ProviderProtocol):
    """One Nova Sonic bidirectional stream (see the module docstring)."""

    provider = PROVIDER
    input_rate = wire.INPUT_RATE
    output_rate = wire.OUTPUT_RATE

    def __init__(
        self,
        config: Config,
        settings: NovaSettings,
        continuation: Continuation | None = None,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        super().__init__(config)
        self.settings = settings
        self.state = State.CONNECTING
        self._new_id = new_id
        self.prompt_name = new_id()
        self.audio_content = new_id()
        self.conversation = continuation.conversation.copy() if continuation else Conversation()
        self._audio = CallerAudio(
            continuation.pending_audio if continuation else b"",
            int(settings.replay_audio_s * wire.INPUT_RATE) * 2,
        )
        #: Calls made on this stream are answered with a TOOL block; carried ones as text.
        self._calls = ToolLedger(PROVIDER, self.conversation)
        self._blocks: dict[str, _Block] = {}
        self._turn: _Turn | None = None
        self._turns = 0
        self._awaiting_answer = False
        self._held: dict[str, Any] | None = None
        self._connected_at: float | None = None
        self._rotation_due = False
        self._credentials_expire_at: float | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def idle(self) -> bool:
        return (
            self._turn is None
            and not self._awaiting_answer
            and not any(not call.carried for call in self._calls.unanswered)
        )

    def _rotate_at(self, connected_at: float) -> tuple[float, float]:
        """When to move between answers, and when regardless (stream or credentials limit)."""
        soft = connected_at + self.settings.rotate_after_s
        hard = connected_at + self.settings.rotate_deadline_s
        expire = self._credentials_expire_at
        if expire is not None:
            soft = min(soft, expire - CREDENTIALS_MARGIN_S)
            hard = min(hard, expire - CREDENTIALS_DEADLINE_S)
        return soft, hard

    @property
    def deadline(self) -> float | None:
        if self._connected_at is None or self.state is State.CLOSED or self.rotation:
            return None
        soft, hard = self._rotate_at(self._connected_at)
        return hard if self._rotation_due else soft

    def timer_expired(self, now: float) -> None:
        if self._connected_at is None or self.rotation or self.state is State.CLOSED:
            return
        soft, hard = self._rotate_at(self._connected_at)
        if now >= hard:
            self.rotation = self._rotation_reason(now)
        elif now >= soft:
            self._rotation_due = True
            self._maybe_rotate(now)

    def _rotation_reason(self, now: float) -> str:
        expire = self._credentials_expire_at
        if expire is not None and expire - now <= CREDENTIALS_MARGIN_S:
            return "credentials_expiring"
        return "session_limit"

    def _maybe_rotate(self, now: float) -> None:
        if (
            self._rotation_due
            and not self.rotation
            and self.state is State.READY
            and self.idle
            and not self._audio.speaking(now)
        ):
            self.rotation = self._rotation_reason(now)

    def connection_made(self, now: float) -> None:
        self._connected_at = now
        self.state = State.OPENING
        s = self.settings
        p = self.prompt_name
        self._send(wire.session_start(s.max_tokens, s.top_p, s.temperature, s.endpointing))
        self._send(wire.prompt_start(p, s.voice, list(s.tools)))
        self._send_text_block("SYSTEM", s.instructions, interactive=False)
        carried = plan(self.conversation)
        for turn in carried.history:
            for frame in wire.text_block(p, self._new_id(), turn.role, list(turn.pieces), False):
                self._send(frame)
        self._send(wire.audio_start(p, self.audio_content))
        replay = self._audio.replay()
        for start in range(0, len(replay), REPLAY_CHUNK_BYTES):
            chunk = replay[start : start + REPLAY_CHUNK_BYTES]
            self._send(wire.audio_input(p, self.audio_content, chunk))
        if carried.unanswered:
            self._send_text_block("USER", carried.unanswered, interactive=True)
            self._awaiting_answer = True

    def close(self, now: float) -> None:
        if self.state in (State.OPENING, State.READY):
            self._send(wire.content_end(self.prompt_name, self.audio_content))
            self._send(wire.prompt_end(self.prompt_name))
            self._send(wire.session_end())
        self.state = State.CLOSED

    def continuation(self, reason: str) -> Continuation:
        return Continuation(
            conversation=self.conversation.copy(),
            pending_audio=self._audio.pending(),
            state={},
            reason=reason,
        )

    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        was_closing = self.state is State.CLOSED
        self.state = State.CLOSED
        held = self._held
        if held is not None:
            status, retryable = held.get("status"), held.get("retryable")
            return error_for(
                str(held.get("type") or ""),
                str(held.get("message") or ""),
                status if isinstance(status, int) else None,
                retryable=retryable if isinstance(retryable, bool) else None,
            )
        if was_closing:
            return None
        return ProviderConnectionError(
            f"{PROVIDER}: the stream ended unexpectedly ({reason or 'no reason given'})",
            provider=PROVIDER,
        )

    # -- application input -----------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        check_open(self.state is State.CLOSED, "Nova", what)

    def _send_text_block(self, role: str, text: str, *, interactive: bool) -> None:
        pieces = split_text(text) or [text]
        for frame in wire.text_block(self.prompt_name, self._new_id(), role, pieces, interactive):
            self._send(frame)

    def send_audio(self, pcm: bytes, now: float) -> None:
        self._check_open("send_audio")
        if not pcm:
            return
        self._audio.add(pcm, now)
        self._send(wire.audio_input(self.prompt_name, self.audio_content, pcm))

    def send_text(self, text: str, now: float) -> None:
        self._check_open("send_text")
        self.conversation.append(Message(Role.USER, text))
        self._send_text_block("USER", text, interactive=True)
        self._awaiting_answer = True

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        call = self._calls.answer(result)  # refuses unknown and answered calls
        self._calls.discard(call.id)
        output = result_text(result.content, result.is_error)
        if not call.carried:
            content = self._new_id()
            for frame in wire.tool_result_block(self.prompt_name, content, result.call_id, output):
                self._send(frame)
        else:
            # The model on this stream never saw the call: tell it the outcome in words.
            outcome = "failed with" if result.is_error else "returned"
            self._send_text_block(
                "USER",
                f"The {call.name} tool you asked for earlier (input {call.call.arguments}) "
                f"{outcome} {output}.",
                interactive=True,
            )
            self._awaiting_answer = True

    def interrupt(self, now: float) -> None:
        """Nova has no cancel event: stop delivering the answer, which the model still finishes."""
        self._check_open("interrupt")
        turn = self._turn
        if turn is None or turn.interrupted:
            return
        turn.interrupted = turn.cut_by_client = True
        self._emit(
            SessionEvent(EventType.INTERRUPTED, reason="client", response_id=turn.id, at=now)
        )

    # -- provider output -------------------------------------------------------------------------

    def receive_data(self, data: str | bytes, now: float) -> None:
        try:
            kind, body = wire.parse_output(data)
        except ValueError as exc:
            raise ProviderProtocolError(
                f"{PROVIDER}: cannot parse a stream event: {exc}", provider=PROVIDER
            ) from exc
        if kind == "streamAccepted":
            if self.state is State.OPENING:
                self.state = State.READY
            left = body.get("credentialsExpireIn")
            if isinstance(left, (int, float)) and left > CREDENTIALS_IGNORED_S:
                self._credentials_expire_at = now + left
        elif kind == "exception":
            self._held = body  # the stream ends right after it
        else:
            handler = getattr(self, "_on_" + kind, None)
            if handler is not None:
                handler(body, now)
        self._maybe_rotate(now)

    def _on_contentStart(self, body: dict[str, Any], now: float) -> None:
        block = _Block(
            type=str(body.get("type", "")),
            role=str(body.get("role", "")),
            stage=wire.generation_stage(body),
        )
        self._blocks[str(body.get("contentId", ""))] = block
        if block.role == "USER" and self._turn is not None and self._turn.audio_done:
            self._end_turn(now)  # the answer's FINAL text never came
        if block.role in ("ASSISTANT", "TOOL") and self._turn is None:
            self._turns += 1
            self._turn = _Turn(id=f"{body.get('completionId', 'completion')}#{self._turns}")
            self._awaiting_answer = False
            self._emit(SessionEvent(EventType.RESPONSE_STARTED, response_id=self._turn.id, at=now))

    def _on_textOutput(self, body: dict[str, Any], now: float) -> None:
        block = self._blocks.get(str(body.get("contentId", "")))
        text = str(body.get("content", ""))
        if block is None:
            return
        if block.role == "ASSISTANT" and wire.is_interrupted_marker(text):
            self._barge_in(now)
            return
        block.texts.append(text)
        turn = self._turn
        if (
            block.role == "ASSISTANT"
            and block.stage == "SPECULATIVE"
            and turn is not None
            and not turn.interrupted
        ):
            self._emit(
                SessionEvent(
                    EventType.TRANSCRIPT,
                    text=text,
                    role=Role.ASSISTANT,
                    response_id=turn.id,
                    item_id=str(body.get("contentId")),
                    at=now,
                )
            )

    def _on_audioOutput(self, body: dict[str, Any], now: float) -> None:
        turn = self._turn
        try:
            audio = base64.b64decode(str(body.get("content", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderProtocolError(
                f"{PROVIDER}: audioOutput content is not valid base64", provider=PROVIDER
            ) from exc
        if turn is not None and turn.interrupted:
            return
        self._emit(
            SessionEvent(
                EventType.AUDIO_OUTPUT,
                audio=audio[: len(audio) // 2 * 2],
                sample_rate=self.output_rate,
                response_id=turn.id if turn else None,
                item_id=str(body.get("contentId")),
                at=now,
            )
        )

    def _on_toolUse(self, body: dict[str, Any], now: float) -> None:
        block = self._blocks.get(str(body.get("contentId", "")))
        if block is not None:
            block.tool = body

    def _on_contentEnd(self, body: dict[str, Any], now: float) -> None:
        content_id = str(body.get("contentId", ""))
        block = self._blocks.pop(content_id, None)
        if block is None:
            return
        stop = str(body.get("stopReason", ""))
        text = "".join(block.texts).strip()
        if block.role == "USER" and block.type == "TEXT":
            self._user_transcript(text, content_id, now)
        elif block.type == "TOOL" and block.tool is not None:
            self._tool_use(block.tool, now)
        elif block.role == "ASSISTANT":
            if stop == "INTERRUPTED":
                self._barge_in(now)
            if block.type == "AUDIO" and stop == "END_TURN" and self._turn is not None:
                self._turn.audio_done = True
            elif block.type == "TEXT" and block.stage != "SPECULATIVE":
                self._assistant_final(text, content_id, now)
                if stop in ("END_TURN", "INTERRUPTED"):
                    self._end_turn(now)

    def _on_usageEvent(self, body: dict[str, Any], now: float) -> None:
        usage, totals = wire.usage_of(body)
        self._emit(
            SessionEvent(
                EventType.USAGE,
                usage=usage,
                response_id=self._turn.id if self._turn else None,
                data={"totals": totals},
                at=now,
            )
        )

    def _on_completionEnd(self, body: dict[str, Any], now: float) -> None:
        if self._turn is not None:
            self._end_turn(now)

    # -- output helpers --------------------------------------------------------------------------

    def _user_transcript(self, text: str, content_id: str, now: float) -> None:
        self._audio.transcribed()  # the model has this audio now
        if not text:
            return
        self.conversation.append(Message(Role.USER, text, content_id))
        self._awaiting_answer = True
        self._emit(
            SessionEvent(
                EventType.TRANSCRIPT,
                text=text,
                role=Role.USER,
                final=True,
                item_id=content_id,
                at=now,
            )
        )

    def _assistant_final(self, text: str, content_id: str, now: float) -> None:
        if not text:
            return
        self.conversation.append(Message(Role.ASSISTANT, text, content_id))
        turn = self._turn
        if turn is not None and turn.cut_by_client:
            return  # the caller was not to hear it
        self._emit(
            SessionEvent(
                EventType.TRANSCRIPT,
                text=text,
                role=Role.ASSISTANT,
                final=True,
                response_id=turn.id if turn else None,
                item_id=content_id,
                at=now,
            )
        )

    def _tool_use(self, tool: dict[str, Any], now: float) -> None:
        call_id = str(tool.get("toolUseId", ""))
        name = str(tool.get("toolName", ""))
        arguments = str(tool.get("content") or "{}")
        if not call_id or self._calls.open(ToolCall(call_id, name, arguments)) is None:
            return  # no id, or seen before
        self.conversation.append(FunctionCall(call_id, name, arguments, call_id))
        turn = self._turn
        self._emit(
            SessionEvent(
                EventType.TOOL_CALL,
                tool_call=ToolCall(call_id, name, arguments),
                response_id=turn.id if turn else None,
                item_id=call_id,
                at=now,
            )
        )
        self._end_turn(now, "tool_calls")

    def _barge_in(self, now: float) -> None:
        turn = self._turn
        if turn is None or turn.interrupted:
            return
        turn.interrupted = True
        self._emit(
            SessionEvent(EventType.INTERRUPTED, reason="barge_in", response_id=turn.id, at=now)
        )

    def _end_turn(self, now: float, reason: str | None = None) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        if reason is None:
            reason = "cancelled" if turn.interrupted else "completed"
        self._emit(SessionEvent(EventType.TURN_END, reason=reason, response_id=turn.id, at=now))
