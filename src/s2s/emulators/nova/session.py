"""One emulated Nova Sonic stream: input-event rules, the model's answers, and the limits.

The server hands every decoded client event to :meth:`EmulatedStream.handle`. Events are checked
against the documented shapes (:class:`~s2s.providers.nova.wire.InputEvent`) and against Nova's
rules; a violation ends the stream with a ``validationException`` worded like the service's
(``RequestId=… : Error(s):\\nError 1 : …``):

* ``sessionStart`` first, then one ``promptStart``; every later event names that prompt;
* the first content block is the SYSTEM text block, and there is only one;
* history (non-interactive USER/ASSISTANT text) only before the audio starts, starting with USER,
  at most 40 KB in all, each ``textInput`` at most 1 KB;
* one AUDIO block for the whole conversation; text and tool blocks do not nest;
* a tool result names a ``toolUseId`` the model is waiting for;
* close in order: the audio's ``contentEnd``, ``promptEnd``, ``sessionEnd``.

The model (deterministic, see :mod:`s2s.emulators.behavior`) answers a caller turn, detected by
energy VAD on the 16 kHz input, with the §3.4 sequence: USER FINAL transcript, SPECULATIVE text,
24 kHz AUDIO, FINAL text, usage. Caller speech during an answer is a barge-in (``contentEnd``
INTERRUPTED and ``{ "interrupted" : true }``). ``call <tool> <json>`` text makes it use a tool and
wait for the matching TOOL result. The connection limit ends the stream with a
``modelTimeoutException``, caller silence with the ``InternalErrorCode=531`` validation error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ...audio.level import rms_dbfs
from ...audio.synth import speech_for_text
from ...providers.nova import wire
from ...tasks import TaskSet
from .. import behavior
from ..vad import EnergyVad

__all__ = ["EmulatedStream", "NovaEmulatorOptions", "StreamFailure"]

Send = Callable[[dict[str, Any]], Awaitable[None]]

SILENCE_MESSAGE = "InternalErrorCode=531::RST_STREAM closed stream. HTTP/2 error code: NO_ERROR"
TIMEOUT_MESSAGE = "Model has timed out in processing the request"
#: End-of-turn silence per ``endpointingSensitivity`` (HIGH ends turns fastest).
ENDPOINTING_MS = {"HIGH": 400.0, "MEDIUM": 600.0, "LOW": 900.0}
SPEECH_DBFS = -40.0


@dataclass(slots=True)
class NovaEmulatorOptions:
    """Knobs for the Nova emulator.

    Attributes:
        speed: how much faster than real time answer audio is sent.
        chunk_ms: duration of each ``audioOutput``.
        response_delay_s: model latency before an answer's first output.
        event_delay_s: fault injection: delay before every output event.
        connection_limit_s: stream lifetime (production: 480), then ``modelTimeoutException``.
        silence_limit_s: caller silence allowed (production: about 175), then the 531 error.
        record: keep every decoded client event (``events_in``) and output (``events_out``).
    """

    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    event_delay_s: float = 0.0
    connection_limit_s: float = 480.0
    silence_limit_s: float = 175.0
    record: bool = False


class StreamFailure(Exception):
    """Ends the stream with an in-stream exception (``:exception-type`` ``kind``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(slots=True)
class _Block:
    name: str
    type: str
    role: str
    interactive: bool
    tool_use_id: str | None = None
    texts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Item:
    role: str  # USER | ASSISTANT | TOOL_USE | TOOL_RESULT
    text: str
    heard_s: float = 0.0
    name: str = ""


@dataclass(slots=True)
class _Answer:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class EmulatedStream:
    """Server state of one ``invoke-with-bidirectional-stream`` request."""

    def __init__(self, send: Send, options: NovaEmulatorOptions, model: str) -> None:
        self._send_raw = send
        self.options = options
        self.model = model
        self.request_id = str(uuid.uuid4())
        self.session_id = str(uuid.uuid4())
        self.completion_id = str(uuid.uuid4())
        self.started = time.monotonic()
        self.last_input = self.started
        self.events_in: list[dict[str, Any]] = []
        self.events_out: list[dict[str, Any]] = []
        self.received: list[str] = []
        self.items: list[_Item] = []
        self.audio_received_ms = 0.0
        self.prompt: str | None = None
        self.tools: set[str] = set()
        self.voice = ""
        self.output_rate = wire.OUTPUT_RATE
        self.ended = False  # sessionEnd received
        self._phase = "sessionStart"
        self._system_seen = False
        self._history_bytes = 0
        self._history_started = False
        self._blocks: dict[str, _Block] = {}
        self._audio: _Block | None = None
        self._audio_rate = wire.INPUT_RATE
        self._vad: EnergyVad | None = None
        self._silence_ms = ENDPOINTING_MS["MEDIUM"]
        self._waiting_tools: dict[str, str] = {}  # toolUseId -> tool name
        self._tool_outputs: list[tuple[str, str]] = []
        self._answer: _Answer | None = None
        self._completion_started = False
        self._tasks = TaskSet()
        self.closed = False

    # -- plumbing ------------------------------------------------------------------------------

    async def send(self, name: str, body: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.options.event_delay_s:
            await asyncio.sleep(self.options.event_delay_s)
        event = {"event": {name: body}}
        if self.options.record:
            self.events_out.append(event)
        await self._send_raw(event)

    def _ids(self, **extra: Any) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "promptName": self.prompt,
            "completionId": self.completion_id,
            **extra,
        }

    def _invalid(self, message: str) -> StreamFailure:
        return StreamFailure(
            "validationException",
            f"RequestId={self.request_id} : Error(s):\nError 1 : {message}",
        )

    def shutdown(self) -> None:
        self.closed = True
        self._tasks.cancel()

    def idle_for(self, now: float) -> float:
        return now - self.last_input

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, data: object) -> None:
        """One client event. Raises :class:`StreamFailure` to end the stream."""
        if self.options.record and isinstance(data, dict):
            self.events_in.append(data)
        try:
            name, body = wire.InputEvent.parse(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise self._invalid(f"Invalid input event: {where}: {first['msg']}") from exc
        except ValueError as exc:
            raise self._invalid(f"Invalid input event: {exc}") from exc
        self.received.append(name)
        if self.ended:
            raise self._invalid(f"{name} received after sessionEnd")
        if name != "sessionStart" and self._phase == "sessionStart":
            raise self._invalid(f"The first event must be sessionStart, not {name}")
        prompt = getattr(body, "promptName", None)
        if name not in ("sessionStart", "promptStart", "sessionEnd") and prompt != self.prompt:
            raise self._invalid(
                f"promptName '{prompt}' does not match the active prompt '{self.prompt}'"
            )
        await getattr(self, "_on_" + name)(body)

    async def _on_sessionStart(self, body: BaseModel) -> None:
        if self._phase != "sessionStart":
            raise self._invalid("Duplicate sessionStart. A session can only be started once.")
        assert isinstance(body, wire.SessionStart)
        if body.turnDetectionConfiguration is not None:  # every served model takes it
            self._silence_ms = ENDPOINTING_MS[
                body.turnDetectionConfiguration.endpointingSensitivity
            ]
        self._phase = "promptStart"

    async def _on_promptStart(self, body: BaseModel) -> None:
        assert isinstance(body, wire.PromptStart)
        if self._phase != "promptStart":
            raise self._invalid("promptStart must follow sessionStart, once per session")
        voice = body.audioOutputConfiguration.voiceId
        if voice not in wire.VOICES:
            raise self._invalid(f"Invalid voiceId '{voice}'")
        for tool in body.toolConfiguration.tools if body.toolConfiguration else []:
            schema = tool.toolSpec.inputSchema.json_
            if isinstance(schema, str):
                try:
                    parsed = json.loads(schema)
                except ValueError as exc:
                    raise self._invalid(
                        f"Tool '{tool.toolSpec.name}': inputSchema.json is not valid JSON"
                    ) from exc
                if not isinstance(parsed, dict):
                    raise self._invalid(
                        f"Tool '{tool.toolSpec.name}': inputSchema.json must be a JSON object"
                    )
            self.tools.add(tool.toolSpec.name)
        self.prompt = body.promptName
        self.voice = voice
        self.output_rate = body.audioOutputConfiguration.sampleRateHertz
        self._phase = "content"

    async def _on_contentStart(self, body: BaseModel) -> None:
        assert isinstance(body, wire.ContentStart)
        if self._phase != "content":
            raise self._invalid(f"contentStart is not allowed after {self._phase}")
        if body.contentName in self._blocks:
            raise self._invalid(f"Duplicate contentName '{body.contentName}'")
        if any(b.type != "AUDIO" for b in self._blocks.values()):
            raise self._invalid("A content block is already open; end it before starting another")
        if not self._system_seen:
            if body.type != "TEXT" or body.role != "SYSTEM":
                raise self._invalid("First content must have SYSTEM role")
            self._system_seen = True
        elif body.role == "SYSTEM":
            raise self._invalid(
                "Duplicate SYSTEM content. SYSTEM content can only be provided once per prompt."
            )
        block = _Block(body.contentName, body.type, body.role, body.interactive)
        if body.type == "AUDIO":
            if self._audio is not None:
                raise self._invalid(
                    "Only one AUDIO content can be open per prompt; keep it open for the "
                    "whole conversation"
                )
            config = body.audioInputConfiguration
            if config is None:
                raise self._invalid("AUDIO content requires audioInputConfiguration")
            self._audio = block
            self._audio_rate = config.sampleRateHertz
            self._vad = EnergyVad(
                self._audio_rate, threshold_dbfs=SPEECH_DBFS, silence_ms=self._silence_ms
            )
        elif body.type == "TOOL":
            config_tool = body.toolResultInputConfiguration
            if config_tool is None:
                raise self._invalid("TOOL content requires toolResultInputConfiguration")
            if config_tool.toolUseId not in self._waiting_tools:
                raise self._invalid(
                    f"Tool Response parsing error: no toolUse with toolUseId "
                    f"'{config_tool.toolUseId}' is awaiting a result"
                )
            block.tool_use_id = config_tool.toolUseId
        elif body.role in ("USER", "ASSISTANT"):
            if body.textInputConfiguration is None:
                raise self._invalid("TEXT content requires textInputConfiguration")
            if self._audio is None:  # chat history
                if not self._history_started and body.role != "USER":
                    raise self._invalid("Chat history must start with a USER message")
                self._history_started = True
            elif body.role != "USER" or not body.interactive:
                raise self._invalid(
                    "Chat history can only be sent before the AUDIO content starts; text "
                    "during the conversation must be interactive USER content"
                )
        self._blocks[body.contentName] = block

    def _block(self, name: str, kind: str, what: str) -> _Block:
        block = self._blocks.get(name)
        if block is None:
            raise self._invalid(f"{what} for contentName '{name}', which is not open")
        if block.type != kind:
            raise self._invalid(f"{what} for contentName '{name}', a {block.type} content")
        return block

    async def _on_textInput(self, body: BaseModel) -> None:
        assert isinstance(body, wire.ContentInput)
        block = self._block(body.contentName, "TEXT", "textInput")
        size = len(body.content.encode("utf-8"))
        if size > wire.MAX_TEXT_BYTES:
            raise self._invalid(
                f"textInput content is {size} bytes; the limit is {wire.MAX_TEXT_BYTES} bytes"
            )
        if self._audio is None and block.role in ("USER", "ASSISTANT"):
            self._history_bytes += size
            if self._history_bytes > wire.MAX_HISTORY_BYTES:
                raise self._invalid(
                    f"Chat history exceeds {wire.MAX_HISTORY_BYTES // 1024} KB "
                    f"({self._history_bytes} bytes)"
                )
        block.texts.append(body.content)

    async def _on_toolResult(self, body: BaseModel) -> None:
        assert isinstance(body, wire.ContentInput)
        self._block(body.contentName, "TOOL", "toolResult").texts.append(body.content)

    async def _on_audioInput(self, body: BaseModel) -> None:
        assert isinstance(body, wire.ContentInput)
        self._block(body.contentName, "AUDIO", "audioInput")
        try:
            pcm = base64.b64decode(body.content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._invalid("audioInput content is not valid base64") from exc
        pcm = pcm[: len(pcm) // 2 * 2]
        self.audio_received_ms += len(pcm) / 2 / self._audio_rate * 1000
        if rms_dbfs(pcm) > SPEECH_DBFS:
            self.last_input = time.monotonic()
        assert self._vad is not None
        for event in self._vad.feed(pcm):
            if event.kind == "start":
                self.last_input = time.monotonic()
                await self._interrupt_answer()
            else:
                self._respond("audio", event.speech_ms / 1000)

    async def _on_contentEnd(self, body: BaseModel) -> None:
        assert isinstance(body, wire.ContentEnd)
        block = self._blocks.pop(body.contentName, None)
        if block is None:
            raise self._invalid(
                f"contentEnd for contentName '{body.contentName}', which is not open"
            )
        text = "".join(block.texts)
        if block.type == "TOOL" and block.tool_use_id is not None:
            name = self._waiting_tools.pop(block.tool_use_id)
            self.last_input = time.monotonic()
            self.items.append(_Item("TOOL_RESULT", text, name=name))
            self._tool_outputs.append((name, text))
            if not self._waiting_tools:
                outputs, self._tool_outputs = self._tool_outputs, []
                self._respond("tools", outputs)
        elif block.type == "TEXT" and block.role in ("USER", "ASSISTANT") and text.strip():
            self.items.append(_Item(block.role, text.strip()))
            if self._audio is not None:  # cross-modal input: answer it
                self.last_input = time.monotonic()
                await self._interrupt_answer()
                self._respond("text", text.strip())
        elif block.type == "AUDIO":
            self._phase = "promptEnd"  # the conversation is over

    async def _on_promptEnd(self, body: BaseModel) -> None:
        if self._blocks:
            open_names = ", ".join(f"{b.type} '{n}'" for n, b in self._blocks.items())
            raise self._invalid(f"promptEnd while content is still open: {open_names}")
        self._phase = "sessionEnd"

    async def _on_sessionEnd(self, body: BaseModel) -> None:
        if self._phase != "sessionEnd":
            raise self._invalid("sessionEnd before promptEnd; end the prompt first")
        self.ended = True
        await self._interrupt_answer(quiet=True)
        if self._completion_started:
            await self.send("completionEnd", self._ids(stopReason="END_TURN"))

    # -- the model -------------------------------------------------------------------------------

    def _respond(self, kind: str, value: Any) -> None:
        answer = _Answer()
        self._answer = answer
        answer.task = self._tasks.spawn(self._run_answer(answer, kind, value))

    async def _interrupt_answer(self, *, quiet: bool = False) -> None:
        answer = self._answer
        if answer is None or answer.task is None or answer.task.done():
            return
        answer.cancel.set()
        if quiet:
            answer.task.cancel()
        await asyncio.gather(answer.task, return_exceptions=True)

    async def _text_block(self, role: str, stage: str, texts: list[str], stop: str) -> None:
        content_id = str(uuid.uuid4())
        await self.send(
            "contentStart",
            self._ids(
                contentId=content_id,
                type="TEXT",
                role=role,
                additionalModelFields=json.dumps({"generationStage": stage}),
                textOutputConfiguration={"mediaType": "text/plain"},
            ),
        )
        for text in texts:
            await self.send("textOutput", self._ids(contentId=content_id, role=role, content=text))
        await self.send("contentEnd", self._ids(contentId=content_id, type="TEXT", stopReason=stop))

    def _plan(self, kind: str, value: Any) -> tuple[list[behavior.ToolRequest], str]:
        if kind == "tools":
            return [], behavior.reply_for_tool_outputs(value)
        if kind == "audio":
            return [], behavior.reply_for_audio(value)
        text = str(value)
        requests = behavior.parse_tool_requests(text)
        if requests:
            known = [r for r in requests if r.name in self.tools]
            if known:
                return known, ""
            return [], behavior.reply_for_unknown_tools([r.name for r in requests])
        earlier = [i.text for i in self.items[:-1] if i.role == "USER"]
        return [], behavior.reply_for_text(text, earlier)

    async def _run_answer(self, answer: _Answer, kind: str, value: Any) -> None:
        if not self._completion_started:
            self._completion_started = True
            await self.send("completionStart", self._ids())
        input_tokens = 0
        if kind == "audio":
            transcript = behavior.audio_transcript(value)
            self.items.append(_Item("USER", transcript, heard_s=value))
            await self._text_block("USER", "FINAL", [transcript], "END_TURN")
            input_tokens = int(value * 25)
        else:
            input_tokens = len(str(value)) // 4 + 1
        try:
            if self.options.response_delay_s:
                await asyncio.wait_for(answer.cancel.wait(), self.options.response_delay_s)
        except TimeoutError:
            pass
        if answer.cancel.is_set():
            return
        requests, text = self._plan(kind, value)
        if requests:
            for request in requests:
                await self._tool_use(request)
            await self._usage(input_tokens, 0, 0)
            return
        spoken = await self._speak(answer, text)
        interrupted = answer.cancel.is_set()
        await self._usage(input_tokens, len(spoken) // 4 + 1, int(len(spoken) * 0.6))
        final = [spoken] if spoken else []
        if interrupted:
            final.append(wire.INTERRUPTED_TEXT)
        await self._text_block(
            "ASSISTANT", "FINAL", final, "INTERRUPTED" if interrupted else "END_TURN"
        )
        if spoken:
            self.items.append(_Item("ASSISTANT", spoken))

    async def _tool_use(self, request: behavior.ToolRequest) -> None:
        tool_use_id = str(uuid.uuid4())
        content_id = str(uuid.uuid4())
        arguments = json.dumps(request.arguments)
        self._waiting_tools[tool_use_id] = request.name
        self.items.append(_Item("TOOL_USE", arguments, name=request.name))
        await self.send(
            "contentStart",
            self._ids(
                contentId=content_id,
                type="TOOL",
                role="TOOL",
                toolUseOutputConfiguration={"mediaType": "application/json"},
            ),
        )
        await self.send(
            "toolUse",
            self._ids(
                contentId=content_id,
                toolName=request.name,
                toolUseId=tool_use_id,
                content=arguments,
            ),
        )
        await self.send(
            "contentEnd", self._ids(contentId=content_id, type="TOOL", stopReason="TOOL_USE")
        )

    async def _speak(self, answer: _Answer, text: str) -> str:
        """SPECULATIVE text, then the audio; returns the words the caller got to hear."""
        await self._text_block("ASSISTANT", "SPECULATIVE", [text], "PARTIAL_TURN")
        content_id = str(uuid.uuid4())
        await self.send(
            "contentStart",
            self._ids(
                contentId=content_id,
                type="AUDIO",
                role="ASSISTANT",
                audioOutputConfiguration={
                    "mediaType": "audio/lpcm",
                    "sampleRateHertz": self.output_rate,
                    "sampleSizeBits": 16,
                    "encoding": "base64",
                    "channelCount": 1,
                },
            ),
        )
        pcm = speech_for_text(text, self.output_rate)
        step = self.output_rate * 2 * self.options.chunk_ms // 1000
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        interval = self.options.chunk_ms / 1000 / max(self.options.speed, 0.01)
        sent = 0
        for chunk in chunks:
            if answer.cancel.is_set():
                break
            await self.send(
                "audioOutput",
                self._ids(contentId=content_id, content=base64.b64encode(chunk).decode("ascii")),
            )
            sent += 1
            try:
                await asyncio.wait_for(answer.cancel.wait(), interval)
            except TimeoutError:
                pass
        cut = answer.cancel.is_set() and sent < len(chunks)
        await self.send(
            "contentEnd",
            self._ids(
                contentId=content_id, type="AUDIO", stopReason="INTERRUPTED" if cut else "END_TURN"
            ),
        )
        if not cut:
            return text
        words = text.split(" ")
        return " ".join(words[: len(words) * sent // max(1, len(chunks))])

    async def _usage(self, input_tokens: int, text_tokens: int, speech_tokens: int) -> None:
        total_in = input_tokens + self._history_bytes // 4
        await self.send(
            "usageEvent",
            self._ids(
                details={
                    "delta": {
                        "input": {"speechTokens": input_tokens, "textTokens": 0},
                        "output": {"speechTokens": speech_tokens, "textTokens": text_tokens},
                    },
                    "total": {
                        "input": {
                            "speechTokens": input_tokens,
                            "textTokens": total_in - input_tokens,
                        },
                        "output": {"speechTokens": speech_tokens, "textTokens": text_tokens},
                    },
                },
                totalInputTokens=total_in,
                totalOutputTokens=speech_tokens + text_tokens,
                totalTokens=total_in + speech_tokens + text_tokens,
            ),
        )

    # -- limits ----------------------------------------------------------------------------------

    async def run_limits(self) -> StreamFailure:
        """Return the failure that ends the stream when a limit is reached."""
        while True:
            now = time.monotonic()
            to_connection = self.started + self.options.connection_limit_s - now
            to_silence = self.last_input + self.options.silence_limit_s - now
            if to_connection <= 0:
                return StreamFailure("modelTimeoutException", TIMEOUT_MESSAGE)
            if to_silence <= 0:
                return StreamFailure("validationException", SILENCE_MESSAGE)
            await asyncio.sleep(min(to_connection, to_silence, 1.0) + 0.001)
