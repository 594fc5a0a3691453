"""One emulated Gemini Live connection: setup, input, answers, tools and resumption updates.

Behaviour is deterministic (see :mod:`s2s.emulators.behavior`); protocol behaviour follows the
production server (protocols.md §2): ``setup`` first and once, every message counted from 0 (the
``setup``) for ``lastConsumedClientMessageIndex``, server VAD on input energy (or manual
``activityStart``/``activityEnd``), barge-in cutting the answer with ``interrupted``, BLOCKING
tool calls pausing the turn and NON_BLOCKING ones answered by their ``scheduling``, a caller turn
cancelling pending calls (``toolCallCancellation``), and ``sessionResumptionUpdate`` at quiet
moments with a handle that really restores the conversation.

What depends on the model id (default tool behaviour, thinking, roles, ``interactionStatus``)
comes from :mod:`.models` via :mod:`.setup`; caller audio and speech are in :mod:`.audio`.
Extended-thinking models speak a filler (``turnComplete`` with ``interactionStatus:
IN_PROGRESS``), reason ``thinking_delay_s``, then answer and end with ``IDLE``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...audio.resample import StreamResampler
from ...providers.gemini_live import wire
from ...tasks import TaskSet
from .. import behavior
from ..vad import voiced_seconds
from . import messages as msg
from .audio import AudioMixin
from .models import Reasons, rules_for
from .options import QUOTA_REASON, EmulatorOptions, HandleStore
from .setup import (
    POLICY_VIOLATION,
    SessionSetup,
    client_content_problem,
    configure,
    declared_behaviors,
    setup_problem,
    tool_response_problem,
)
from .state import Item, ModelState
from .validation import INVALID_ARGUMENT, Refusal, parse

__all__ = ["EmulatedSession", "EmulatorOptions", "HandleStore"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]

#: What a NON_BLOCKING call's turn says while the tool runs.
BACKGROUND_REPLY = "One moment while I check that."
#: What an extended-thinking model says while it reasons in the background.
THINKING_FILLER = "Let me think about that."


@dataclass(slots=True)
class _Response:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class EmulatedSession(AudioMixin):
    """Server state for one connection. ``handle()`` each client frame."""

    def __init__(
        self,
        send: Send,
        close: Close,
        options: EmulatorOptions,
        store: HandleStore,
        *,
        api_version: str,
        api_key: str,
        constrained: bool = False,
    ) -> None:
        self._send_raw = send
        self._close = close
        self.options = options
        self.store = store
        self.api_version = api_version
        self.api_key = api_key
        self.constrained = constrained
        self.setup: SessionSetup | None = None
        self.state = ModelState(chain=secrets.token_hex(8), started=time.monotonic())
        self.resumed = False
        self._opened_chain: str | None = None
        self.index = -1  # index of the last client message consumed (setup is 0)
        self.closed = False
        self.close_code: int | None = None
        self.frames_in: list[str | bytes] = []
        self.frames_out: list[dict[str, Any]] = []
        self.audio_received_ms = 0.0
        self._response: _Response | None = None
        self._pending: dict[str, Item] = {}  # BLOCKING calls waiting for a response
        self._background: dict[str, str] = {}  # NON_BLOCKING calls: id -> name
        self._answer_when_idle = False
        self._resamplers: dict[int, StreamResampler] = {}
        self._updated_at_index = -1
        self._quota_closing = False
        self._initial_history = False  # clientContent is seeded history until turnComplete
        #: Background work of this connection (answers, timers), cancelled on shutdown.
        self.tasks = TaskSet()

    # -- plumbing ------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.options.message_delay_s:
            await asyncio.sleep(self.options.message_delay_s)
        if self.options.record:
            self.frames_out.append(message)
        await self._send_raw(message)

    async def refuse(self, code: int, reason: str) -> None:
        """Close the connection the way the server reports errors.

        A close frame holds at most 123 bytes of reason, so longer reasons arrive cut short, as
        they do from production.
        """
        if self.closed:
            return
        self.close_code = code
        await self._close(code, reason.encode()[:123].decode(errors="ignore"))
        self.shutdown()

    def shutdown(self) -> None:
        self.closed = True
        chain = self._opened_chain
        if chain is not None:
            self._opened_chain = None
            remaining = self.store.open_chains.get(chain, 1) - 1
            if remaining > 0:
                self.store.open_chains[chain] = remaining
            else:
                self.store.open_chains.pop(chain, None)
        self.tasks.cancel()

    @property
    def generating(self) -> bool:
        return self._response is not None

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, frame: str | bytes) -> None:
        if self.options.record:
            self.frames_in.append(frame)
        self.index += 1
        parsed = parse(frame)
        if isinstance(parsed, Refusal):
            await self.refuse(parsed.code, parsed.reason)
            return
        message, kind = parsed
        if self.setup is None:
            if kind != "setup" or message.setup is None:
                await self.refuse(
                    INVALID_ARGUMENT,
                    f"The first message must be a setup message; got {kind}.",
                )
                return
            await self._on_setup(message.setup)
            return
        if self.options.quota_exhausted:
            self._quota_close(self.options.quota_mid_session_s)
        if self.setup.refuse_first_send:
            await self.refuse(INVALID_ARGUMENT, Reasons.INVALID_ARGUMENT)
            return
        if kind == "setup":
            await self.refuse(
                INVALID_ARGUMENT, "setup may only be sent once, as the first message."
            )
        elif kind == "realtime_input" and message.realtime_input is not None:
            await self._on_realtime_input(message.realtime_input)
        elif kind == "client_content" and message.client_content is not None:
            await self._on_client_content(message.client_content)
        elif kind == "tool_response" and message.tool_response is not None:
            await self._on_tool_response(message.tool_response)
        elif kind == "context_update" and message.context_update is not None:
            await self._on_context_update(message.context_update)

    # -- setup ---------------------------------------------------------------------------------

    async def _check_key(self) -> bool:
        if not self.api_key:
            await self.refuse(
                POLICY_VIOLATION,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
            return False
        wanted = self.options.api_key
        if wanted is not None and self.api_key != wanted:
            await self.refuse(INVALID_ARGUMENT, "API key not valid. Please pass a valid API key.")
            return False
        return True

    async def _on_setup(self, setup: wire.Setup) -> None:
        if not await self._check_key():
            return
        problem = setup_problem(setup, self.api_version)
        if problem is not None:
            await self.refuse(*problem)
            return
        model = setup.model.removeprefix("models/")
        rules = rules_for(model)
        assert rules is not None  # setup_problem refuses models that are not served
        resumption = setup.session_resumption
        if resumption is not None and resumption.handle:
            found = self.store.get(resumption.handle)
            if found is None:
                await self.refuse(
                    INVALID_ARGUMENT, "The session resumption handle is invalid or has expired."
                )
                return
            state, handle_model = found
            if self.options.refuse_resume_while_open and self.store.open_chains.get(state.chain):
                await self.refuse(1011, "Internal error occurred.")
                return
            if handle_model != model:
                await self.refuse(
                    INVALID_ARGUMENT,
                    f"The model cannot change on resumption (was {handle_model}, got {model}).",
                )
                return
            self.state = state
            self.resumed = True
        self.setup = configure(setup, model, rules)
        history = setup.history_config
        self._initial_history = bool(history and history.initial_history_in_client_content)
        self._opened_chain = self.state.chain
        self.store.open_chains[self._opened_chain] = (
            self.store.open_chains.get(self._opened_chain, 0) + 1
        )
        if self.state.vad is None and self.setup.automatic_vad:
            self.state.vad = self._new_vad()
        elif self.state.vad is not None:
            self.state.vad.threshold_dbfs = self.setup.start_threshold_dbfs
            self.state.vad.silence_ms = self.setup.silence_ms
        await self.send(msg.setup_complete(self.state.chain))
        if self.setup.resumption:
            await self._update_resumption()
            self.tasks.spawn(self._periodic_updates())
        if not self.setup.compression:
            self.tasks.spawn(self._session_limit())
        if self.options.quota_exhausted:
            self._quota_close(self.options.quota_close_after_s)

    def _quota_close(self, after_s: float) -> None:
        """Out of quota: close 1011 with the production sentence ``after_s`` from now."""
        if self._quota_closing:
            return
        self._quota_closing = True

        async def close_later() -> None:
            await asyncio.sleep(after_s)
            await self.refuse(1011, QUOTA_REASON)

        self.tasks.spawn(close_later())

    async def _session_limit(self) -> None:
        left = self.options.session_limit_s - (time.monotonic() - self.state.started)
        await asyncio.sleep(max(0.0, left))
        self.store.expired_chains.add(self.state.chain)
        await self.refuse(1011, "Deadline expired before operation could complete.")

    # -- resumption ----------------------------------------------------------------------------

    @property
    def resumable(self) -> bool:
        return (
            self._response is None
            and not self._pending
            and not self._background
            and not self._answer_when_idle
        )

    async def _update_resumption(self) -> None:
        setup = self.setup
        if setup is None or not setup.resumption or self.closed:
            return
        self._updated_at_index = self.index
        if not self.resumable:
            await self.send(msg.resumption_update(None, None))
            return
        handle = self.store.put(self.state, setup.model)
        index = self.index if setup.transparent and self.options.transparent_index else None
        await self.send(msg.resumption_update(handle, index))

    async def _periodic_updates(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.options.resumption_interval_s)
            if self.index > self._updated_at_index:
                await self._update_resumption()

    # -- input ---------------------------------------------------------------------------------

    async def _on_realtime_input(self, data: wire.RealtimeInput) -> None:
        setup = self.setup
        assert setup is not None
        blobs = [b for b in [data.audio, *(data.media_chunks or [])] if b is not None]
        for blob in blobs:
            pcm = await self._decode_audio(blob)
            if pcm is None:
                return
            await self._on_audio(pcm)
        if data.activity_start is not None or data.activity_end is not None:
            if setup.automatic_vad:
                await self.refuse(
                    INVALID_ARGUMENT,
                    "activity_start and activity_end require automatic activity detection to "
                    "be disabled (realtime_input_config.automatic_activity_detection.disabled).",
                )
                return
            if data.activity_start is not None:
                await self._caller_starts()
                self.state.activity = bytearray()
            if data.activity_end is not None and self.state.activity is not None:
                audio, self.state.activity = bytes(self.state.activity), None
                heard = voiced_seconds(audio, wire.INPUT_RATE, setup.start_threshold_dbfs)
                await self._caller_turn(heard)
        if data.audio_stream_end and self.state.vad is not None and self.state.vad.in_speech:
            silence = bytes(int(self.state.vad.silence_ms + 20) * wire.INPUT_RATE // 1000 * 2)
            await self._feed_vad(silence)
        if data.text:
            await self._caller_starts()
            self.state.items.append(Item("user", "text", text=data.text))
            await self._answer()

    async def _interrupt_answer(self) -> None:
        """Stop the answer being generated (it sends ``interrupted`` and ``turnComplete``)."""
        response = self._response
        if response is not None:
            response.cancel.set()
            if response.task is not None:
                await asyncio.shield(response.task)

    async def _caller_starts(self) -> None:
        """The caller started a turn: barge in on the answer, drop the calls it was waiting for."""
        assert self.setup is not None
        if not self.setup.interrupts:
            return
        await self._interrupt_answer()
        if self._pending:
            ids = list(self._pending)
            self._pending.clear()
            self.state.items = [i for i in self.state.items if i.call_id not in ids]
            await self.send(msg.tool_call_cancellation(ids))
            await self.send(msg.server_content(interrupted=True))
            await self.send(msg.server_content(turnComplete=True))

    async def _caller_turn(self, heard_s: float) -> None:
        assert self.setup is not None
        text = behavior.audio_transcript(heard_s)
        self.state.items.append(Item("user", "audio", text=text, heard_s=heard_s))
        if self.setup.input_transcription:
            words = text.split(" ")
            for n, word in enumerate(words):
                last = n == len(words) - 1
                await self.send(msg.input_transcription(word if last else word + " ", last))
        await self._answer()

    async def _on_client_content(self, content: wire.ClientContent) -> None:
        assert self.setup is not None
        problem = client_content_problem(content, self.setup.rules, initial=self._initial_history)
        if problem is not None:
            await self.refuse(*problem)
            return
        seeding = self._initial_history
        if content.turn_complete:
            self._initial_history = False
        for turn in content.turns or []:
            role = "model" if turn.role == "model" else "user"
            for part in turn.parts or []:
                if part.text is not None:
                    self.state.items.append(Item(role, "text", text=part.text))
                elif part.function_call is not None:
                    call = part.function_call
                    self.state.items.append(
                        Item("model", "call", call_id=call.id, name=call.name, args=call.args or {})
                    )
                elif part.function_response is not None:
                    answer = part.function_response
                    self._pending.pop(answer.id or "", None)
                    self._background.pop(answer.id or "", None)
                    self.state.items.append(
                        Item(
                            "user",
                            "response",
                            call_id=answer.id,
                            name=answer.name,
                            output=answer.response,
                        )
                    )
        if content.turn_complete and not seeding:  # seeded history triggers no answer
            await self._interrupt_answer()  # turnComplete interrupts generation on 3.x models
            await self._answer()

    async def _on_tool_response(self, data: wire.ToolResponse) -> None:
        assert self.setup is not None
        problem = tool_response_problem(data, self.setup.rules)
        if problem is not None:
            await self.refuse(*problem)
            return
        answer_now = False
        for answer in data.function_responses or []:
            call_id = answer.id or ""
            if call_id in self._pending:
                self._pending.pop(call_id)
                answer_now = True
            elif call_id in self._background:
                self._background.pop(call_id)
                scheduling = answer.scheduling or "WHEN_IDLE"
                if scheduling == "INTERRUPT":
                    await self._interrupt_answer()
                    answer_now = True
                elif scheduling != "SILENT":
                    self._answer_when_idle = True
            else:
                await self.refuse(
                    INVALID_ARGUMENT,
                    f'Function response id "{call_id}" does not match a pending function call.',
                )
                return
            self.state.items.append(
                Item("user", "response", call_id=call_id, name=answer.name, output=answer.response)
            )
        if answer_now and not self._pending:
            await self._answer()
        elif self._answer_when_idle and self._response is None:
            self._answer_when_idle = False
            await self._answer()
        elif self.resumable:
            await self._update_resumption()

    async def _on_context_update(self, data: wire.ContextUpdate) -> None:
        assert self.setup is not None
        if data.tools is not None:
            self.setup.declared = declared_behaviors(data.tools.tools or [], self.setup.rules)

    # -- answers -------------------------------------------------------------------------------

    async def _answer(self) -> None:
        """Answer the newest input now, or after the answer in progress."""
        if self._response is not None:
            self._answer_when_idle = True
            return
        response = _Response()
        self._response = response
        response.task = self.tasks.spawn(self._run(response))

    async def _run(self, response: _Response) -> None:
        setup = self.setup
        assert setup is not None
        if self.options.response_delay_s:
            try:
                await asyncio.wait_for(response.cancel.wait(), self.options.response_delay_s)
            except TimeoutError:
                pass
        reply = self.state.plan(set(setup.declared))
        thinking = setup.rules.interaction_status
        text = reply.text
        blocking = False
        if reply.calls and not response.cancel.is_set():
            calls = []
            for request in reply.calls:
                call_id = f"function-call-{secrets.token_hex(8)}"
                item = Item(
                    "model", "call", call_id=call_id, name=request.name, args=request.arguments
                )
                self.state.items.append(item)
                calls.append({"id": call_id, "name": request.name, "args": request.arguments})
                if setup.declared.get(request.name) == "NON_BLOCKING":
                    self._background[call_id] = request.name
                else:
                    self._pending[call_id] = item
                    blocking = True
            await self.send(msg.tool_call(calls))
            if blocking:
                self._response = None  # the turn waits for the results
                return
            text = BACKGROUND_REPLY
        elif thinking and not reply.after_tools and not response.cancel.is_set():
            # Background reasoning: a spoken filler closes its own chunk, the answer follows.
            await self._chunk(response, THINKING_FILLER, status="IN_PROGRESS", final=False)
            if not response.cancel.is_set():
                try:
                    await asyncio.wait_for(response.cancel.wait(), self.options.thinking_delay_s)
                except TimeoutError:
                    pass
        if not response.cancel.is_set() or not thinking:
            # A NON_BLOCKING call keeps the interaction going until its result is spoken.
            status = "IN_PROGRESS" if reply.calls and self._background else "IDLE"
            await self._chunk(response, text, status=status if thinking else None, final=True)
        else:
            self._response = None
        if self._answer_when_idle and not self._pending:
            self._answer_when_idle = False
            await self._answer()
        elif self.resumable:
            await self._update_resumption()

    async def _chunk(
        self, response: _Response, text: str, *, status: str | None, final: bool
    ) -> None:
        """Speak ``text`` and close it with ``turnComplete`` (with ``interactionStatus`` on the
        models that report it: IDLE once cut). ``final``: the response ends with it."""
        spoken = ""
        if not response.cancel.is_set():
            spoken = await self._speak(response.cancel, text)
        if response.cancel.is_set():
            await self.send(msg.server_content(interrupted=True))
            status = "IDLE" if status is not None else None
        else:
            await self.send(msg.server_content(generationComplete=True))
        if final or response.cancel.is_set():
            self._response = None
        prompt_text = sum(len(i.text) for i in self.state.items) // 4 + 1
        prompt_audio = int(sum(i.heard_s for i in self.state.items) * 25)
        content: dict[str, Any] = {"turnComplete": True}
        if status is not None:
            content["interactionStatus"] = status
        await self.send(
            {
                "serverContent": content,
                "usageMetadata": msg.usage(prompt_text, prompt_audio, int(len(spoken) * 0.6) + 1),
            }
        )
