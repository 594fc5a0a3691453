"""A bounded soak (``make soak``): many real-time calls for minutes, a fault every interval.

Off unless ``S2S_SOAK_MINUTES`` is set (CI runs the fault matrix, not the soak). Every
``S2S_SOAK_FAULT_EVERY_S`` seconds one fault strikes, in turn: a call's session actor killed,
a call's session actor frozen (SIGSTOP, let go once the call moved), a caller's network dropped,
Redis paused for 7 s (``CLIENT PAUSE 7000 ALL``). At the end every call is checked as in the
fault matrix (audio at the provider exactly once and in order, every event seq exactly once) and
the totals are printed for ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections import Counter, defaultdict

import psutil
import pytest
from redis.asyncio import Redis

from deployments.stack import LocalStack

from .fault_calls import (
    TaggedCaller,
    assert_exactly_once,
    assert_seqs_once,
    conversation_audio,
    frame_bodies,
    stranded_audio_ms,
)
from .stack import EmulatorThread, http_client
from .test_faults import actor_info, end_calls

MINUTES = float(os.environ.get("S2S_SOAK_MINUTES", "0"))
CALLS = int(os.environ.get("S2S_SOAK_CALLS", "20"))
FAULT_EVERY_S = float(os.environ.get("S2S_SOAK_FAULT_EVERY_S", "30"))
SESSION_SLOTS = CALLS + 4

FAULTS = ("actor killed", "actor frozen", "client dropped", "redis paused")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.fault,
    pytest.mark.skipif(not MINUTES, reason="the soak runs with S2S_SOAK_MINUTES set (make soak)"),
    pytest.mark.timeout(MINUTES * 60 + 600),
]


def _resumptions(caller: TaggedCaller) -> int:
    events = caller.events + (caller.call.events if caller.call else [])
    return sum(1 for e in events if e["type"] == "session_started" and e.get("resumed"))


async def _resumed(caller: TaggedCaller, before: int, struck: float) -> float:
    async with asyncio.timeout(30):
        while _resumptions(caller) <= before:
            await asyncio.sleep(0.05)
    return time.monotonic() - struck


async def _strike(kind: str, victim: TaggedCaller, stack: LocalStack) -> float:
    """Inject one fault on ``victim``'s call; seconds until the call was served again."""
    struck = time.monotonic()
    if kind in ("actor killed", "actor frozen"):
        pid = int(actor_info(stack, victim.session_id)["pid"])
        before = _resumptions(victim)
        os.kill(pid, signal.SIGKILL if kind == "actor killed" else signal.SIGSTOP)
        try:
            return await _resumed(victim, before, struck)
        finally:
            if kind == "actor frozen":
                try:
                    psutil.Process(pid).resume()
                except psutil.NoSuchProcess:
                    pass
    if kind == "client dropped":
        assert victim.call is not None
        reconnects = victim.reconnects
        victim.call.ws.transport.abort()
        async with asyncio.timeout(30):
            while victim.reconnects == reconnects or victim.call is None:
                await asyncio.sleep(0.05)
        return time.monotonic() - struck
    assert stack.info is not None
    redis = Redis.from_url(stack.info.redis_url)
    try:
        await redis.execute_command("CLIENT", "PAUSE", "7000", "ALL")
    finally:
        await redis.aclose()
    await asyncio.sleep(7.0)
    return time.monotonic() - struck


async def test_calls_survive_a_fault_every_interval_for_minutes(
    base: str, ws_base: str, stack: LocalStack, emulator: EmulatorThread
) -> None:
    seconds = MINUTES * 60
    callers = []
    async with http_client(base) as http:
        for n in range(CALLS):
            reply = await http.post("/v1/sessions", json={"sample_rate": 24000})
            assert reply.status_code == 201, reply.text
            sid = reply.json()["session_id"]
            callers.append(TaggedCaller(ws_base, sid, 100 + n, frame_bodies(seconds)))
    await asyncio.gather(*(caller.connect() for caller in callers))
    began = time.monotonic()
    streams = [asyncio.create_task(caller.stream()) for caller in callers]
    recoveries: dict[str, list[float]] = defaultdict(list)
    struck = 0
    while time.monotonic() - began + FAULT_EVERY_S < seconds - 5:
        await asyncio.sleep(FAULT_EVERY_S)
        kind = FAULTS[struck % len(FAULTS)]
        victim = callers[struck % len(callers)]
        took = await _strike(kind, victim, stack)
        recoveries[kind].append(took)
        struck += 1
        elapsed = time.monotonic() - began
        print(f"[{elapsed:6.0f} s] {kind} on call {victim.tag}: served again after {took:.2f} s")
    await asyncio.gather(*streams)
    await end_calls(base, callers)

    frames = conversation_audio(emulator)
    sent = sum(len(c.frames) for c in callers)
    arrived = {c.tag: frames.get(c.tag, []) for c in callers}
    missing = sum(len(set(range(len(c.frames))) - set(arrived[c.tag])) for c in callers)
    duplicated = sum(len(got) - len(set(got)) for got in arrived.values())
    events = sum(len(c.seqs) for c in callers)
    seq_faults = sum(1 for c in callers if c.seqs != list(range(1, len(c.seqs) + 1)))
    closes = Counter(code for c in callers for code, _ in c.closed)
    stranded = stranded_audio_ms(emulator)
    print(f"\nsoak: {CALLS} calls x {MINUTES:g} min, a fault every {FAULT_EVERY_S:g} s")
    for kind, times in recoveries.items():
        print(
            f"  {kind:15} x{len(times):3}: served again median {statistics.median(times):.2f} s,"
            f" max {max(times):.2f} s"
        )
    print(
        f"  frames sent {sent}, missing {missing}, duplicated {duplicated} (20 ms each);"
        f" events {events}, calls with a seq gap or repeat {seq_faults};"
        f" reconnects {sum(c.reconnects for c in callers)}, closes by code {dict(closes)};"
        f" speech stranded on lost provider connections {sum(stranded.values())} ms"
    )
    assert struck >= 1
    assert stranded == {}
    assert_exactly_once(frames, callers)
    for caller in callers:
        assert_seqs_once(caller)
