"""The s2s Grafana dashboard (``dashboard.json`` beside this file), written from Python.

    .venv/bin/python k8s/components/monitoring/dashboard.py          # rewrite dashboard.json
    .venv/bin/python k8s/components/monitoring/dashboard.py --check  # exit 1 if it is stale

The JSON is what Grafana loads (through the sidecar that picks up ConfigMaps labelled
``grafana_dashboard: "1"``; kustomization.yaml makes that ConfigMap). It is generated so that
every panel follows the same rules, which tests/k8s/test_monitoring.py checks on the committed
file, and that test also fails while the file differs from what this script writes:

* the data source is the template variable ``$datasource`` (no data source uid is baked in);
* every query selects ``namespace="$namespace"`` (several installs may share one Prometheus);
* every query reads only metrics the service exports on ``/metrics``
  (:mod:`s2s.service.metrics`, rendered by :mod:`s2s.service.metrics_render`);
* every query takes the **max** over scrape targets (:data:`DEDUPE`), never the sum: each
  ingress replica serves the same cluster-wide totals read from Redis, and the ServiceMonitor
  scrapes every pod behind the ``s2s-serve`` Service, so each series arrives once per pod.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEDUPE", "dashboard", "main", "render"]

OUTPUT = Path(__file__).with_name("dashboard.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace="$namespace"'
PROV = f'{NS}, provider=~"$provider"'
RATE = "$__rate_interval"
#: The labels that differ between scrape targets carrying the same cluster-wide series.
DEDUPE = "max without (instance, pod)"
WIDTH = 24


def once(expr: str) -> str:
    """One copy of each series, however many pods served it."""
    return f"{DEDUPE} ({expr})"


def per_minute(metric: str, selector: str, by: str) -> str:
    return f"sum by ({by}) ({once(f'rate({metric}{{{selector}}}[{RATE}])')}) * 60"


def quantile(q: float, metric: str, selector: str, by: str) -> str:
    buckets = once(f"rate({metric}_bucket{{{selector}}}[{RATE}])")
    return f"histogram_quantile({q}, sum by (le, {by}) ({buckets}))"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    width: int = 12
    height: int = 8
    mappings: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def _latency(title: str, description: str, metric: str, selector: str, by: str) -> Panel:
    return Panel(
        title,
        description,
        tuple(
            Query(quantile(q, metric, selector, by), f"p{round(q * 100)} {{{{{by}}}}}")
            for q in (0.5, 0.95, 0.99)
        ),
        unit="s",
    )


UP_DOWN = (
    {"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0}}},
    {"type": "value", "options": {"1": {"text": "up", "color": "green", "index": 1}}},
)

ROWS = (
    Row(
        "Calls and capacity",
        (
            Panel(
                "Live calls",
                "Calls with a live session actor, cluster-wide.",
                (Query(f"max(s2s_live_sessions{{{NS}}})", "live calls"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Free session slots",
                "Session slots no call holds, over every worker pod. At 0 new calls get a 503 "
                "until the autoscaler adds a pod.",
                (
                    Query(
                        f"sum(max by (node) (s2s_node_free_session_slots{{{NS}}}))",
                        "free slots",
                    ),
                ),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Redis",
                "Whether the ingress replicas reach the app Redis (the lowest of the pods).",
                (Query(f"min(s2s_redis_up{{{NS}}})", "redis"),),
                kind="stat",
                width=6,
                height=5,
                mappings=UP_DOWN,
            ),
            Panel(
                "Scraped pods",
                "Pods behind the s2s-serve Service whose /metrics answered the last scrape.",
                (Query(f'sum(up{{job="s2s-serve", {NS}}})', "pods"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Live calls by node",
                "Session actors per Ray node, and the cluster's total.",
                (
                    Query(f"max(s2s_live_sessions{{{NS}}})", "total"),
                    Query(f"max by (node) (s2s_node_live_sessions{{{NS}}})", "{{node}}"),
                ),
            ),
            Panel(
                "Free session slots by node",
                "A node at 0 takes no new call; the Ray autoscaler adds pods when calls wait.",
                (
                    Query(
                        f"max by (node) (s2s_node_free_session_slots{{{NS}}})",
                        "{{node}}",
                    ),
                ),
            ),
            Panel(
                "Calls started per minute",
                "By provider.",
                (
                    Query(
                        per_minute("s2s_sessions_started_total", PROV, "provider"), "{{provider}}"
                    ),
                ),
                unit="cpm",
            ),
            Panel(
                "Calls closed per minute",
                "By provider and reason (caller hung up, idle timeout, maximum length, error...).",
                (
                    Query(
                        per_minute("s2s_sessions_closed_total", PROV, "provider, reason"),
                        "{{provider}} {{reason}}",
                    ),
                ),
                unit="cpm",
            ),
        ),
    ),
    Row(
        "Latency",
        (
            _latency(
                "Response latency",
                "Caller stopped speaking -> first model audio sent to the caller, per turn.",
                "s2s_response_latency_seconds",
                PROV,
                "provider",
            ),
            _latency(
                "Time to first audio",
                "Call start -> first model audio sent to the caller.",
                "s2s_first_audio_seconds",
                PROV,
                "provider",
            ),
            _latency(
                "Added latency",
                "What the service adds to an audio chunk: in = ingress to provider socket, "
                "out = provider event to client socket.",
                "s2s_added_latency_seconds",
                NS,
                "direction",
            ),
            Panel(
                "Audio streamed",
                "Seconds of audio per second (about the number of calls streaming), by "
                "provider, caller to model and model to caller.",
                (
                    Query(
                        f"sum by (provider) "
                        f"({once(f'rate(s2s_audio_in_seconds_total{{{PROV}}}[{RATE}])')})",
                        "in {{provider}}",
                    ),
                    Query(
                        f"sum by (provider) "
                        f"({once(f'rate(s2s_audio_out_seconds_total{{{PROV}}}[{RATE}])')})",
                        "out {{provider}}",
                    ),
                ),
            ),
        ),
    ),
    Row(
        "Conversation and tools",
        (
            Panel(
                "Barge-ins per minute",
                "The caller spoke over the model, by provider.",
                (Query(per_minute("s2s_barge_ins_total", PROV, "provider"), "{{provider}}"),),
                unit="cpm",
            ),
            _latency(
                "Tool latency",
                "Tool call requested -> result, by tool (the pool's timeout bounds it).",
                "s2s_tool_latency_seconds",
                NS,
                "tool",
            ),
            Panel(
                "Tool calls per minute by outcome",
                "ok, error, timeout, refused, bad_arguments, unknown, expired, dead_letter.",
                (
                    Query(
                        per_minute("s2s_tool_calls_total", NS, "tool, outcome"),
                        "{{tool}} {{outcome}}",
                    ),
                ),
                unit="cpm",
            ),
        ),
    ),
    Row(
        "Providers",
        (
            Panel(
                "Provider errors per minute",
                "By provider and error code.",
                (
                    Query(
                        per_minute("s2s_provider_errors_total", PROV, "provider, code"),
                        "{{provider}} {{code}}",
                    ),
                ),
                unit="cpm",
            ),
            Panel(
                "Resumptions and failovers per minute",
                "Calls moved to a new connection of the same provider (resumption, by reason) "
                "or to another provider (failover), and new calls started past a provider down "
                "for their account (skipped).",
                (
                    Query(
                        per_minute("s2s_session_resumptions_total", PROV, "provider, reason"),
                        "resumed {{provider}} {{reason}}",
                    ),
                    Query(
                        per_minute(
                            "s2s_provider_failovers_total",
                            NS,
                            "from_provider, to_provider, reason",
                        ),
                        "failover {{from_provider}} -> {{to_provider}} {{reason}}",
                    ),
                    Query(
                        per_minute("s2s_provider_skips_total", PROV, "provider, code"),
                        "skipped {{provider}} {{code}}",
                    ),
                ),
                unit="cpm",
            ),
        ),
    ),
)


def _panel(panel: Panel, ident: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.mappings:
        defaults["mappings"] = list(panel.mappings)
    options: dict[str, Any] = (
        {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        if panel.kind == "stat"
        else {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    )
    return {
        "id": ident,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def _variable(name: str, label: str, query: str, *, include_all: bool) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": name},
        "refresh": 2,  # on time range change
        "sort": 1,
        "includeAll": include_all,
        "multi": include_all,
        **(
            {"allValue": ".*", "current": {"text": "All", "value": "$__all"}} if include_all else {}
        ),
    }


def dashboard() -> dict[str, Any]:
    """The dashboard model: rows of panels laid out left to right, 24 columns wide."""
    panels: list[dict[str, Any]] = []
    ident, y = 1, 0
    for row in ROWS:
        panels.append(
            {
                "id": ident,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        ident, y, x, tallest = ident + 1, y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > WIDTH:
                x, y, tallest = 0, y + tallest, 0
            panels.append(_panel(panel, ident, x, y))
            ident, x, tallest = ident + 1, x + panel.width, max(tallest, panel.height)
        y += tallest
    return {
        "uid": "s2s-calls",
        "title": "s2s: calls, latency, tools, providers",
        "description": "Speech-to-speech calls (k8s/components/monitoring; docs/deploy.md).",
        "tags": ["s2s"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "graphTooltip": 1,  # shared crosshair
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "refresh": 1,
                    "includeAll": False,
                    "multi": False,
                },
                _variable(
                    "namespace",
                    "Namespace",
                    "label_values(s2s_live_sessions, namespace)",
                    include_all=False,
                ),
                _variable(
                    "provider",
                    "Provider",
                    f"label_values(s2s_sessions_started_total{{{NS}}}, provider)",
                    include_all=True,
                ),
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"stale: {OUTPUT} (run {Path(__file__).name} without --check)", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
