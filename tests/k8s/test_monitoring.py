"""k8s/components/monitoring, offline: the scrapes, the alerts and the Grafana dashboard.

Rendered with real kustomize (as the prod overlay enables it, and alone); the Prometheus
operator's kinds against strict schemas written from its CRDs (:mod:`.prometheus_operator`);
every PromQL expression parsed and checked against the metrics the service exports
(:mod:`.promql`); the dashboard against the script that writes it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from . import promql
from .prometheus_operator import errors
from .render import K8S, ROOT, build, one

COMPONENT = K8S / "components" / "monitoring"
KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
#: kubectl's client-side apply keeps the whole object in an annotation (at most 256 KiB).
MAX_APPLIED_BYTES = 256 * 1024


def _overlays_with_monitoring() -> list[str]:
    found = []
    for overlay in sorted((K8S / "overlays").iterdir()):
        text = (overlay / "kustomization.yaml").read_text()
        if "components/monitoring" in text:
            found.append(overlay.name)
    return found


OVERLAYS = _overlays_with_monitoring()


@pytest.fixture(params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(K8S / "overlays" / str(request.param))


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("s2s_dashboard", COMPONENT / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((COMPONENT / "dashboard.json").read_text())
    return loaded


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


# -- rendering -----------------------------------------------------------------------------------


def test_prod_enables_the_component():
    assert "prod" in OVERLAYS


def test_the_component_renders_alone_with_kustomize():
    kinds = sorted(d["kind"] for d in build(COMPONENT))
    assert kinds == ["ConfigMap", "PodMonitor", "PrometheusRule", "ServiceMonitor"]


def test_the_operators_kinds_match_strict_schemas(docs: list[dict[str, Any]]):
    checked = [d for d in docs if d["kind"] in KINDS]
    assert sorted(d["kind"] for d in checked) == sorted(KINDS)
    for doc in checked:
        assert errors(doc) == [], doc["kind"]


def test_the_strict_schemas_reject_what_the_api_server_would_prune(docs: list[dict[str, Any]]):
    monitor = one(docs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    endpoint["intervall"] = endpoint.pop("interval")
    endpoint["scrapeTimeout"] = "10 seconds"
    endpoint["authorization"]["credentials"].pop("key")
    rule = one(docs, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["fore"] = "5m"
    found = "\n".join(errors(monitor) + errors(rule))
    assert "'intervall' was unexpected" in found
    assert "'10 seconds' does not match" in found
    assert "'key' is a required property" in found
    assert "'fore' was unexpected" in found


# -- scraping ------------------------------------------------------------------------------------


def test_the_service_monitor_scrapes_the_serve_service_with_an_admin_key(
    docs: list[dict[str, Any]],
):
    rayservice = one(docs, "RayService")
    service = rayservice["spec"]["serveService"]
    monitor = one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    auth = endpoint["authorization"]
    assert auth["type"] == "Bearer"
    assert auth["credentials"] == {"name": "s2s-metrics-token", "key": "token"}
    assert "namespaceSelector" not in monitor["spec"]  # its own namespace: the Secret's too
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "`s2s-metrics-token`" in deploy  # in the table of Secrets to create


def test_the_pod_monitor_scrapes_rays_metrics_port_on_every_ray_pod(docs: list[dict[str, Any]]):
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    templates = [
        cluster["headGroupSpec"]["template"],
        *(group["template"] for group in cluster["workerGroupSpecs"]),
    ]
    monitor = one(docs, "PodMonitor")
    selector = monitor["spec"]["selector"]
    (expression,) = selector["matchExpressions"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    for template in templates:
        labels = template["metadata"]["labels"]
        assert selector["matchLabels"].items() <= labels.items()
        assert labels[expression["key"]] in expression["values"]
        ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        assert ports[endpoint["port"]] == 8080  # what NetworkPolicy s2s-ray-metrics admits
    policy = one(docs, "NetworkPolicy", "s2s-ray-metrics")
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]


# -- alerts --------------------------------------------------------------------------------------


def test_every_alert_parses_and_reads_only_exported_metrics(docs: list[dict[str, Any]]):
    found = {r["alert"]: promql.problems(r["expr"]) for r in rules(docs)}
    assert {name: p for name, p in found.items() if p} == {}


def test_the_alerts_the_service_needs_are_there_with_their_windows(docs: list[dict[str, Any]]):
    alerts = {r["alert"]: r for r in rules(docs)}
    assert len(alerts) == len(rules(docs)), "alert names repeat"
    windows = {
        "S2SProviderErrorRateHigh": "5m",
        "S2SResponseLatencyP99High": "10m",
        "S2SSessionSlotsLow": "5m",
        "S2SSessionSlotsExhausted": "2m",
        "S2SRedisUnavailable": "1m",
        "S2SMetricsAbsent": "5m",
    }
    assert {name: alerts[name]["for"] for name in windows} == windows
    latency = alerts["S2SResponseLatencyP99High"]["expr"]
    assert "histogram_quantile(0.99" in latency and "s2s_response_latency_seconds_bucket" in latency
    assert "> 1.5" in latency
    assert "s2s_redis_up) == 0" in alerts["S2SRedisUnavailable"]["expr"]
    assert "absent(" in alerts["S2SMetricsAbsent"]["expr"]


def test_every_alert_says_what_it_means_and_what_to_do(docs: list[dict[str, Any]]):
    for rule in rules(docs):
        assert "record" not in rule
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        notes = rule["annotations"]
        assert {"summary", "description", "runbook"} <= notes.keys(), rule["alert"]
        assert "docs/" in notes["runbook"], rule["alert"]
        for doc in {part.split(",")[0] for part in notes["runbook"].split("docs/")[1:]}:
            name = doc.split()[0].rstrip(".,;:)")
            assert (ROOT / "docs" / name).exists(), f"{rule['alert']}: docs/{name}"


def test_the_checker_catches_bad_queries():
    assert promql.problems("rate(s2s_sessions_started_total)")[0].startswith("does not parse")
    assert promql.problems("max(s2s_sessions_started)") == [
        "s2s_sessions_started: not a metric the service exports"
    ]
    assert promql.problems("max(s2s_sessions_started_total{provder='x'})") == [
        "s2s_sessions_started_total: has no label 'provder'"
    ]
    assert promql.problems("sum by (provider) (rate(s2s_sessions_started_total[5m]))") == [
        "s2s_sessions_started_total: read without first taking max/min over the scrape targets"
    ]
    assert promql.problems("max by (node, provder) (s2s_node_live_sessions)") == [
        "label 'provder' is on none of its metrics"
    ]
    assert promql.problems("sum(up{job='s2s-serve'})") == []


# -- the Grafana dashboard ----------------------------------------------------------------------


def test_the_committed_dashboard_is_what_the_script_writes():
    assert (COMPONENT / "dashboard.json").read_text() == _generator().render(), (
        "run .venv/bin/python k8s/components/monitoring/dashboard.py"
    )


def test_the_dashboard_ships_as_a_configmap_for_grafanas_sidecar(docs: list[dict[str, Any]]):
    configmap = one(docs, "ConfigMap", "s2s-grafana-dashboard")  # no hash suffix
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = configmap["data"].values()
    assert text == (COMPONENT / "dashboard.json").read_text()
    assert len(json.dumps(configmap).encode()) < MAX_APPLIED_BYTES


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard: dict[str, Any]):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_the_data_source_is_a_template_variable(dashboard: dict[str, Any]):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    templated = {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == templated, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == templated, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == templated, variable["name"]


def test_every_panel_query_parses_and_reads_only_exported_metrics(dashboard: dict[str, Any]):
    found = {f"{title}: {expr}": promql.problems(expr) for title, expr in panel_queries(dashboard)}
    assert {query: p for query, p in found.items() if p} == {}
    for title, expr in panel_queries(dashboard):
        assert 'namespace="$namespace"' in expr, title


def test_the_dashboard_has_the_panels_a_contact_centre_watches(dashboard: dict[str, Any]):
    read = " ".join(expr for _, expr in panel_queries(dashboard))
    for metric in (
        "s2s_live_sessions",
        "s2s_node_free_session_slots",
        "s2s_response_latency_seconds_bucket",
        "s2s_first_audio_seconds_bucket",
        "s2s_barge_ins_total",
        "s2s_tool_latency_seconds_bucket",
        "s2s_tool_calls_total",
        "s2s_provider_errors_total",
        "s2s_session_resumptions_total",
        "s2s_provider_failovers_total",
        "s2s_added_latency_seconds_bucket",
        "s2s_redis_up",
    ):
        assert metric in read, metric
    quantiles = [expr for _, expr in panel_queries(dashboard) if "s2s_response_latency" in expr]
    assert {q.split(",")[0] for q in quantiles} == {
        f"histogram_quantile({q}" for q in ("0.5", "0.95", "0.99")
    }


def test_the_variable_queries_read_exported_metrics(dashboard: dict[str, Any]):
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = promql.grafana_variables(variable["query"]["query"])
        assert metric in promql.EXPORTED, variable["name"]
        assert label in promql.EXPORTED[metric] | promql.TARGET_LABELS, variable["name"]


def test_docs_name_the_component_and_the_decision():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "k8s/components/monitoring" in deploy
    observability = Path(ROOT / "docs" / "observability.md").read_text()
    assert "## Metrics pipeline: where cluster-wide metrics aggregate" in observability
