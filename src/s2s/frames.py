"""Frames, and :func:`as_frame_processor`: a session as one stage of a media pipeline.

A frame processor takes an async stream of frames and returns an async stream of frames::

    process = s2s.as_frame_processor(engine, voice="marin")
    async for frame in process(incoming_frames):
        ...

Frames in: :class:`AudioFrame` (caller audio), :class:`TextFrame` (typed user text),
:class:`ToolResultFrame`, and :class:`ControlFrame` with ``Signal.INTERRUPT`` (stop the model)
or ``Signal.END_OF_TURN`` (the caller finished; manual turn detection). Any other frame is passed
downstream untouched, in order.

Frames out: :class:`AudioFrame` (model speech), :class:`TextFrame` (model text),
:class:`TranscriptFrame`, :class:`ToolCallFrame`, :class:`ControlFrame` with
``Signal.INTERRUPT`` (flush playback), ``SPEECH_STARTED``, ``SPEECH_STOPPED`` and ``TURN_END``,
and :class:`EventFrame` for everything else (usage, resumption, non-fatal errors).

When the input ends, the processor keeps emitting until the model has been quiet for
``linger`` seconds (so the last answer arrives), then closes the session and ends. A fatal
session error ends the output stream by raising that error.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from .config import ToolCall, ToolResult
from .engine import S2S
from .errors import InvalidInputError
from .events import EventType, Role, SessionEvent
from .session import Session

__all__ = [
    "AudioFrame",
    "ControlFrame",
    "EventFrame",
    "Frame",
    "FrameProcessor",
    "Signal",
    "TextFrame",
    "ToolCallFrame",
    "ToolResultFrame",
    "TranscriptFrame",
    "as_frame_processor",
]


class Signal(enum.StrEnum):
    """Control signals carried by :class:`ControlFrame`."""

    INTERRUPT = "interrupt"  # in: stop the model; out: the model was cut, flush playback
    END_OF_TURN = "end_of_turn"  # in: the caller finished speaking (manual turn detection)
    TURN_END = "turn_end"  # out: the model finished its answer
    SPEECH_STARTED = "speech_started"  # out: the caller started speaking
    SPEECH_STOPPED = "speech_stopped"  # out: the caller stopped speaking


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """PCM16 mono audio at ``sample_rate``."""

    data: bytes
    sample_rate: int
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class TextFrame:
    """User text (in) or model text (out)."""

    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class TranscriptFrame:
    """What the caller or the model said."""

    text: str
    role: Role
    final: bool


@dataclass(frozen=True, slots=True)
class ControlFrame:
    signal: Signal


@dataclass(frozen=True, slots=True)
class ToolCallFrame:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolResultFrame:
    result: ToolResult


@dataclass(frozen=True, slots=True)
class EventFrame:
    """A session event with no dedicated frame type."""

    event: SessionEvent


Frame = (
    AudioFrame
    | TextFrame
    | TranscriptFrame
    | ControlFrame
    | ToolCallFrame
    | ToolResultFrame
    | EventFrame
    | Any
)

_EVENT_SIGNALS = {
    EventType.INTERRUPTED: Signal.INTERRUPT,
    EventType.TURN_END: Signal.TURN_END,
    EventType.SPEECH_STARTED: Signal.SPEECH_STARTED,
    EventType.SPEECH_STOPPED: Signal.SPEECH_STOPPED,
}


def event_to_frame(event: SessionEvent) -> Frame:
    """The output frame for a session event."""
    if event.type is EventType.AUDIO_OUTPUT:
        return AudioFrame(event.audio or b"", event.sample_rate or 0, event.item_id)
    if event.type is EventType.TEXT_OUTPUT:
        return TextFrame(event.text or "", final=event.final)
    if event.type is EventType.TRANSCRIPT:
        return TranscriptFrame(event.text or "", event.role or Role.ASSISTANT, event.final)
    if event.type is EventType.TOOL_CALL and event.tool_call is not None:
        return ToolCallFrame(event.tool_call)
    signal = _EVENT_SIGNALS.get(event.type)
    if signal is not None:
        return ControlFrame(signal)
    return EventFrame(event)


@dataclass(slots=True)
class _End:
    error: BaseException | None = None


class FrameProcessor:
    """A session wrapped as a frame processor. Call it with an async iterable of frames."""

    def __init__(
        self, engine: S2S, *, linger: float = 1.0, max_linger: float = 30.0, **overrides: Any
    ) -> None:
        self.engine = engine
        self.linger = linger
        self.max_linger = max_linger
        self.overrides = overrides

    def __call__(self, frames: AsyncIterable[Frame]) -> AsyncIterator[Frame]:
        return self.process(frames)

    async def process(self, frames: AsyncIterable[Frame]) -> AsyncIterator[Frame]:
        session = await self.engine.start(**self.overrides)
        out: asyncio.Queue[Frame | _End] = asyncio.Queue()
        last_output = [time.monotonic()]

        async def pump_events() -> None:
            try:
                async for event in session.recv():
                    last_output[0] = time.monotonic()
                    out.put_nowait(event_to_frame(event))
                out.put_nowait(_End())
            except BaseException as exc:
                out.put_nowait(_End(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise

        async def feed() -> None:
            try:
                async for frame in frames:
                    if not await _send_frame(session, frame):
                        out.put_nowait(frame)
                await self._linger(session, last_output)
                await session.close()
            except BaseException as exc:
                out.put_nowait(_End(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise

        tasks = [asyncio.create_task(pump_events()), asyncio.create_task(feed())]
        try:
            while True:
                item = await out.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.close()

    async def _linger(self, session: Session, last_output: list[float]) -> None:
        deadline = time.monotonic() + self.max_linger
        while time.monotonic() < deadline and not session.closed:
            quiet = time.monotonic() - last_output[0]
            if quiet >= self.linger and session.idle:
                return
            await asyncio.sleep(min(0.05, self.linger / 4))


async def _send_frame(session: Session, frame: Frame) -> bool:
    """Apply an input frame to the session; False if the frame is not for the session."""
    if isinstance(frame, AudioFrame):
        await session.send_audio(frame.data, sample_rate=frame.sample_rate)
    elif isinstance(frame, TextFrame):
        await session.send_text(frame.text)
    elif isinstance(frame, ToolResultFrame):
        await session.send_tool_result(frame.result)
    elif isinstance(frame, ControlFrame):
        if frame.signal is Signal.INTERRUPT:
            await session.interrupt()
        elif frame.signal is Signal.END_OF_TURN:
            await session.end_turn()
        else:
            raise InvalidInputError(
                f"control signal {frame.signal.value!r} is an output signal, not an input"
            )
    else:
        return False
    return True


def as_frame_processor(engine: S2S, **overrides: Any) -> FrameProcessor:
    """Wrap ``engine`` as a frame processor; ``overrides`` are ``engine.start()`` arguments.

    ``linger=`` and ``max_linger=`` tune how long output continues after the input ends.
    """
    if not isinstance(engine, S2S):
        raise InvalidInputError(f"as_frame_processor needs an s2s.S2S engine, got {engine!r}")
    return FrameProcessor(engine, **overrides)
