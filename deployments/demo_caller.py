"""The demo caller of ``s2s up``: a contact-centre client of the running service.

It creates a session over REST, streams a spoken-style WAV through the ingress WebSocket in real
time (20 ms frames), then types a question that makes the model call a tool (a tool-worker
process answers it), prints every event as it arrives, and writes the model's audio to a WAV.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from s2s.audio.resample import StreamResampler
from s2s.audio.synth import silence, speech_like
from s2s.audio.wav import read_wav, write_wav

from .api import parse_audio_frame
from .stack import StackInfo

__all__ = ["run_demo_call"]

QUESTION = 'Where is my order A1234? Please call lookup_order {"order_id": "A1234"}'


def _caller_audio(path: Path | None, rate: int, output_dir: Path) -> bytes:
    output_dir.mkdir(parents=True, exist_ok=True)
    if path is not None:
        pcm, file_rate = read_wav(path)
        if file_rate != rate:
            resampler = StreamResampler(file_rate, rate)
            pcm = resampler.process(pcm) + resampler.flush()
        return pcm
    pcm = speech_like(2.5, rate, seed=7)
    write_wav(output_dir / "caller.wav", pcm, rate)
    print(f"caller audio: 2.5 s of synthesised speech -> {output_dir / 'caller.wav'}")
    return pcm


def _describe(event: dict[str, Any]) -> str | None:
    kind = event["type"]
    if kind in ("transcript", "text_output") and not event.get("final"):
        return None
    if kind in ("rate_limits", "usage"):
        return None
    if kind == "transcript":
        return f"[{event.get('role')}] {event.get('text')}"
    if kind == "tool_call":
        call = event["tool_call"]
        return f"{call['name']}({call['arguments']})"
    if kind == "tool_result":
        return (
            f"{event['name']} -> {event['content']} ({event['source']} {event.get('worker', '')}, "
            f"{event['latency_ms']} ms)"
        )
    if kind == "turn_end":
        return f"reason={event.get('reason')}"
    if kind == "turn":
        latency = event.get("response_latency_ms")
        heard = "no model audio" if latency is None else f"response latency {latency:.0f} ms"
        tools = ", ".join(t.get("name", "?") for t in event.get("tools") or [])
        barge = ", barged in" if event.get("interrupted") else ""
        return f"turn {event.get('turn')}: {heard}{barge}" + (f", tools: {tools}" if tools else "")
    if kind == "error":
        return str(event.get("error"))
    if kind in ("session_started", "session_closed", "session_resumed"):
        return json.dumps({k: v for k, v in event.items() if k not in ("seq", "ts", "type")})
    return ""


async def run_demo_call(
    info: StackInfo,
    *,
    provider: str,
    sample_rate: int,
    input_wav: Path | None,
    output_dir: Path,
    limit_s: float,
) -> int:
    pcm = await asyncio.to_thread(_caller_audio, input_wav, sample_rate, output_dir)
    pcm += silence(1.2, sample_rate)
    headers = {"Authorization": f"Bearer {info.api_key}"}
    async with httpx.AsyncClient(base_url=info.base_url, headers=headers, timeout=30) as http:
        reply = await http.post(
            "/v1/sessions",
            json={
                "provider": provider,
                "sample_rate": sample_rate,
                "tools": ["lookup_order"],
                "instructions": "You are a friendly contact-centre agent. Use tools for orders.",
                "metadata": {"caller": "+4420700900123", "queue": "orders"},
            },
        )
        if reply.status_code != 201:
            print(f"creating the session failed: HTTP {reply.status_code} {reply.text}")
            return 1
        session = reply.json()
        print(
            f"session {session['session_id']} ({provider}, {sample_rate} Hz): "
            f"{session['stream_url']}\n"
            f"watch it live: {info.console_url(session['session_id'])}"
        )
        audio = bytearray()
        start = time.monotonic()
        answered = asyncio.Event()
        finished = asyncio.Event()
        turns = 0

        async with websockets.connect(session["stream_url"], additional_headers=headers) as ws:

            async def receive() -> None:
                nonlocal turns
                items: set[str] = set()
                async for frame in ws:
                    stamp = f"+{time.monotonic() - start:6.2f}s"
                    if isinstance(frame, bytes):
                        seq, item_id, chunk = parse_audio_frame(frame)
                        audio.extend(chunk)
                        if item_id not in items:
                            items.add(item_id)
                            print(f"{stamp}  #{seq:<4} audio_output      model speech starts")
                        continue
                    event = json.loads(frame)
                    text = _describe(event)
                    if text is not None:
                        print(
                            f"{stamp}  #{event.get('seq', '-'):<4} {event['type']:<17} {text}",
                            flush=True,
                        )
                    if event["type"] == "turn_end" and event.get("reason") == "completed":
                        turns += 1
                        (finished if turns >= 2 else answered).set()

            receiver = asyncio.create_task(receive())
            try:
                async with asyncio.timeout(limit_s):
                    print(
                        f"streaming {len(pcm) / 2 / sample_rate:.1f} s of caller audio in real time"
                    )
                    step = sample_rate // 50 * 2
                    for index, offset in enumerate(range(0, len(pcm), step)):
                        await ws.send(pcm[offset : offset + step])
                        delay = start + (index + 1) * 0.02 - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    await answered.wait()
                    print(f"typing: {QUESTION}")
                    await ws.send(json.dumps({"type": "text", "text": QUESTION}))
                    await finished.wait()
            except TimeoutError:
                print(f"timed out after {limit_s:.0f} s")
                return 1
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiver
        closed = await http.delete(f"/v1/sessions/{session['session_id']}")
        print(f"session closed: {closed.json()}")
    out = output_dir / "reply.wav"
    await asyncio.to_thread(write_wav, out, bytes(audio), sample_rate)
    print(f"wrote {len(audio) / 2 / sample_rate:.2f} s of model audio to {out}")
    return 0
