"""Rendering the cluster-wide metrics (``s2s:metrics``) in the Prometheus text format.

Only the ingress needs this (``GET /metrics``); recording lives in :mod:`.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .metrics import COUNTERS, HISTOGRAMS, Labels, decode_labels

__all__ = ["render"]


class _Snapshot(Collector):
    def __init__(self, fields: Mapping[str, float], live_sessions: int) -> None:
        self._fields = fields
        self._live = live_sessions

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("s2s_live_sessions", "Sessions with a live actor.")
        gauge.add_metric([], self._live)
        yield gauge
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


def render(fields: Mapping[bytes | str, bytes | str | float], live_sessions: int) -> bytes:
    """The Prometheus text exposition of the cluster totals read from ``s2s:metrics``."""
    decoded = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in fields.items()}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(decoded, live_sessions))
    return bytes(generate_latest(registry))
