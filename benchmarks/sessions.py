"""Concurrent real-time sessions through the service, against a direct connection (the floor).

    python -m benchmarks.sessions --sessions 10,25,50 --seconds 20 [--ingress direct]

For each N it runs N callers twice, with the same audio and the same pacing:

* **floor**: N raw protocol clients straight to the OpenAI emulator;
* **service**: N clients through the whole service: REST create, the ingress WebSocket, the
  media channel, the session actor's provider connection, and back through Redis.

Every caller streams 20 ms PCM16 frames in real time (2 s of speech, 1.5 s of silence, over and
over, each caller at its own phase, as independent calls are); the emulator answers each turn
with audio. The emulator (its own process) stamps every
append it receives and every audio delta it sends with ``time.monotonic()``; callers stamp
every frame they send and receive; on one machine the clocks agree, so each chunk's latency is
measured end to end, in each direction. The service's CPU is the CPU time of every process the
service runs (Ray, Serve, actors, redis-server, tool workers), not the callers' or the
emulator's. Memory per session actor is the USS of the actor processes.

``--output docs/benchmarks.md`` rewrites the results block of that file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

from s2s.audio.synth import silence, speech_like
from s2s.config import Config
from s2s.providers.openai_realtime import resolve
from s2s.providers.openai_realtime.wire import audio_append, dumps

RATE = 24000
FRAME = RATE // 50 * 2  # 20 ms of PCM16 at 24 kHz
MAGIC = 0x5253  # marks the first frame of each caller with its index
KEY = "sk-bench-0000"
WARMUP_S = 3.0


# -- the emulator, in its own process ------------------------------------------------------------


def _emulator_process(conn: Connection, speed: float) -> None:
    from s2s.emulators.openai import OpenAIEmulator

    async def main() -> None:
        async with OpenAIEmulator(api_key=KEY, speed=speed, timing=True) as emulator:
            conn.send(emulator.url)
            while True:
                command = await asyncio.to_thread(conn.recv)
                if command == "dump":
                    conn.send(
                        [(s.first_audio, s.append_times, s.delta_times) for s in emulator.sessions]
                    )
                elif command == "reset":
                    emulator.sessions.clear()
                    conn.send("ok")
                else:
                    return

    asyncio.run(main())


class EmulatorProcess:
    def __init__(self, speed: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_emulator_process, args=(child, speed), daemon=True)

    def start(self) -> str:
        self.process.start()
        url: str = self.conn.recv()
        return url

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def dump(self) -> list[tuple[bytes, list[float], dict[str, list[float]]]]:
        self.conn.send("dump")
        records: list[tuple[bytes, list[float], dict[str, list[float]]]] = self.conn.recv()
        return records

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(10)


# -- callers ---------------------------------------------------------------------------------------


@dataclass
class Caller:
    index: int
    sent: list[float] = field(default_factory=list)  # monotonic time of each frame sent
    received: list[tuple[str, float]] = field(default_factory=list)  # (item id, time)
    errors: list[str] = field(default_factory=list)


def caller_audio() -> bytes:
    return speech_like(2.0, RATE, seed=11) + silence(1.5, RATE)


def marker(index: int) -> bytes:
    return struct.pack("<HH", MAGIC, index) + bytes(FRAME - 4)


class Pacer:
    """Sends every caller's next 20 ms frame on one tick (one wakeup per tick for all callers).

    On this kind of VM a process wakeup costs ~0.2 ms of CPU; N callers each sleeping 20 ms
    would cost the load generator as much CPU as the system under test. A telephony gateway
    batches its media the same way.
    """

    def __init__(self, seconds: float, expected: int) -> None:
        self.seconds = seconds
        self.expected = expected
        self.start = 0.0
        self.members: list[tuple[Caller, Any, list[bytes]]] = []
        self.joined = asyncio.Event()
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    def join(self, caller: Caller, send: Any) -> None:
        pattern = caller_audio()
        frames = [pattern[i : i + FRAME] for i in range(0, len(pattern) - FRAME + 1, FRAME)]
        phase = (caller.index * 37) % len(frames)  # independent calls do not speak in lockstep
        self.members.append((caller, send, frames[phase:] + frames[:phase]))
        if len(self.members) + self.failed >= self.expected:
            self.joined.set()

    failed = 0

    def give_up(self) -> None:
        """A caller could not connect; do not wait for it."""
        self.failed += 1
        if len(self.members) + self.failed >= self.expected:
            self.joined.set()

    async def run(self) -> None:
        await asyncio.wait_for(self.joined.wait(), 300)
        self.start = time.monotonic() + 0.5  # every caller streams for the same time
        self.started.set()
        for k in range(int(self.seconds * 50) + 1):
            delay = self.start + k * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for caller, send, frames in list(self.members):
                frame = marker(caller.index) if k == 0 else frames[(k - 1) % len(frames)]
                caller.sent.append(time.monotonic())
                try:
                    await send(frame)
                except Exception as exc:
                    caller.errors.append(f"send: {exc!r}")
                    self.members.remove((caller, send, frames))
        self.done.set()


async def direct_caller(url: str, caller: Caller, pacer: Pacer) -> None:
    """The floor: our protocol's messages, sent straight to the emulator."""
    session = resolve(Config(extra={"api_key": KEY})).session_config()
    async with websockets.connect(
        url + "?model=gpt-realtime",
        max_size=None,
        compression=None,
        additional_headers={"Authorization": f"Bearer {KEY}"},
    ) as ws:
        await ws.recv()
        await ws.send(dumps({"type": "session.update", "session": session}))
        while json.loads(await ws.recv())["type"] != "session.updated":
            pass

        async def receive() -> None:
            async for message in ws:
                if '"response.output_audio.delta"' in message[:60]:
                    event = json.loads(message)
                    caller.received.append((event["item_id"], time.monotonic()))

        reader = asyncio.create_task(receive())

        async def send(frame: bytes) -> None:
            await ws.send(audio_append(frame))

        pacer.join(caller, send)
        await pacer.done.wait()
        await asyncio.sleep(1.5)
        reader.cancel()


async def service_caller(base: str, api_key: str, caller: Caller, pacer: Pacer) -> None:
    """Through the service: REST create, WebSocket stream, close."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        reply = await http.post("/v1/sessions", json={"sample_rate": RATE, "tools": []})
        if reply.status_code != 201:
            caller.errors.append(f"create: HTTP {reply.status_code} {reply.text[:200]}")
            pacer.give_up()
            return
        session = reply.json()
        async with websockets.connect(
            session["stream_url"], additional_headers=headers, max_size=None, compression=None
        ) as ws:

            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, bytes):
                        length = message[8]
                        item = message[9 : 9 + length].decode()
                        caller.received.append((item, time.monotonic()))

            reader = asyncio.create_task(receive())
            pacer.join(caller, ws.send)
            await pacer.done.wait()
            await asyncio.sleep(1.5)
            reader.cancel()
        await http.delete(f"/v1/sessions/{session['session_id']}")


# -- analysis --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Latencies:
    inbound: list[float] = field(default_factory=list)
    outbound: list[float] = field(default_factory=list)
    frames_sent: int = 0
    frames_arrived: int = 0


def measure(
    callers: list[Caller],
    records: list[tuple[bytes, list[float], dict[str, list[float]]]],
    window_start: float,
) -> Latencies:
    by_index: dict[int, tuple[list[float], dict[str, list[float]]]] = {}
    for first, appends, deltas in records:
        if len(first) >= 4:
            magic, index = struct.unpack("<HH", first[:4])
            if magic == MAGIC:
                by_index[index] = (appends, deltas)
    out = Latencies()
    for caller in callers:
        appends, deltas = by_index.get(caller.index, ([], {}))
        out.frames_sent += len(caller.sent)
        out.frames_arrived += len(appends)
        for sent, arrived in zip(caller.sent, appends, strict=False):
            if sent >= window_start:
                out.inbound.append(arrived - sent)
        seen: dict[str, int] = {}
        for item, received in caller.received:
            position = seen.get(item, 0)
            seen[item] = position + 1
            stamps = deltas.get(item, [])
            if position < len(stamps) and stamps[position] >= window_start:
                out.outbound.append(received - stamps[position])
    return out


# -- service processes -----------------------------------------------------------------------------


def service_processes(exclude: set[int]) -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if p.pid not in exclude]


_KINDS = (
    ("SessionActor", "session actors"),
    ("ServeReplica", "ingress replica"),
    ("redis-server", "redis"),
    ("tool-worker", "tool workers"),
)


def kind_of(process: psutil.Process) -> str:
    """Which part of the service a process is (everything else is Ray's own machinery)."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "ray system"
    return next((name for key, name in _KINDS if key in command), "ray system")


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for process in processes:
        try:
            times = process.cpu_times()
            out[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return out


def actor_memory_mb() -> list[float]:
    sizes = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any("SessionActor" in part for part in process.info["cmdline"] or []):
                sizes.append(process.memory_full_info().uss / 2**20)
        except psutil.Error:
            pass
    return sizes


# -- runs ------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    n: int
    floor: Latencies
    service: Latencies
    cpu_per_session: float
    actor_mb: list[float]
    errors: list[str]
    cores: dict[str, float] = field(default_factory=dict)
    """Cores used during the window, by part (service parts, the emulator, the callers)."""


async def run_callers(
    factory: Any, n: int, seconds: float, pacer: Pacer | None = None
) -> tuple[list[Caller], float]:
    callers = [Caller(i) for i in range(n)]
    pacer = pacer or Pacer(seconds, n)
    await asyncio.gather(pacer.run(), *(factory(c, pacer) for c in callers))
    return callers, pacer.start


async def one_n(
    n: int, seconds: float, emulator: EmulatorProcess, emulator_url: str, base: str, api_key: str
) -> RunResult:
    print(f"  N={n}: floor run (direct to the emulator)...", flush=True)
    emulator.reset()
    callers, start = await run_callers(lambda c, p: direct_caller(emulator_url, c, p), n, seconds)
    floor = measure(callers, emulator.dump(), start + WARMUP_S)

    print(f"  N={n}: service run (through ingress, actors, Redis)...", flush=True)
    emulator.reset()
    exclude = {emulator.process.pid}
    cpu_before: dict[int, float] = {}
    cpu_after: dict[int, float] = {}
    kinds: dict[int, str] = {}
    memory: list[float] = []
    others_before: list[float] = []
    others_after: list[float] = []
    outside = [emulator.process.pid, os.getpid()]

    pacer = Pacer(seconds, n)

    async def sample() -> None:
        nonlocal cpu_before, cpu_after, memory
        await pacer.started.wait()
        await asyncio.sleep(max(0.0, pacer.start + WARMUP_S - time.monotonic()))
        processes = service_processes(exclude)
        kinds.update({p.pid: kind_of(p) for p in processes})
        cpu_before = cpu_seconds(processes)
        others_before[:] = [cpu_seconds([psutil.Process(pid)]).get(pid, 0.0) for pid in outside]
        began = time.monotonic()
        await asyncio.sleep(max(1.0, seconds - WARMUP_S - 0.5))
        cpu_after = cpu_seconds(service_processes(exclude))
        others_after[:] = [cpu_seconds([psutil.Process(pid)]).get(pid, 0.0) for pid in outside]
        memory = actor_memory_mb()
        sample.elapsed = time.monotonic() - began  # type: ignore[attr-defined]

    sampler = asyncio.create_task(sample())
    callers, start = await run_callers(
        lambda c, p: service_caller(base, api_key, c, p), n, seconds, pacer
    )
    await sampler
    service = measure(callers, emulator.dump(), start + WARMUP_S)
    used = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
    elapsed = sample.elapsed  # type: ignore[attr-defined]
    errors = [e for c in callers for e in c.errors]
    cores: dict[str, float] = {}
    for pid, after in cpu_after.items():
        kind = kinds.get(pid, "ray system")
        cores[kind] = cores.get(kind, 0.0) + (after - cpu_before.get(pid, 0.0)) / elapsed
    cores["emulator"] = (others_after[0] - others_before[0]) / elapsed
    cores["callers"] = (others_after[1] - others_before[1]) / elapsed
    return RunResult(n, floor, service, used / (n * elapsed), memory, errors, cores)


def table(results: list[RunResult], mode: str, cores: int, idle_cpu: float) -> str:
    lines = [
        f"Ingress: **{mode}**. Machine: {cores} cores. Idle service (no calls): "
        f"{idle_cpu:.2f} core.",
        "",
        "| N | direction | floor p50 | floor p99 | service p50 | service p99 | "
        "added p50 | added p99 | frames arrived |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name, f, s in (
            ("in", r.floor.inbound, r.service.inbound),
            ("out", r.floor.outbound, r.service.outbound),
        ):
            fp50, fp99 = percentile(f, 0.5) * 1e3, percentile(f, 0.99) * 1e3
            sp50, sp99 = percentile(s, 0.5) * 1e3, percentile(s, 0.99) * 1e3
            arrived = (
                f"{r.service.frames_arrived}/{r.service.frames_sent}"
                if name == "in"
                else f"{len(s)} chunks"
            )
            lines.append(
                f"| {r.n} | {name} | {fp50:.1f} ms | {fp99:.1f} ms | {sp50:.1f} ms | "
                f"{sp99:.1f} ms | {sp50 - fp50:+.1f} ms | {sp99 - fp99:+.1f} ms | "
                f"{arrived} |"
            )
    parts = ("session actors", "ingress replica", "redis", "ray system")
    lines += [
        "",
        "| N | service CPU per session-second | memory per session actor (USS) | "
        + " | ".join(f"{p} (cores)" for p in parts)
        + " | emulator + callers (cores) | errors |",
        "|---|---|---|" + "---|" * len(parts) + "---|---|",
    ]
    for r in results:
        memory = (
            f"{statistics.mean(r.actor_mb):.1f} MB (max {max(r.actor_mb):.1f})"
            if r.actor_mb
            else "n/a"
        )
        shares = " | ".join(f"{r.cores.get(p, 0.0):.2f}" for p in parts)
        load = r.cores.get("emulator", 0.0) + r.cores.get("callers", 0.0)
        lines.append(
            f"| {r.n} | {r.cpu_per_session:.4f} core | {memory} | {shares} | {load:.2f} | "
            f"{len(r.errors)} |"
        )
    sustained = [
        r.n
        for r in results
        if not r.errors
        and r.service.frames_arrived >= r.service.frames_sent
        and all(
            percentile(s, 0.99) - percentile(f, 0.99) < 0.050
            for f, s in (
                (r.floor.inbound, r.service.inbound),
                (r.floor.outbound, r.service.outbound),
            )
        )
    ]
    lines += [
        "",
        f"Largest N sustained with added p99 under 50 ms (of those tried): "
        f"**{max(sustained) if sustained else 'none'}**.",
    ]
    return "\n".join(lines)


def write_results(path: Path, mode: str, text: str) -> None:
    start, end = f"<!-- results:{mode}:start -->", f"<!-- results:{mode}:end -->"
    document = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in document and end in document:
        before, rest = document.split(start, 1)
        document = before + block + rest.split(end, 1)[1]
    else:
        document = document.rstrip() + "\n\n" + block + "\n"
    path.write_text(document)


async def main(args: argparse.Namespace) -> int:
    from deployments.stack import LocalStack
    from s2s.service.config import ServiceConfig

    counts = [int(n) for n in args.sessions.split(",")]
    print(f"starting the emulator process (speed {args.speed}x)...", flush=True)
    emulator = EmulatorProcess(args.speed)
    url = emulator.start()
    config = ServiceConfig.model_validate(
        {
            "providers": {
                "openai_realtime": {
                    "api_key_env": [],
                    "emulate_without_key": False,
                    "extra": {"api_key": KEY, "base_url": url},
                }
            },
            "serve": {"direct_ingress": args.ingress == "direct", "port": 8000},
            "sessions": {"slots_per_node": 1000, "idle_timeout_s": 600},
            "auth": {"api_keys": ["bench-key"]},
        }
    )
    print(f"starting the service ({args.ingress} ingress)...", flush=True)
    stack = LocalStack(config, workers_per_pool=1)
    info = await asyncio.to_thread(stack.start)
    results: list[RunResult] = []
    try:
        await asyncio.sleep(3)
        processes = service_processes({emulator.process.pid})
        before = cpu_seconds(processes)
        await asyncio.sleep(5)
        after = cpu_seconds(processes)
        idle = sum(after[p] - before.get(p, 0.0) for p in after) / 5
        for n in counts:
            print(f"N={n}: {args.seconds:.0f} s of real-time audio per run", flush=True)
            result = await one_n(n, args.seconds, emulator, url, info.base_url, info.api_key)
            results.append(result)
            if result.errors:
                print(f"  {len(result.errors)} errors, first: {result.errors[0]}", flush=True)
    finally:
        await asyncio.to_thread(stack.stop)
        emulator.stop()
    text = table(results, args.ingress, os.cpu_count() or 0, idle)
    print("\n" + text)
    if args.output:
        write_results(Path(args.output), args.ingress, text)
        print(f"\nresults written to {args.output}")
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sessions", default="10,25,50", help="comma-separated session counts (default 10,25,50)"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="real-time audio per run (default 20)"
    )
    parser.add_argument(
        "--ingress",
        choices=("proxy", "direct"),
        default="direct",
        help="Serve proxy or experimental direct ingress (default direct)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="emulator answer speed, x real time (default 1: like a voice)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="MARKDOWN",
        help="rewrite the results block of this file (docs/benchmarks.md)",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
