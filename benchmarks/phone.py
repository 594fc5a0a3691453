"""Concurrent Twilio phone calls through the service, against a μ-law floor.

    python -m benchmarks.phone --sessions 10,20 --output docs/benchmarks.md

For each N, N callers first stream 8 kHz G.711 μ-law straight to the OpenAI emulator with
``audio/pcmu`` session formats both ways (the **floor**: our protocol messages, no service);
then N Twilio calls go through the service behind HAProxy (the default ingress): the signed voice
webhook, ``<Connect><Stream>``, the Media Stream WebSocket (base64 μ-law in JSON, 20 ms frames
in, ~100 ms segments out with a ``mark`` after each, echoed as they play), the phone bridge, the
session actor, and the provider connection, which takes the μ-law as it is (``audio/pcmu``: no
decoding or resampling anywhere). Same audio and pacing both times (:mod:`benchmarks.load`); the
callers are :mod:`benchmarks.phone_load`'s.

A call's session takes its instructions from its tenant's ``telephony`` section, so each caller
calls a tenant of its own (``bench0``, ``bench1``, …, one Twilio auth token for all, read from
``$S2S_BENCH_TWILIO_TOKEN``), whose instructions name it: that is how the emulator's records are
matched to the callers. A caller starts streaming once its session is configured at the
provider; the first 3 s of every run are excluded, as in :mod:`benchmarks.sessions`.

**In**: a caller's ``media`` frame sent → the emulator got its append. **Out**: the emulator
sent an audio delta → the caller got the ``media`` carrying its last byte. The bridge re-chunks
bot audio into ~100 ms segments (never across items), so segments are placed by the byte offset
of their audio within the item the emulator sent. The bridge also paces audio to real time with
up to 200 ms sent ahead (``telephony.twilio_lead_ms``), on purpose: any wait that pacing adds
when the provider runs ahead of real time is part of *out*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any

from .load import Caller, EmulatorProcess, Pacer, caller_name
from .measure import Latencies, RunResult, measure
from .phone_load import PhoneCaller, out_latencies, twilio_caller
from .report import add_common_arguments, phone_summary, publish, table
from .sessions import (
    CallerFactory,
    floor_run,
    reported,
    running_stack,
    service_config,
    service_run,
)

LABEL = "phone-twilio"
AUDIO = "G.711 μ-law at 8000 Hz, Twilio Media Streams"
TOKEN_VAR = "S2S_BENCH_TWILIO_TOKEN"
DEFAULT_TOKEN = "bench-twilio-auth-token-0123456789"
#: How long a call may take from ``start`` to its session configured at the provider.
READY_TIMEOUT_S = 120.0


def tenant(index: int) -> str:
    return f"bench{index}"


def phone_tenants(count: int) -> dict[str, Any]:
    """One tenant per caller, taking Twilio calls; its instructions name the caller."""
    from deployments.tenancy import hash_key

    return {
        tenant(i): {
            "key_hashes": [hash_key(f"bench-phone-key-{i:04d}")],
            "telephony": {
                "instructions": caller_name(i),
                "twilio": {"auth_token_env": TOKEN_VAR},
            },
        }
        for i in range(count)
    }


class SessionsUp:
    """Which callers' sessions are configured at the provider (from the emulator's sessions,
    polled until all ``count`` are there or the wait has timed out)."""

    def __init__(self, emulator: EmulatorProcess, count: int, poll_s: float = 0.2) -> None:
        self.emulator = emulator
        self.expected = {caller_name(i) for i in range(count)}
        self.poll_s = poll_s
        self.events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.poller: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        with contextlib.suppress(TimeoutError):  # the waits time out on their own
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self._until_all()

    async def _until_all(self) -> None:
        while True:
            names = set(self.emulator.names()) & self.expected
            for name in names:
                self.events[name].set()
            if names == self.expected:
                return
            await asyncio.sleep(self.poll_s)

    async def wait(self, index: int) -> bool:
        if self.poller is None:
            self.poller = asyncio.create_task(self._poll())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self.events[caller_name(index)].wait()
                return True
        return False

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.cancel()


def phone_callers(base_url: str, token: str, up: SessionsUp) -> CallerFactory:
    """Caller ``i`` calls tenant ``bench<i>``'s voice webhook."""

    def call(caller: Caller, pacer: Pacer) -> Awaitable[None]:
        url = f"{base_url}/v1/telephony/twilio/{tenant(caller.index)}/voice"
        return twilio_caller(url, token, up.wait, caller, pacer)

    return call


def phone_measure(emulator: EmulatorProcess, callers: list[Caller], window: float) -> Latencies:
    """In from the appends (as :func:`~benchmarks.measure.measure`), out by byte offset, and
    the streams' tallies."""
    phones = [c for c in callers if isinstance(c, PhoneCaller)]
    records = emulator.dump()
    latencies = measure(callers, records, window)
    stamps = {name: deltas for name, _, deltas in records}
    sent = dict(emulator.audio())
    unmatched = 0
    for caller in phones:
        name = caller_name(caller.index)
        deltas = stamps.get(name, {})
        items = [(deltas.get(item, []), payloads) for item, payloads in sent.get(name, {}).items()]
        found, missed = out_latencies(caller.segments, items, window)
        latencies.outbound += found
        unmatched += missed
    latencies.counts = {
        "marks": sum(c.marks for c in phones),
        "echoes": sum(c.echoes for c in phones),
        "clears": sum(c.clears for c in phones),
        "unmatched": unmatched,
    }
    return latencies


async def phone_runs(
    counts: list[int],
    floors: dict[int, Latencies],
    seconds: float,
    emulator: EmulatorProcess,
    url: str,
) -> tuple[list[RunResult], float]:
    """Every N through HAProxy (one service started for them all); and its idle CPU."""
    token = os.environ.setdefault(TOKEN_VAR, DEFAULT_TOKEN)  # the replicas read it from here
    config = service_config(url, "haproxy", phone_tenants(max(counts)))
    results: list[RunResult] = []
    async with running_stack(config, emulator) as (info, idle):
        for n in counts:
            print(f"  N={n}: Twilio calls through haproxy ({seconds:.0f} s)...", flush=True)
            up = SessionsUp(emulator, n)
            calls = phone_callers(info.base_url, token, up)
            collect = functools.partial(phone_measure, emulator)
            try:
                pacer = Pacer(seconds, n, 8000, ulaw=True)
                result = await service_run(
                    n, pacer, calls, emulator, floors[n], make=PhoneCaller, collect=collect
                )
            finally:
                up.stop()
            counted = result.service.counts
            print(
                f"  marks echoed {counted['echoes']} of {counted['marks']}, "
                f"clears {counted['clears']}, segments not placed {counted['unmatched']}",
                flush=True,
            )
            results.append(reported(result))
    return results, idle


async def main(args: argparse.Namespace) -> int:
    counts = [int(n) for n in args.sessions.split(",")]
    print(f"starting the emulator process (speed {args.speed}x)...", flush=True)
    emulator = EmulatorProcess(args.speed, record=True)
    url = emulator.start()
    try:
        print(f"the μ-law floor, at N = {args.sessions} ({args.seconds:.0f} s each)", flush=True)
        floors = {n: await floor_run(n, args.seconds, emulator, url, ulaw=True) for n in counts}
        results, idle = await phone_runs(counts, floors, args.seconds, emulator, url)
    finally:
        emulator.stop()
    cores = os.cpu_count() or 0
    blocks = {
        f"{LABEL}-summary": phone_summary(results),
        LABEL: table(results, "haproxy", cores, idle, 8000, audio=AUDIO),
    }
    publish(blocks, args.output)
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, "10,20")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="emulator answer speed, x real time (default 1: like a voice)",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
