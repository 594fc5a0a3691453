"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import s2s
from s2s import EventType, SessionEvent, ToolDefinition
from s2s.audio.synth import silence, speech_like
from s2s.emulators.vad import voiced_seconds

from .conftest import SECOND

#: The order lookup the emulators' "call lookup_order {...}" text triggers.
LOOKUP = ToolDefinition(
    "lookup_order",
    "Order status",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
#: A second tool, for parallel calls.
WEATHER = ToolDefinition(
    "get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def utterance(seconds: float, rate: int, *, pause: float = 0.8, seed: int = 1) -> bytes:
    """``seconds`` of speech followed by ``pause`` of silence (ends a server-VAD turn)."""
    return speech_like(seconds, rate, seed=seed) + silence(pause, rate)


def voiced(seconds: float, rate: int, *, seed: int = 1) -> float:
    """The voiced span of ``utterance(seconds, rate, seed=seed)``, as a VAD measures it."""
    return round(voiced_seconds(speech_like(seconds, rate, seed=seed), rate), 1)


async def stream(
    session: s2s.Session, pcm: bytes, rate: int, *, chunk_ms: int = 20, realtime: bool = False
) -> None:
    step = rate * chunk_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        await session.send_audio(pcm[i : i + step], sample_rate=rate)
        await asyncio.sleep(chunk_ms / 1000 if realtime else 0)


async def collect(
    session: s2s.Session,
    until: Callable[[SessionEvent], bool],
    *,
    timeout: float = 10.0,
    on_event: Callable[[SessionEvent], object] | None = None,
) -> list[SessionEvent]:
    """Events from ``session`` up to and including the first one ``until`` accepts."""
    events: list[SessionEvent] = []

    async def run() -> None:
        async for event in session.recv():
            events.append(event)
            if on_event is not None:
                result = on_event(event)
                if asyncio.iscoroutine(result):
                    await result
            if until(event):
                return
        raise AssertionError(f"session ended before the expected event; got {kinds(events)}")

    await asyncio.wait_for(run(), timeout * SECOND)
    return events


def turn_end(reason: str = "completed") -> Callable[[SessionEvent], bool]:
    return lambda e: e.type is EventType.TURN_END and e.reason == reason


def kinds(events: list[SessionEvent]) -> list[str]:
    return [e.type.value for e in events]


def final_text(events: list[SessionEvent], role: s2s.Role) -> list[str]:
    return [
        e.text or ""
        for e in events
        if e.type is EventType.TRANSCRIPT and e.final and e.role is role
    ]


def heard_seconds(text: str) -> float:
    match = re.search(r"(\d+\.\d) seconds of speech", text)
    assert match, text
    return float(match.group(1))


def audio_ms(events: list[SessionEvent]) -> float:
    return sum(e.duration_ms for e in events if e.type is EventType.AUDIO_OUTPUT)
