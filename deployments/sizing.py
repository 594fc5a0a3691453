"""How many session slots a Ray worker pod offers: the formula docs/deploy.md explains.

``slots = min(memory slots, CPU slots)`` where

* memory slots = ``(memory_fraction x pod memory - base) / memory per session``: the base covers
  the raylet, Ray's agents, the Serve proxy and an ingress replica; ``memory_fraction`` keeps
  the node well below Ray's OOM killer, which acts at 95 % of the pod's memory;
* CPU slots = ``cpu_fraction x pod CPUs / CPU per session``.

The defaults come from ``benchmarks/sessions.py`` on a 2-core VM (see docs/benchmarks.md): a
session actor is about 59 MB USS / 100 MB RSS (RSS is used, as the conservative figure), and a
real-time call costs about 0.053 core through Serve's proxy (the path on Kubernetes) at 30 calls,
0.036 through the direct ingress; 0.06 keeps a margin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SessionCost", "parse_cpu", "parse_memory", "session_slots"]

RAY_OOM_THRESHOLD = 0.95
_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


@dataclass(frozen=True, slots=True)
class SessionCost:
    """What one call costs on a worker pod, and the headroom kept."""

    memory_mb: float = 100.0
    cpu: float = 0.06
    base_mb: float = 1024.0
    memory_fraction: float = 0.80
    cpu_fraction: float = 0.70

    def __post_init__(self) -> None:
        if not 0 < self.memory_fraction < RAY_OOM_THRESHOLD:
            raise ValueError(f"memory_fraction must be in (0, {RAY_OOM_THRESHOLD})")
        if not 0 < self.cpu_fraction <= 1:
            raise ValueError("cpu_fraction must be in (0, 1]")
        if self.memory_mb <= 0 or self.cpu <= 0 or self.base_mb < 0:
            raise ValueError("costs must be positive")


def session_slots(memory_bytes: int, cpus: float, cost: SessionCost = SessionCost()) -> int:
    """Session slots for a pod with ``memory_bytes`` and ``cpus`` (its limits)."""
    memory_mb = memory_bytes / 2**20
    by_memory = (cost.memory_fraction * memory_mb - cost.base_mb) / cost.memory_mb
    by_cpu = cost.cpu_fraction * cpus / cost.cpu
    return max(0, int(min(by_memory, by_cpu)))


def parse_memory(quantity: str | int) -> int:
    """A Kubernetes memory quantity (``16Gi``, ``512M``, ``1000``) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kMGT]i?)?", str(quantity).strip())
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""])


def parse_cpu(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity (``4``, ``500m``, ``1.5``) in cores."""
    text = str(quantity).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", text)
    if not match:
        raise ValueError(f"not a CPU quantity: {quantity!r}")
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value
