"""Cluster-wide metrics: accumulate in each process, flush to one Redis hash, render anywhere.

Session actors, replicas and tool workers are separate processes on separate nodes. Each keeps
cheap in-memory counters and histograms (:class:`Metrics`) and adds them to the Redis hash
``s2s:metrics`` every few seconds (``HINCRBYFLOAT``, one pipeline). Any ingress replica renders
the hash in the Prometheus text format on ``/metrics`` (:mod:`.metrics_render`), so a scrape of
any replica sees the whole cluster. Recording needs no Prometheus library: session actors do not
load one.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from . import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["COUNTERS", "HISTOGRAMS", "Labels", "Metrics", "decode_labels"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: Response latency and time to first audio: what a caller notices, 100 ms to 10 s.
RESPONSE_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

#: name -> help text
COUNTERS = {
    "s2s_sessions_started": "Sessions started, by provider.",
    "s2s_sessions_closed": "Sessions closed, by provider and reason.",
    "s2s_audio_in_seconds": "Caller audio sent to providers, in seconds.",
    "s2s_audio_out_seconds": "Model audio received from providers, in seconds.",
    "s2s_provider_errors": "Errors reported by providers, by provider and code.",
    "s2s_session_resumptions": "Calls moved to a new provider connection, by reason.",
    "s2s_provider_failovers": "Calls moved to another provider (failover), by from, to and reason.",
    "s2s_provider_skips": (
        "New calls started past a provider down for their account (quota, billing, credentials), "
        "by provider and code."
    ),
    "s2s_tool_calls": "Tool calls, by pool, tool and outcome.",
    "s2s_barge_ins": "Callers speaking over the model (barge-ins), by provider.",
}
#: name -> (help text, buckets)
HISTOGRAMS = {
    "s2s_added_latency_seconds": (
        "Latency the service adds to a chunk, by direction (in: ingress to provider socket; "
        "out: provider event to client socket).",
        LATENCY_BUCKETS,
    ),
    "s2s_tool_latency_seconds": ("Tool call latency from request to result.", TOOL_BUCKETS),
    "s2s_response_latency_seconds": (
        "Response latency per turn: the caller stopped speaking (or sent text) to the first "
        "model audio sent to the caller, by provider.",
        RESPONSE_BUCKETS,
    ),
    "s2s_first_audio_seconds": (
        "Time from the start of a call to the model's first audio, by provider.",
        RESPONSE_BUCKETS,
    ),
}

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _encode(labels: Labels) -> str:
    return ",".join(f"{k}={v}" for k, v in labels)


def decode_labels(text: str) -> Labels:
    if not text:
        return ()
    return tuple(tuple(part.split("=", 1)) for part in text.split(","))  # type: ignore[misc]


class Metrics:
    """In-process counters and histograms, drained into Redis by :meth:`flush`."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Labels], float] = defaultdict(float)
        self._buckets: dict[tuple[str, Labels, int], int] = defaultdict(int)
        self._sums: dict[tuple[str, Labels], float] = defaultdict(float)
        self._counts: dict[tuple[str, Labels], int] = defaultdict(int)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._counters[(name, _labels(labels))] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = HISTOGRAMS[name][1]
        key = (name, _labels(labels))
        self._buckets[(name, key[1], bisect.bisect_left(buckets, value))] += 1
        self._sums[key] += value
        self._counts[key] += 1

    def _fields(self) -> Iterator[tuple[str, float]]:
        for (name, labels), value in self._counters.items():
            yield f"c|{name}|{_encode(labels)}", value
        for (name, labels, index), count in self._buckets.items():
            yield f"b|{name}|{_encode(labels)}|{index}", count
        for (name, labels), value in self._sums.items():
            yield f"s|{name}|{_encode(labels)}", value
        for (name, labels), count in self._counts.items():
            yield f"n|{name}|{_encode(labels)}", count

    async def flush(self, redis: Redis) -> None:
        """Add everything accumulated since the last flush to the cluster totals."""
        fields = list(self._fields())
        if not fields:
            return
        self._counters.clear()
        self._buckets.clear()
        self._sums.clear()
        self._counts.clear()
        async with redis.pipeline(transaction=False) as pipe:
            for field, value in fields:
                pipe.hincrbyfloat(keys.METRICS, field, value)
            await pipe.execute()
