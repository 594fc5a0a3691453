"""Concurrent real-time calls through the service, against a direct connection (the floor).

    python -m benchmarks.sessions --sessions 10,20,30,40,50 --ingress haproxy,proxy,direct

For each N, N callers first stream straight to the OpenAI emulator (the **floor**: our protocol
messages, no service), then through the whole service once per ingress path: REST create, the
ingress WebSocket (through HAProxy, Serve's Python proxy, or straight to the replica), the media
channel, the session actor's provider connection, and back through Redis. Same audio, same
pacing (see :mod:`benchmarks.load`).

The emulator (its own process) stamps every append it receives and every audio delta it sends
with ``time.monotonic()``; callers stamp every frame they send and receive; on one machine the
clocks agree, so each chunk's latency is measured end to end, in each direction, and *added*
latency is the service's percentile minus the floor's. The service's CPU is the CPU time of
every process it runs (Ray, Serve, HAProxy, actors, redis-server, tool workers), by part, not
the callers' or the emulator's. Memory per session actor is the USS of the actor processes.

``--rate 8000`` is the telephony scenario: callers send 8 kHz PCM16 (a phone line's rate) and
the session actor resamples to and from the provider's 24 kHz. Twilio phone calls (μ-law through
the Twilio endpoint) are :mod:`benchmarks.phone`.

``--output docs/benchmarks.md`` rewrites the results blocks of that file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psutil

from .load import KEY, NATIVE_RATE, Caller, EmulatorProcess, Pacer, direct_caller, service_caller
from .measure import (
    Latencies,
    RunResult,
    actor_memory_mb,
    cpu_seconds,
    kind_of,
    measure,
    service_processes,
)
from .report import add_common_arguments, publish, summary, table

if TYPE_CHECKING:
    from deployments.stack import StackInfo
    from s2s.service.config import ServiceConfig

WARMUP_S = 3.0
INGRESS = ("haproxy", "proxy", "direct")

CallerFactory = Callable[[Caller, Pacer], Awaitable[None]]
#: Latencies from the callers' stamps and the emulator's, from a window start (monotonic s).
Collect = Callable[[list[Caller], float], Latencies]


async def run_callers(
    factory: CallerFactory, n: int, pacer: Pacer, make: Callable[[int], Caller] = Caller
) -> list[Caller]:
    callers = [make(i) for i in range(n)]
    await asyncio.gather(pacer.run(), *(factory(c, pacer) for c in callers))
    return callers


async def floor_run(
    n: int, seconds: float, emulator: EmulatorProcess, url: str, *, ulaw: bool = False
) -> Latencies:
    print(f"  N={n}: floor (straight to the emulator)...", flush=True)
    emulator.reset()
    pacer = Pacer(seconds, n, 8000 if ulaw else NATIVE_RATE, ulaw=ulaw)
    callers = await run_callers(lambda c, p: direct_caller(url, c, p), n, pacer)
    return measure(callers, emulator.dump(), pacer.start + WARMUP_S)


async def service_run(
    n: int,
    pacer: Pacer,
    factory: CallerFactory,
    emulator: EmulatorProcess,
    floor: Latencies,
    *,
    make: Callable[[int], Caller] = Caller,
    collect: Collect | None = None,
) -> RunResult:
    """N callers through the service, against ``floor``; CPU and memory over the window.
    ``collect`` matches their stamps with the emulator's (default: :func:`measure`)."""
    emulator.reset()
    exclude = {emulator.pid}
    outside = [emulator.pid, os.getpid()]
    seconds = pacer.seconds
    window: dict[str, Any] = {}

    async def sample() -> None:
        """CPU of every process over the measured window, and the actors' memory at its end."""
        await pacer.started.wait()
        await asyncio.sleep(max(0.0, pacer.start + WARMUP_S - time.monotonic()))
        processes = service_processes(exclude)
        window["kinds"] = {p.pid: kind_of(p) for p in processes}
        window["before"] = cpu_seconds(processes)
        window["outside_before"] = cpu_seconds([psutil.Process(pid) for pid in outside])
        began = time.monotonic()
        await asyncio.sleep(max(1.0, seconds - WARMUP_S - 0.5))
        window["after"] = cpu_seconds(service_processes(exclude))
        window["outside_after"] = cpu_seconds([psutil.Process(pid) for pid in outside])
        window["memory"] = actor_memory_mb()
        window["elapsed"] = time.monotonic() - began

    sampler = asyncio.create_task(sample())
    callers = await run_callers(factory, n, pacer, make)
    await sampler
    window_start = pacer.start + WARMUP_S
    service = (
        collect(callers, window_start)
        if collect is not None
        else measure(callers, emulator.dump(), window_start)
    )
    before, after, elapsed = window["before"], window["after"], window["elapsed"]
    cores: dict[str, float] = {}
    for pid, used in after.items():
        kind = window["kinds"].get(pid, "ray system")
        cores[kind] = cores.get(kind, 0.0) + (used - before.get(pid, 0.0)) / elapsed
    for name, pid in zip(("emulator", "callers"), outside, strict=True):
        spent = window["outside_after"].get(pid, 0.0) - window["outside_before"].get(pid, 0.0)
        cores[name] = spent / elapsed
    total = sum(used - before.get(pid, 0.0) for pid, used in after.items())
    errors = [e for c in callers for e in c.errors]
    return RunResult(n, floor, service, total / (n * elapsed), window["memory"], errors, cores)


def service_config(url: str, ingress: str, tenants: dict[str, Any] | None = None) -> ServiceConfig:
    """The benchmarked service: the emulator as its provider, room for every call."""
    from s2s.service.config import ServiceConfig

    return ServiceConfig.model_validate(
        {
            "providers": {
                "openai_realtime": {
                    "api_key_env": [],
                    "emulate_without_key": False,
                    "extra": {"api_key": KEY, "base_url": url},
                }
            },
            "serve": {"ingress": ingress, "port": 8000},
            "sessions": {"slots_per_node": 1000, "idle_timeout_s": 600},
            "auth": {"api_keys": ["bench-key"]},
            "tenants": tenants or {},
        }
    )


@contextlib.asynccontextmanager
async def running_stack(
    config: ServiceConfig, emulator: EmulatorProcess
) -> AsyncIterator[tuple[StackInfo, float]]:
    """The service up (stopped again on the way out, also on errors and Ctrl-C), and its
    idle CPU in cores."""
    from deployments.stack import LocalStack

    print(f"starting the service ({config.serve.ingress} ingress)...", flush=True)
    stack = LocalStack(config, workers_per_pool=1)
    starting = asyncio.ensure_future(asyncio.to_thread(stack.start))
    try:
        info = await asyncio.shield(starting)
        await asyncio.sleep(3)
        processes = service_processes({emulator.pid})
        before = cpu_seconds(processes)
        await asyncio.sleep(5)
        after = cpu_seconds(processes)
        yield info, sum(after[p] - before.get(p, 0.0) for p in after) / 5
    finally:
        await asyncio.wait({starting})  # a start cut short by Ctrl-C ends first, then stops
        await asyncio.to_thread(stack.stop)


def reported(result: RunResult) -> RunResult:
    if result.errors:
        print(f"  {len(result.errors)} errors, first: {result.errors[0]}", flush=True)
    return result


async def ingress_runs(
    ingress: str,
    counts: list[int],
    floors: dict[int, Latencies],
    args: argparse.Namespace,
    emulator: EmulatorProcess,
    url: str,
) -> tuple[list[RunResult], float]:
    """Every N through one ingress path (one service started for them all); and its idle CPU."""
    results: list[RunResult] = []
    async with running_stack(service_config(url, ingress), emulator) as (info, idle):
        for n in counts:
            print(f"  N={n}: through {ingress} ({args.seconds:.0f} s)...", flush=True)
            pacer = Pacer(args.seconds, n, args.rate)
            caller = functools.partial(service_caller, info.base_url, info.api_key)
            results.append(reported(await service_run(n, pacer, caller, emulator, floors[n])))
    return results, idle


async def main(args: argparse.Namespace) -> int:
    counts = [int(n) for n in args.sessions.split(",")]
    paths = [p.strip() for p in args.ingress.split(",")]
    unknown = [p for p in paths if p not in INGRESS]
    if unknown:
        raise SystemExit(f"--ingress: unknown path(s) {unknown}; choose from {INGRESS}")
    print(f"starting the emulator process (speed {args.speed}x)...", flush=True)
    emulator = EmulatorProcess(args.speed)
    url = emulator.start()
    by_path: dict[str, tuple[list[RunResult], float]] = {}
    try:
        print(f"the floor, at N = {args.sessions} ({args.seconds:.0f} s each)", flush=True)
        floors = {n: await floor_run(n, args.seconds, emulator, url) for n in counts}
        for path in paths:
            by_path[path] = await ingress_runs(path, counts, floors, args, emulator, url)
    finally:
        emulator.stop()
    scenario = "telephony" if args.rate == 8000 else f"{args.rate}"
    cores = os.cpu_count() or 0
    blocks: dict[str, str] = {}
    for path, (results, idle) in by_path.items():
        label = path if args.rate == NATIVE_RATE else f"{path}-{scenario}"
        blocks[label] = table(results, label, cores, idle, args.rate)
    if len(by_path) > 1:
        blocks["summary" if args.rate == NATIVE_RATE else f"summary-{scenario}"] = summary(
            {path: results for path, (results, _) in by_path.items()}
        )
    publish(blocks, args.output)
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, "10,20,30")
    parser.add_argument(
        "--ingress",
        default="haproxy",
        help="comma-separated ingress paths to measure: haproxy, proxy, direct (default haproxy)",
    )
    parser.add_argument(
        "--rate",
        type=int,
        choices=(8000, 16000, 24000),
        default=NATIVE_RATE,
        help="the callers' PCM16 rate (default 24000; 8000 is the telephony scenario)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="emulator answer speed, x real time (default 1: like a voice)",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
