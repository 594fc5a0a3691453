"""``s2s demo``: one short call, end to end, printed as it happens.

Streams a spoken-style WAV in real time (20 ms chunks), then asks about an order so the model
calls a tool that the demo answers, prints every event as it arrives, and writes the model's
audio to a WAV file. Without the provider's API key in the environment it starts that provider's
local emulator and talks to it instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..audio.resample import StreamResampler
from ..audio.synth import silence, speech_like
from ..audio.wav import read_wav, write_wav
from ..config import Config, ToolDefinition, ToolResult
from ..events import EventType, SessionEvent
from ..registry import list_providers, new
from ..session import Session
from .emulate import PROVIDER_EMULATORS, emulator_cli

LOOKUP_ORDER = ToolDefinition(
    name="lookup_order",
    description="Look up the delivery status of a customer's order by its id.",
    parameters={
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "e.g. A1234"}},
        "required": ["order_id"],
    },
)

INSTRUCTIONS = "You are a friendly contact-centre agent. Use tools for order questions."
QUESTION = 'Where is my order A1234? Please call lookup_order {"order_id": "A1234"}'


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run a demo call (uses the local emulator when no API key is set)",
        description=__doc__,
    )
    parser.add_argument(
        "--provider",
        default="openai_realtime",
        help="provider name (default openai_realtime; see 's2s providers')",
    )
    add_call_arguments(parser, timeout=60.0)
    parser.set_defaults(run=run)


def add_call_arguments(parser: argparse.ArgumentParser, *, timeout: float) -> None:
    """The demo call's options (``s2s demo`` and ``s2s up``): its audio, where the WAVs go, and
    how long it may take."""
    parser.add_argument(
        "--input",
        type=Path,
        default=None,
        metavar="WAV",
        help="caller audio, 16-bit WAV (default: synthesised speech)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("demo-output"),
        help="where caller.wav and reply.wav go (default ./demo-output)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=16000,
        help="the caller's audio rate in Hz (default 16000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        metavar="SECONDS",
        help=f"give up after SECONDS (default {timeout:g})",
    )


@contextlib.asynccontextmanager
async def _provider_settings(provider: str) -> AsyncIterator[dict[str, Any]]:
    """Extra settings pointing at the real provider (key set) or its local emulator."""
    emulator = PROVIDER_EMULATORS.get(provider)
    if emulator is None:
        print(f"{provider} has no local emulator: using the real API")
        yield {}
        return
    cli = emulator_cli(emulator)
    if any(os.environ.get(var) for var in cli.KEY_VARIABLES):
        print(f"using the real {provider} API (key found in the environment)")
        yield {}
        return
    async with cli.local_settings(response_delay_s=0.2) as extra:
        where = extra.get("base_url") or extra.get("endpoint") or "loopback"
        print(f"no {' / '.join(cli.KEY_VARIABLES)} set: using the local emulator at {where}")
        yield extra


class _Printer:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self._audio_items: dict[str, float] = {}

    def __call__(self, event: SessionEvent) -> None:
        t = f"+{time.monotonic() - self.start:6.2f}s"
        kind = event.type
        if kind is EventType.AUDIO_OUTPUT:
            key = event.item_id or "?"
            if key not in self._audio_items:
                print(f"{t}  audio_output      model speech starts (item {key})")
            self._audio_items[key] = self._audio_items.get(key, 0.0) + event.duration_ms
            return
        if kind is EventType.TRANSCRIPT and not event.final:
            return  # print whole transcripts, not every delta
        detail = ""
        if kind is EventType.TRANSCRIPT:
            detail = f"[{event.role.value if event.role else '?'}] {event.text}"
        elif kind is EventType.TOOL_CALL and event.tool_call:
            detail = f"{event.tool_call.name}({event.tool_call.arguments})"
        elif kind is EventType.TURN_END:
            spoken = sum(self._audio_items.values())
            self._audio_items.clear()
            detail = f"reason={event.reason}" + (
                f", {spoken / 1000:.2f} s of speech" if spoken else ""
            )
        elif kind is EventType.USAGE and event.usage:
            detail = f"tokens in={event.usage.input_tokens} out={event.usage.output_tokens}"
        elif kind is EventType.ERROR:
            detail = str(event.error)
        elif kind is EventType.SESSION_RESUMED:
            detail = f"{event.reason} gap={event.data.get('gap_ms')} ms"
        elif kind in (EventType.RATE_LIMITS, EventType.RESPONSE_STARTED):
            return
        print(f"{t}  {kind.value:<17} {detail}".rstrip(), flush=True)


async def _stream_wav(session: Session, pcm: bytes, rate: int) -> None:
    """Send ``pcm`` in 20 ms chunks at real-time pace (monotonic clock, no drift)."""
    step = rate // 50 * 2
    start = time.monotonic()
    for index, offset in enumerate(range(0, len(pcm), step)):
        await session.send_audio(pcm[offset : offset + step], sample_rate=rate)
        delay = start + (index + 1) * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _answer(arguments: dict[str, Any]) -> str:
    order_id = arguments.get("order_id", "unknown")
    return json.dumps({"order_id": order_id, "status": "out for delivery", "eta": "today 17:00"})


async def run(args: argparse.Namespace) -> int:
    if args.provider not in list_providers():
        raise SystemExit(
            f"s2s demo: unknown provider {args.provider!r}; known: {', '.join(list_providers())}"
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rate = args.sample_rate
    if args.input is not None:
        pcm, file_rate = read_wav(args.input)
        if file_rate != rate:
            resampler = StreamResampler(file_rate, rate)
            pcm = resampler.process(pcm) + resampler.flush()
    else:
        pcm = speech_like(2.5, rate, seed=7)
        write_wav(args.output_dir / "caller.wav", pcm, rate)
        print(f"caller audio: 2.5 s of synthesised speech -> {args.output_dir / 'caller.wav'}")
    pcm += silence(1.2, rate)  # a pause, so the model's turn detection ends the caller's turn

    reply = bytearray()
    printer = _Printer()
    async with _provider_settings(args.provider) as extra:
        engine = new(
            args.provider,
            Config(
                instructions=INSTRUCTIONS,
                tools=[LOOKUP_ORDER],
                sample_rate=rate,
                extra=extra,
            ),
        )
        async with await engine.start() as session:
            print(f"session {session.id} started ({args.provider}, {rate} Hz)")
            turns = 0
            tool_round_trip = asyncio.Event()
            spoken_turn = asyncio.Event()

            async def consume() -> None:
                nonlocal turns
                async for event in session.recv():
                    printer(event)
                    if event.type is EventType.AUDIO_OUTPUT and event.audio:
                        reply.extend(event.audio)
                    elif event.type is EventType.TOOL_CALL and event.tool_call:
                        call = event.tool_call
                        await session.send_tool_result(ToolResult(call.id, _answer(call.args)))
                        print(f"{'':9}  tool answered      {call.name} -> {_answer(call.args)}")
                    elif event.type is EventType.TURN_END and event.reason != "tool_calls":
                        turns += 1
                        (tool_round_trip if spoken_turn.is_set() else spoken_turn).set()

            consumer = asyncio.create_task(consume())
            try:
                async with asyncio.timeout(args.timeout):
                    print(f"streaming {len(pcm) / 2 / rate:.1f} s of caller audio in real time")
                    await _stream_wav(session, pcm, rate)
                    await spoken_turn.wait()
                    print(f"typing: {QUESTION}")
                    await session.send_text(QUESTION)
                    await tool_round_trip.wait()
            except TimeoutError:
                print(f"timed out after {args.timeout:.0f} s")
                return 1
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
    out = args.output_dir / "reply.wav"
    write_wav(out, bytes(reply), rate)
    print(f"wrote {len(reply) / 2 / rate:.2f} s of model audio to {out} ({turns} turns)")
    return 0
