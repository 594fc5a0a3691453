"""Checking the PromQL in k8s/components/monitoring against what the service exports.

Expressions are parsed with ``promql-parser`` (PyPI; GreptimeTeam's Rust PromQL parser, which
also checks function arity and argument types, e.g. ``rate`` of an instant vector), then
walked:

* every metric read must be one that ``GET /metrics`` renders (:data:`EXPORTED`: the counters
  and histograms of :mod:`s2s.service.metrics` with the suffixes prometheus_client gives them,
  the gauges, and Prometheus's own ``up``);
* every label a selector matches on, or an aggregation or vector match names, must be one of
  those metrics' labels or a label the scrape adds (:data:`TARGET_LABELS`);
* every read of an ``s2s_*`` series must first collapse the scrape targets with ``max`` or
  ``min`` (each pod behind the Service serves the same cluster-wide series: a ``sum`` would
  count them once per pod).

The labels of each metric are the contract the service and these files share (docs/
observability.md); they are listed in :data:`LABELS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import promql_parser as pp

from s2s.service import metrics

__all__ = ["EXPORTED", "LABELS", "TARGET_LABELS", "grafana_variables", "problems"]

#: Each metric's labels, by base name (without ``_total`` / ``_bucket`` ...).
LABELS: dict[str, frozenset[str]] = {
    name: frozenset(labels)
    for name, labels in {
        # gauges
        "s2s_live_sessions": (),
        "s2s_node_live_sessions": ("node",),
        "s2s_node_free_session_slots": ("node",),
        "s2s_redis_up": (),
        # counters
        "s2s_sessions_started": ("provider",),
        "s2s_sessions_closed": ("provider", "reason"),
        "s2s_audio_in_seconds": ("provider",),
        "s2s_audio_out_seconds": ("provider",),
        "s2s_provider_errors": ("provider", "code"),
        "s2s_session_resumptions": ("provider", "reason"),
        "s2s_provider_failovers": ("from_provider", "to_provider", "reason"),
        "s2s_provider_skips": ("provider", "code"),
        "s2s_tool_calls": ("pool", "tool", "outcome"),
        "s2s_barge_ins": ("provider",),
        # histograms
        "s2s_response_latency_seconds": ("provider",),
        "s2s_first_audio_seconds": ("provider",),
        "s2s_tool_latency_seconds": ("pool", "tool"),
        "s2s_added_latency_seconds": ("direction",),
    }.items()
}
GAUGES = frozenset(
    {"s2s_live_sessions", "s2s_node_live_sessions", "s2s_node_free_session_slots", "s2s_redis_up"}
    | set(getattr(metrics, "GAUGES", {}))
)
#: Labels Prometheus adds to every series of a ServiceMonitor's targets.
TARGET_LABELS = frozenset(
    {"namespace", "job", "instance", "pod", "service", "endpoint", "container"}
)


def _exported() -> dict[str, frozenset[str]]:
    """Series name -> labels, as ``/metrics`` renders them."""
    out: dict[str, frozenset[str]] = {"up": frozenset()}
    for name in GAUGES:
        out[name] = LABELS.get(name, frozenset())
    for name in metrics.COUNTERS:
        out[f"{name}_total"] = LABELS.get(name, frozenset())
    for name in metrics.HISTOGRAMS:
        labels = LABELS.get(name, frozenset())
        out[f"{name}_bucket"] = labels | {"le"}
        out[f"{name}_sum"] = out[f"{name}_count"] = labels
    return out


EXPORTED = _exported()

#: Grafana's interval variables, replaced by a duration so that the query parses.
_GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__\w+\}")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def parse(expr: str) -> Any:
    """The AST of ``expr``; Grafana's ``$__rate_interval`` and friends stand for ``5m``."""
    return pp.parse(_GRAFANA_INTERVALS.sub("5m", expr))


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, pp.AggregateExpr):
        yield node.expr
        if isinstance(node.param, pp.Expr):
            yield node.param
    elif isinstance(node, pp.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield node.expr
    elif isinstance(node, pp.Call):
        yield from (arg for arg in node.args if isinstance(arg, pp.Expr))
    elif isinstance(node, pp.MatrixSelector):
        yield node.vector_selector


def _selectors(
    node: Any, aggregates: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every vector selector under ``node``, with the aggregations enclosing it (innermost last)."""
    if isinstance(node, pp.VectorSelector):
        yield node, aggregates
        return
    inner = (*aggregates, node) if isinstance(node, pp.AggregateExpr) else aggregates
    for child in _children(node):
        yield from _selectors(child, inner)


def _labels_of(node: Any) -> frozenset[str]:
    labels: set[str] = set(TARGET_LABELS)
    for selector, _ in _selectors(node):
        labels |= EXPORTED.get(selector.name or "", frozenset())
    return frozenset(labels)


def _named_labels(node: Any) -> Iterator[tuple[Any, list[str]]]:
    """(the subtree the labels must come from, the labels) for every by/without/on/ignoring."""
    if isinstance(node, pp.AggregateExpr) and node.modifier is not None:
        yield node.expr, list(node.modifier.labels)
    if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
        named = list(node.modifier.group_labels or [])
        if node.modifier.matching is not None:
            named += node.modifier.matching.labels
        yield node, named
    for child in _children(node):
        yield from _named_labels(child)


def _collapses_targets(aggregates: tuple[Any, ...]) -> bool:
    if not aggregates:
        return False
    innermost = aggregates[-1]
    if str(innermost.op) not in {"max", "min"}:
        return False
    modifier = innermost.modifier
    if modifier is None or modifier.type == pp.AggModifierType.By:
        return True  # max(x) / max by (node) (x): nothing per pod survives
    return {"instance", "pod"} <= set(modifier.labels)


def problems(expr: str) -> list[str]:
    """What is wrong with ``expr`` against the exported metrics (empty when nothing is)."""
    try:
        tree = parse(expr)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    found = []
    for selector, aggregates in _selectors(tree):
        name = selector.name or ""
        if name not in EXPORTED:
            found.append(f"{name or selector}: not a metric the service exports")
            continue
        allowed = EXPORTED[name] | TARGET_LABELS
        for matcher in selector.matchers.matchers:
            if matcher.name not in allowed and matcher.name != "__name__":
                found.append(f"{name}: has no label {matcher.name!r}")
        if name.startswith("s2s_") and not _collapses_targets(aggregates):
            found.append(f"{name}: read without first taking max/min over the scrape targets")
    for subtree, named in _named_labels(tree):
        available = _labels_of(subtree)
        found += [
            f"label {label!r} is on none of its metrics"
            for label in named
            if label not in available
        ]
    return found


def grafana_variables(query: str) -> tuple[str, str]:
    """(metric, label) of a ``label_values(metric{...}, label)`` variable query."""
    match = _LABEL_VALUES.match(query)
    assert match and match["selector"], f"not a label_values(metric, label) query: {query}"
    selector = parse(match["selector"])
    assert isinstance(selector, pp.VectorSelector), query
    return selector.name or "", match["label"]
