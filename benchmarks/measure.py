"""What the session benchmark measures: latencies from both sides' stamps, and the CPU and
memory of the service's processes by part."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

from .load import Caller, Record, caller_name


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
    counts: dict[str, int] = field(default_factory=dict)
    """Other tallies of the run (phone calls: marks sent and echoed, clears)."""


def measure(callers: list[Caller], records: list[Record], window_start: float) -> Latencies:
    by_name = {name: (appends, deltas) for name, appends, deltas in records}
    out = Latencies()
    for caller in callers:
        appends, deltas = by_name.get(caller_name(caller.index), ([], {}))
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
    # What carries a frame from the port to the replica: Serve's Python proxy, or HAProxy and
    # the actor that manages it.
    ("ProxyActor", "proxy"),
    ("HAProxyMan", "proxy"),
    ("haproxy", "proxy"),
    ("redis-server", "redis"),
    ("tool-worker", "tool workers"),
)

#: The parts the tables show, in order (tool workers idle in this benchmark).
PARTS = ("session actors", "ingress replica", "proxy", "redis", "ray system")


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


@dataclass
class RunResult:
    """One ingress path at one N: latencies against the floor's, CPU by part, memory."""

    n: int
    floor: Latencies
    service: Latencies
    cpu_per_session: float
    actor_mb: list[float]
    errors: list[str]
    cores: dict[str, float] = field(default_factory=dict)
    """Cores used during the window, by part (service parts, the emulator, the callers)."""
