"""One emulated Gemini Live connection: setup, input, answers, tools and resumption updates.

Behaviour is deterministic (see :mod:`s2s.emulators.behavior`); protocol behaviour follows the
production server (protocols.md §2): ``setup`` first and once, every message counted from 0 (the
``setup``) for ``lastConsumedClientMessageIndex``, server VAD on input energy (or manual
``activityStart``/``activityEnd``), barge-in cutting the answer with ``interrupted``, BLOCKING
tool calls pausing the turn and NON_BLOCKING ones answered by their ``scheduling``, a caller turn
cancelling pending calls (``toolCallCancellation``), and ``sessionResumptionUpdate`` at quiet
moments with a handle that really restores the conversation.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...audio.resample import StreamResampler
from ...audio.synth import speech_for_text
from ...providers.gemini_live import wire
from ...tasks import TaskSet
from .. import behavior
from ..vad import EnergyVad, voiced_seconds
from . import messages as msg
from .state import Item, ModelState
from .validation import INVALID_ARGUMENT, Refusal, parse

__all__ = ["EmulatedSession", "EmulatorOptions", "HandleStore"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]

POLICY_VIOLATION = 1008

#: What a NON_BLOCKING call's turn says while the tool runs.
BACKGROUND_REPLY = "One moment while I check that."


@dataclass(slots=True)
class EmulatorOptions:
    """Knobs for the Gemini emulator.

    Attributes:
        api_key: the only accepted key; ``None`` accepts any non-empty key.
        speed: how much faster than real time answer audio is sent.
        chunk_ms: duration of each audio message.
        response_delay_s: pause before an answer's first output (model latency).
        connection_limit_s: a connection's lifetime (production: about 10 minutes); a
            ``goAway`` comes ``go_away_before_s`` earlier, then a close 1011.
        session_limit_s: without ``contextWindowCompression``, a session (across resumptions)
            ends here (production: 15 minutes of audio).
        resumption_interval_s: how often a ``sessionResumptionUpdate`` may come between turns.
        transparent_index: report ``lastConsumedClientMessageIndex`` when a client asks for it
            (``transparent``); False imitates servers that leave it out.
        message_delay_s: fault injection: delay before every server message.
        record: keep every frame in and out (``frames_in`` / ``frames_out``) for inspection.
        refuse_resume_while_open: refuse (1011) a resumption while the connection it continues
            is still open, as production has been reported to do (aicc2025/sip-to-ai#14).
    """

    api_key: str | None = None
    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    connection_limit_s: float = 600.0
    go_away_before_s: float = 60.0
    session_limit_s: float = 900.0
    resumption_interval_s: float = 1.0
    transparent_index: bool = True
    message_delay_s: float = 0.0
    record: bool = False
    refuse_resume_while_open: bool = False


class HandleStore:
    """Resumption handles, server-wide: handle -> (state snapshot, model).

    The newest ``capacity`` handles are kept (production keeps them for two hours).
    """

    def __init__(self, capacity: int = 2000) -> None:
        self._handles: dict[str, tuple[ModelState, str]] = {}
        self.capacity = capacity
        self.expired_chains: set[str] = set()
        #: Conversation chains with an open connection (chain -> connections).
        self.open_chains: dict[str, int] = {}

    def put(self, state: ModelState, model: str) -> str:
        handle = secrets.token_urlsafe(32)
        self._handles[handle] = (state.snapshot(), model)
        while len(self._handles) > self.capacity:
            del self._handles[next(iter(self._handles))]
        return handle

    def get(self, handle: str) -> tuple[ModelState, str] | None:
        found = self._handles.get(handle)
        if found is None or found[0].chain in self.expired_chains:
            return None
        return found[0].snapshot(), found[1]

    def __len__(self) -> int:
        return len(self._handles)


@dataclass(slots=True)
class _Response:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Setup:
    model: str
    declared: dict[str, str]  # tool name -> behavior
    output_transcription: bool
    input_transcription: bool
    automatic_vad: bool
    interrupts: bool
    start_threshold_dbfs: float
    silence_ms: float
    resumption: bool
    transparent: bool
    compression: bool


class EmulatedSession:
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
        self.setup: _Setup | None = None
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
        problem = _setup_problem(setup, self.api_version)
        if problem is not None:
            await self.refuse(*problem)
            return
        model = setup.model.removeprefix("models/")
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
        self.setup = _configure(setup, model)
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

    def _new_vad(self) -> EnergyVad:
        assert self.setup is not None
        return EnergyVad(
            wire.INPUT_RATE,
            threshold_dbfs=self.setup.start_threshold_dbfs,
            silence_ms=self.setup.silence_ms,
        )

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

    async def _decode_audio(self, blob: wire.Blob) -> bytes | None:
        mime = (blob.mime_type or "").replace(" ", "")
        if not mime.startswith("audio/pcm"):
            await self.refuse(
                INVALID_ARGUMENT,
                f"Unsupported mime type for realtime audio: {blob.mime_type!r}; "
                "use audio/pcm;rate=16000.",
            )
            return None
        rate = wire.INPUT_RATE
        for param in mime.split(";")[1:]:
            if param.startswith("rate="):
                try:
                    rate = int(param[5:])
                except ValueError:
                    rate = 0
        if not 8000 <= rate <= 48000:
            await self.refuse(INVALID_ARGUMENT, f"Unsupported audio sample rate in {mime!r}.")
            return None
        try:
            raw = wire.b64decode(blob.data or "")
        except ValueError:
            await self.refuse(
                INVALID_ARGUMENT,
                "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES), "
                "Base64 decoding failed.",
            )
            return None
        pcm = raw[: len(raw) // 2 * 2]
        if rate != wire.INPUT_RATE:
            resampler = self._resamplers.setdefault(rate, StreamResampler(rate, wire.INPUT_RATE))
            pcm = resampler.process(pcm)
        self.audio_received_ms += len(pcm) / 32.0
        return pcm

    async def _on_audio(self, pcm: bytes) -> None:
        if self.state.activity is not None:
            self.state.activity += pcm
        if self.state.vad is not None:
            await self._feed_vad(pcm)

    async def _feed_vad(self, pcm: bytes) -> None:
        assert self.state.vad is not None
        for event in self.state.vad.feed(pcm):
            if event.kind == "start":
                await self._caller_starts()
            else:
                await self._caller_turn(event.speech_ms / 1000)

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
        if content.turn_complete:
            await self._interrupt_answer()  # turnComplete interrupts generation on 3.x models
            await self._answer()

    async def _on_tool_response(self, data: wire.ToolResponse) -> None:
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
            self.setup.declared = _declared(data.tools.tools or [], self.setup.model)

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
        spoken = ""
        if not response.cancel.is_set():
            spoken = await self._speak(response, text)
        if response.cancel.is_set():
            await self.send(msg.server_content(interrupted=True))
        else:
            await self.send(msg.server_content(generationComplete=True))
        self._response = None
        prompt_text = sum(len(i.text) for i in self.state.items) // 4 + 1
        prompt_audio = int(sum(i.heard_s for i in self.state.items) * 25)
        await self.send(
            {
                **msg.server_content(turnComplete=True),
                "usageMetadata": msg.usage(prompt_text, prompt_audio, int(len(spoken) * 0.6) + 1),
            }
        )
        if self._answer_when_idle and not self._pending:
            self._answer_when_idle = False
            await self._answer()
        elif self.resumable:
            await self._update_resumption()

    async def _speak(self, response: _Response, text: str) -> str:
        """Stream ``text`` as audio with its transcription; returns what was said before a cut."""
        setup = self.setup
        assert setup is not None
        item = Item("model", "text")
        self.state.items.append(item)
        pcm = speech_for_text(text, wire.OUTPUT_RATE)
        step = wire.OUTPUT_RATE * 2 * self.options.chunk_ms // 1000
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip()
        per_chunk = [0] * len(chunks)
        for w in range(len(words)):
            per_chunk[min(len(chunks) - 1, w * len(chunks) // max(1, len(words)))] += 1
        word_iter = iter(words)
        for chunk, n_words in zip(chunks, per_chunk, strict=True):
            interval = self.options.chunk_ms / 1000 / max(self.options.speed, 0.01)
            if response.cancel.is_set():
                break
            await self.send(msg.audio(chunk))
            for _ in range(n_words):
                word = next(word_iter)
                item.text += word
                if setup.output_transcription:
                    await self.send(msg.output_transcription(word))
            try:
                await asyncio.wait_for(response.cancel.wait(), interval)
            except TimeoutError:
                pass
        return item.text


def _declared(tools: list[wire.Tool], model: str) -> dict[str, str]:
    default = "NON_BLOCKING" if model.startswith("gemini-3.8-live") else "BLOCKING"
    return {
        d.name: d.behavior or default for tool in tools for d in tool.function_declarations or []
    }


def _configure(setup: wire.Setup, model: str) -> _Setup:
    ric = setup.realtime_input_config or wire.RealtimeInputConfig()
    aad = ric.automatic_activity_detection or wire.AutomaticActivityDetection()
    start = aad.start_of_speech_sensitivity
    end = aad.end_of_speech_sensitivity
    threshold = {"START_SENSITIVITY_HIGH": -50.0, "START_SENSITIVITY_LOW": -32.0}.get(
        start or "", -40.0
    )
    silence = aad.silence_duration_ms or {
        "END_SENSITIVITY_HIGH": 300,
        "END_SENSITIVITY_LOW": 800,
    }.get(end or "", 500)
    resumption = setup.session_resumption
    return _Setup(
        model=model,
        declared=_declared(setup.tools or [], model),
        output_transcription=setup.output_audio_transcription is not None,
        input_transcription=setup.input_audio_transcription is not None,
        automatic_vad=not aad.disabled,
        interrupts=ric.activity_handling != "NO_INTERRUPTION",
        start_threshold_dbfs=threshold,
        silence_ms=float(silence),
        resumption=resumption is not None,
        transparent=bool(resumption and resumption.transparent),
        compression=setup.context_window_compression is not None,
    )


def _setup_problem(setup: wire.Setup, api_version: str) -> tuple[int, str] | None:
    """Why the server refuses this setup (code and reason), or None."""
    model = setup.model
    name = model.removeprefix("models/")
    if not model.startswith("models/") or name not in wire.LIVE_MODELS:
        return (
            POLICY_VIOLATION,
            f"models/{name} is not found for API version {api_version}, or is not supported "
            "for bidiGenerateContent. Call ListModels to see the list of available models and "
            "their supported methods.",
        )
    config = setup.generation_config or wire.GenerationConfig()
    modalities = config.response_modalities or ["AUDIO"]
    if len(modalities) != 1:
        return (
            INVALID_ARGUMENT,
            "generation_config.response_modalities must hold exactly one value.",
        )
    if name.startswith("gemini-3.8-live") and modalities != ["AUDIO"]:
        return INVALID_ARGUMENT, f"models/{name} only supports the AUDIO response modality."
    if name == "gemini-3.8-live" and config.thinking_config is not None:
        return INVALID_ARGUMENT, "models/gemini-3.8-live does not support thinking_config."
    voice = None
    if config.speech_config and config.speech_config.voice_config:
        prebuilt = config.speech_config.voice_config.prebuilt_voice_config
        voice = prebuilt.voice_name if prebuilt else None
    if voice is not None and voice not in wire.VOICES:
        return INVALID_ARGUMENT, f"Voice name {voice!r} is not supported."
    names: set[str] = set()
    for t, tool in enumerate(setup.tools or []):
        for d, declaration in enumerate(tool.function_declarations or []):
            where = f"setup.tools[{t}].function_declarations[{d}]"
            if declaration.name in names:
                return INVALID_ARGUMENT, f"Duplicate function declaration name at '{where}'."
            names.add(declaration.name)
            if (
                declaration.parameters is not None
                and declaration.parameters_json_schema is not None
            ):
                return (
                    INVALID_ARGUMENT,
                    f"Only one of parameters and parameters_json_schema may be set at '{where}'.",
                )
            schema = declaration.parameters_json_schema
            if schema is not None and not isinstance(schema, dict):
                return INVALID_ARGUMENT, f"parameters_json_schema at '{where}' must be an object."
    return None
