"""Rendering the cluster-wide metrics (``s2s:metrics``) in the Prometheus text format.

Only the ingress needs this (``GET /metrics``); recording lives in :mod:`.metrics`. Besides the
recorded counters and histograms, the scrape shows gauges read at scrape time:
``s2s_live_sessions``, ``s2s_node_live_sessions{node}`` and ``s2s_node_free_session_slots{node}``
(:class:`NodeGauges`), and ``s2s_redis_up`` (0 when Redis did not answer: the page then shows
what it could read without Redis, so the "Redis unavailable" alert can fire).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .metrics import COUNTERS, HISTOGRAMS, Labels, decode_labels

__all__ = ["NodeGauges", "render"]


@dataclass(frozen=True, slots=True)
class NodeGauges:
    """Per Ray node (its id): live sessions (from the sessions' advertised media channels) and
    free session slots (alive nodes). Either may be empty when its source did not answer."""

    live_sessions: Mapping[str, int] = dataclass_field(default_factory=dict)
    free_slots: Mapping[str, float] = dataclass_field(default_factory=dict)


class _Snapshot(Collector):
    def __init__(
        self,
        fields: Mapping[str, float],
        live_sessions: int | None,
        nodes: NodeGauges,
        redis_up: bool,
    ) -> None:
        self._fields = fields
        self._live = live_sessions
        self._nodes = nodes
        self._redis_up = redis_up

    def _gauges(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("s2s_redis_up", "1 when Redis answered this scrape, else 0.")
        up.add_metric([], 1.0 if self._redis_up else 0.0)
        yield up
        if self._live is not None:
            gauge = GaugeMetricFamily("s2s_live_sessions", "Sessions with a live actor.")
            gauge.add_metric([], self._live)
            yield gauge
        per_node = GaugeMetricFamily(
            "s2s_node_live_sessions", "Live sessions per Ray node.", labels=["node"]
        )
        for node, count in sorted(self._nodes.live_sessions.items()):
            per_node.add_metric([node], count)
        yield per_node
        free = GaugeMetricFamily(
            "s2s_node_free_session_slots",
            "Session slots free per alive Ray node (the session_slots resource available).",
            labels=["node"],
        )
        for node, slots in sorted(self._nodes.free_slots.items()):
            free.add_metric([node], slots)
        yield free

    def collect(self) -> Iterator[Metric]:
        yield from self._gauges()
        counters: dict[str, CounterMetricFamily] = {}
        hist: dict[tuple[str, Labels], dict[str, object]] = {}
        for field, value in self._fields.items():
            kind, name, *rest = field.split("|")
            labels = decode_labels(rest[0]) if rest else ()
            if kind == "c" and name in COUNTERS:
                family = counters.get(name)
                if family is None:
                    family = counters[name] = CounterMetricFamily(
                        name, COUNTERS[name], labels=[k for k, _ in labels]
                    )
                family.add_metric([v for _, v in labels], value)
            elif name in HISTOGRAMS:
                entry = hist.setdefault((name, labels), {"buckets": {}, "sum": 0.0})
                if kind == "b":
                    entry["buckets"][int(rest[1])] = value  # type: ignore[index]
                elif kind == "s":
                    entry["sum"] = value
        yield from counters.values()
        families: dict[str, HistogramMetricFamily] = {}
        for (name, labels), entry in sorted(hist.items()):
            help_text, bounds = HISTOGRAMS[name]
            histogram = families.get(name)
            if histogram is None:
                histogram = families[name] = HistogramMetricFamily(
                    name, help_text, labels=[k for k, _ in labels]
                )
            counts: dict[int, float] = entry["buckets"]  # type: ignore[assignment]
            cumulative = 0.0
            series = []
            for index, bound in enumerate(bounds):
                cumulative += counts.get(index, 0.0)
                series.append((str(bound), cumulative))
            cumulative += counts.get(len(bounds), 0.0)
            series.append(("+Inf", cumulative))
            histogram.add_metric(
                [v for _, v in labels],
                series,
                sum_value=float(entry["sum"]),  # type: ignore[arg-type]
            )
        yield from families.values()


def render(
    fields: Mapping[bytes | str, bytes | str | float],
    live_sessions: int | None,
    *,
    nodes: NodeGauges | None = None,
    redis_up: bool = True,
) -> bytes:
    """The Prometheus text exposition of the cluster totals read from ``s2s:metrics``, with
    the scrape-time gauges (``live_sessions`` None: unknown, Redis did not answer)."""
    decoded = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in fields.items()}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(decoded, live_sessions, nodes or NodeGauges(), redis_up))
    return bytes(generate_latest(registry))
