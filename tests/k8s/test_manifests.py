"""Every overlay of k8s/, rendered with real kustomize, validated offline.

The RayService against KubeRay's CRD made strict, its serveConfigV2 against Ray's Serve
schema and the code, core kinds with kubernetes-validate, the KEDA objects against what the
tool workers really use, and the deployment's own rules (drain, secrets, sizing, probes).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deployments.app import build_app
from deployments.serve_config import CONTAINER_CONFIG_PATH, check_serve_config
from deployments.sizing import parse_cpu, parse_memory, session_slots
from s2s.service import keys, redis_acl
from s2s.service.config import ServiceConfig
from s2s.tools.worker import GROUP

from .crd import rayservice_errors
from .render import K8S, OVERLAYS, ROOT, build, one

KUBERNETES_VERSION = "1.33.0"
# Custom kinds are validated against their own schemas (the Prometheus operator's kinds in
# test_monitoring.py).
CUSTOM_KINDS = {
    "RayService",
    "ScaledObject",
    "TriggerAuthentication",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
}
ROLE_SECRETS = {role.secret for role in redis_acl.ROLES if role.secret}
SECRETS = {
    "s2s-redis-gcs",
    "s2s-api-keys",
    "s2s-provider-keys",
    "s2s-tenant-keys",
    "s2s-tool-secrets",
    *ROLE_SECRETS,
}
CONSTRAINED_RAY = re.search(
    r"^ray==(\S+)$", (K8S.parent / "constraints.txt").read_text(), re.MULTILINE
)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs(overlay: str) -> list[dict[str, Any]]:
    return build(K8S / "overlays" / overlay)


@pytest.fixture
def rayservice(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "RayService", "s2s")


def cluster(rayservice: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = rayservice["spec"]["rayClusterConfig"]
    return result


def ray_pod_specs(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    spec = cluster(rayservice)
    return [
        spec["headGroupSpec"]["template"]["spec"],
        *(group["template"]["spec"] for group in spec["workerGroupSpecs"]),
    ]


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [
        d["spec"]["template"]["spec"] for d in docs if d["kind"] in {"Deployment", "StatefulSet"}
    ]
    for doc in docs:
        if doc["kind"] == "RayService":
            specs += ray_pod_specs(doc)
    return specs


def mounted_config(docs: list[dict[str, Any]], rayservice: dict[str, Any]) -> ServiceConfig:
    """The config.yaml the Ray pods mount (the generated ConfigMap)."""
    head = ray_pod_specs(rayservice)[0]
    (volume,) = [v for v in head["volumes"] if v["name"] == "s2s-config"]
    configmap = one(docs, "ConfigMap", volume["configMap"]["name"])
    return ServiceConfig.model_validate(yaml.safe_load(configmap["data"]["config.yaml"]))


# -- the RayService ------------------------------------------------------------------------------


def test_the_rayservice_matches_the_strict_kuberay_crd(rayservice: dict[str, Any]) -> None:
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice_errors(rayservice) == []


def test_the_strict_crd_rejects_what_kubernetes_would_silently_prune(
    rayservice: dict[str, Any],
) -> None:
    group = cluster(rayservice)["workerGroupSpecs"][0]
    group["groupNme"] = group.pop("groupName")
    group["maxReplicas"] = "ten"
    cluster(rayservice)["gcsFaultToleranceOptions"]["redisPasword"] = "x"
    errors = "\n".join(rayservice_errors(rayservice))
    assert "'groupName' is a required property" in errors
    assert "'groupNme' was unexpected" in errors
    assert "'ten' is not of type 'integer'" in errors
    assert "'redisPasword' was unexpected" in errors


def test_serve_config_v2_passes_rays_serve_schema(rayservice: dict[str, Any]) -> None:
    schema = check_serve_config(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))
    assert schema.http_options.host == "0.0.0.0"
    assert schema.http_options.request_timeout_s is None  # would cut WebSockets
    assert [app.name for app in schema.applications] == ["s2s"]


def test_serve_config_import_paths_and_deployments_exist_in_the_code(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    serve = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    config = mounted_config(docs, rayservice)
    for app in serve["applications"]:
        module, _, attribute = app["import_path"].partition(":")
        builder = getattr(importlib.import_module(module), attribute)
        assert builder is build_app
        assert app["args"]["config"] == CONTAINER_CONFIG_PATH
        application: Any = builder(config=config)
        names = {application._bound_deployment.name}
        assert {d["name"] for d in app["deployments"]} <= names
    for spec in ray_pod_specs(rayservice):
        mounts = spec["containers"][0]["volumeMounts"]
        (mount,) = [m for m in mounts if m["name"] == "s2s-config"]
        assert f"{mount['mountPath']}/config.yaml" == CONTAINER_CONFIG_PATH


def test_serve_config_v2_carries_the_mounted_configs_serve_section(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    (deployment,) = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0][
        "deployments"
    ]
    serve = mounted_config(docs, rayservice).serve
    assert deployment["max_ongoing_requests"] == serve.max_ongoing_requests
    assert deployment["graceful_shutdown_timeout_s"] == serve.graceful_shutdown_timeout_s
    if serve.autoscaling is not None:
        assert deployment["autoscaling_config"] == serve.autoscaling.model_dump()
    else:
        assert deployment["num_replicas"] == serve.num_replicas


def test_the_session_workers_offer_the_configured_slot_resource(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    spec = cluster(rayservice)
    config = mounted_config(docs, rayservice)
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert "resources" not in spec["headGroupSpec"]  # no call on the head
    (group,) = spec["workerGroupSpecs"]
    assert list(group["resources"]) == [config.sessions.resource]
    assert int(group["resources"][config.sessions.resource]) > 0
    assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_session_slots_fit_the_worker_pods_by_the_sizing_formula(
    rayservice: dict[str, Any],
) -> None:
    for group in cluster(rayservice)["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        fit = session_slots(parse_memory(limits["memory"]), parse_cpu(limits["cpu"]))
        slots = int(next(iter(group["resources"].values())))
        assert 0 < slots <= fit, f"{group['groupName']}: {slots} slots, pod fits {fit}"


def test_ray_pods_reach_the_media_channels_and_the_app_redis(rayservice: dict[str, Any]) -> None:
    for spec in ray_pod_specs(rayservice):
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["S2S_SESSIONS__MEDIA_HOST"]["value"] == "auto"
        assert env["S2S_SERVE__HOST"]["value"] == "0.0.0.0"
        assert env["S2S_CONFIG"]["value"] == CONTAINER_CONFIG_PATH
        # KubeRay refuses REDIS_PASSWORD on the head when GCS fault tolerance is on.
        assert "REDIS_PASSWORD" not in env


def redis_role(docs: list[dict[str, Any]], container: dict[str, Any]) -> redis_acl.Role:
    """The ACL role a container uses on the app Redis, checked against its Secret and URL."""
    env = {e["name"]: e for e in container["env"]}
    service = one(docs, "Service", "s2s-redis")
    port = service["spec"]["ports"][0]["port"]
    # No credentials in the URL (it travels in actor arguments and logs): the user and its
    # password come from their own variables, the password from the role's Secret.
    assert env["S2S_REDIS__URL"]["value"] == f"redis://s2s-redis:{port}/0"
    role = redis_acl.role(env["S2S_REDIS_USERNAME"]["value"])
    ref = env["S2S_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": role.secret, "key": "password"}
    return role


def test_each_process_reaches_the_app_redis_as_its_own_acl_user(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    for spec in ray_pod_specs(rayservice):
        assert redis_role(docs, spec["containers"][0]).name == "service"
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert redis_role(docs, container).name == "tools"


def test_gcs_fault_tolerance_uses_its_own_persistent_redis(docs: list[dict[str, Any]]) -> None:
    ft = cluster(one(docs, "RayService"))["gcsFaultToleranceOptions"]
    host, _, port = ft["redisAddress"].partition(":")
    service = one(docs, "Service", host)
    assert host != "s2s-redis"  # not the app's Redis
    assert int(port) == service["spec"]["ports"][0]["port"]
    assert ft["redisPassword"]["valueFrom"]["secretKeyRef"]["name"] == "s2s-redis-gcs"
    for name in ("s2s-redis", "s2s-redis-gcs"):
        statefulset = one(docs, "StatefulSet", name)
        assert statefulset["spec"]["volumeClaimTemplates"], name
    redis_conf = one(docs, "ConfigMap", "s2s-redis-config")["data"]["redis.conf"]
    assert "appendonly yes" in redis_conf
    assert "maxmemory-policy noeviction" in redis_conf  # tool calls are never evicted


def test_images_match_the_pinned_ray(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    assert CONSTRAINED_RAY is not None
    assert cluster(rayservice)["rayVersion"] == CONSTRAINED_RAY.group(1)
    images = {c["image"] for spec in pod_specs(docs) for c in spec["containers"]}
    app_images = {image for image in images if not image.startswith("redis:")}
    assert len(app_images) == 1, app_images  # one image: head, workers, tool workers
    assert not any(image == "s2s" or image.startswith("s2s:") for image in images)


# -- graceful drain ------------------------------------------------------------------------------


def _drain_args(container: dict[str, Any]) -> dict[str, str]:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:3] == ["python", "-m", "deployments.drain"]
    return dict(zip(command[3::2], command[4::2], strict=True))


def test_ray_pods_drain_their_calls_within_the_termination_grace(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    graceful = mounted_config(docs, rayservice).serve.graceful_shutdown_timeout_s
    head, *workers = ray_pod_specs(rayservice)
    for spec, scope in [(head, "cluster"), *((w, "node") for w in workers)]:
        args = _drain_args(spec["containers"][0])
        grace = spec["terminationGracePeriodSeconds"]
        assert args["--scope"] == scope
        # Ray needs a moment after the hook to stop before the kill at the grace period.
        assert graceful < float(args["--timeout"]) <= grace - 30
    assert rayservice["spec"]["rayClusterDeletionDelaySeconds"] >= 60
    assert rayservice["spec"]["upgradeStrategy"]["type"] == "NewCluster"


def test_disruption_budgets_cover_the_session_workers_and_tool_workers(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    worker_labels = cluster(rayservice)["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
    tool_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]

    def covering(labels: dict[str, str]) -> list[dict[str, Any]]:
        return [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]

    (workers,) = covering(worker_labels)
    assert workers["spec"]["maxUnavailable"] == 1
    (tools,) = covering(tool_labels)
    assert tools["spec"]["minAvailable"] == 1


# -- probes, Service, resources, secrets -----------------------------------------------------------


def test_every_ray_pod_runs_serves_haproxy_ingress(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    """serve.ingress: haproxy (the default): every Ray pod takes the generated environment that
    turns on Serve's HAProxy ingress, and serveConfigV2 puts an ingress on every pod's port."""
    assert mounted_config(docs, rayservice).serve.ingress == "haproxy"
    for spec in ray_pod_specs(rayservice):
        for container in spec["containers"]:
            names = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
            (name,) = names
            env = one(docs, "ConfigMap", name)["data"]
            assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1", container["name"]
            assert float(env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"]) <= 10
    serve_config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    assert serve_config["proxy_location"] == "EveryNode"
    assert serve_config["http_options"] == {"host": "0.0.0.0", "port": 8000}


def test_workers_are_ready_on_healthz_and_never_restarted_by_it(rayservice: dict[str, Any]) -> None:
    for group in cluster(rayservice)["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        probe = " ".join(container["readinessProbe"]["exec"]["command"])
        assert "http://localhost:8000/healthz" in probe
        assert "http://localhost:8000/-/healthz" in probe  # Serve's drain-aware check
        assert "livenessProbe" not in container  # KubeRay's raylet-only default


def test_the_ingress_service_has_websocket_friendly_idle_timeouts(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    service = rayservice["spec"]["serveService"]
    annotations = service["metadata"]["annotations"]
    assert (
        int(annotations["service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout"])
        >= 3600
    )
    assert int(annotations["service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout"]) >= 30
    assert service["spec"]["ports"] == [
        {"name": "serve", "port": 8000, "targetPort": 8000, "protocol": "TCP"}
    ]
    assert rayservice["spec"]["excludeHeadPodFromServeSvc"] is True
    for ingress in (d for d in docs if d["kind"] == "Ingress"):
        notes = ingress["metadata"]["annotations"]
        assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]


def test_every_container_has_requests_and_limits(docs: list[dict[str, Any]]) -> None:
    containers = [c for spec in pod_specs(docs) for c in spec["containers"]]
    autoscaler = cluster(one(docs, "RayService"))["autoscalerOptions"]
    for owner in [*containers, autoscaler]:
        resources = owner["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), (owner.get("name"), kind)
        assert parse_memory(resources["requests"]["memory"]) == parse_memory(
            resources["limits"]["memory"]
        ), owner.get("name")  # memory is not compressible: no overcommit


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_secrets_are_referenced_and_never_inlined(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    secretish = re.compile(r"KEY|PASSWORD|TOKEN|SECRET|AUTH", re.IGNORECASE)
    referenced = set()
    for spec in pod_specs(docs):
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    referenced.add(source["secret"]["name"])
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            for env in container.get("env", []):
                if secretish.search(env["name"]):
                    assert "value" not in env, f"{container['name']}: {env['name']} inlined"
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
            sources = container.get("envFrom", [])
            referenced |= {e["secretRef"]["name"] for e in sources if "secretRef" in e}
    assert referenced <= SECRETS
    assert {"s2s-provider-keys", "s2s-api-keys", *ROLE_SECRETS} <= referenced
    config = mounted_config(docs, rayservice)
    assert config.auth.api_keys == []
    assert config.auth.api_keys_env == "S2S_API_KEYS"
    # every Ray pod reads its admin and metrics keys (Prometheus's) from s2s-api-keys
    key_vars = {
        config.auth.admin_keys_env: "admin-keys",
        config.auth.metrics_keys_env: "metrics-keys",
    }
    for spec in ray_pod_specs(rayservice):
        env = {e["name"]: e for c in spec["containers"] for e in c.get("env", [])}
        for name, key in key_vars.items():
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "s2s-api-keys", "key": key, "optional": True}, name
    serve_text = rayservice["spec"]["serveConfigV2"]
    assert not re.search(r"sk-|api_key|password", serve_text, re.IGNORECASE)


def test_core_kinds_pass_kubernetes_validate_strictly(docs: list[dict[str, Any]]) -> None:
    checked = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked.append(doc["kind"])
    core = {"Deployment", "StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"}
    assert core | {"NetworkPolicy"} <= set(checked)


def test_kubernetes_validate_catches_a_bad_core_manifest(docs: list[dict[str, Any]]) -> None:
    deployment = one(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# -- tool-worker scaling -------------------------------------------------------------------------


def test_tool_workers_run_the_configured_pool(
    docs: list[dict[str, Any]], rayservice: dict[str, Any]
) -> None:
    config = mounted_config(docs, rayservice)
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:2] == ["s2s", "tool-worker"]
        pool = command[command.index("--pool") + 1]
        assert pool in config.tool_pools
        assert command[command.index("--config") + 1] == CONTAINER_CONFIG_PATH
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > config.tool_pools[pool].timeout_s  # in-progress calls finish


def test_tool_workers_scale_by_exactly_one_autoscaler(docs: list[dict[str, Any]]) -> None:
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        scalers = [
            d
            for d in docs
            if d["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}
            and d["spec"]["scaleTargetRef"]["name"] == name
        ]
        assert len(scalers) == 1, f"{name}: {[s['kind'] for s in scalers]}"
        assert scalers[0]["spec"].get("minReplicaCount", scalers[0]["spec"].get("minReplicas")) >= 1


def test_keda_scales_on_the_pools_stream_backlog(docs: list[dict[str, Any]]) -> None:
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    for obj in scaled:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        target = one(docs, "Deployment", obj["spec"]["scaleTargetRef"]["name"])
        command = target["spec"]["template"]["spec"]["containers"][0]["command"]
        pool = command[command.index("--pool") + 1]
        (trigger,) = obj["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "redis-streams"
        assert meta["stream"] == keys.tool_calls(pool)
        assert meta["consumerGroup"] == GROUP
        assert int(meta["lagCount"]) > 0
        redis_service = one(docs, "Service", "s2s-redis")
        namespace = redis_service["metadata"]["namespace"]
        port = redis_service["spec"]["ports"][0]["port"]
        assert meta["address"] == f"s2s-redis.{namespace}.svc.cluster.local:{port}"
        # KEDA connects as the ACL user `keda`, with the password the Redis pod gives it.
        assert meta["username"] == "keda"
        role = redis_acl.role(meta["username"])
        auth = one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref == {"parameter": "password", "name": role.secret, "key": "password"}
        redis_spec = one(docs, "StatefulSet", "s2s-redis")["spec"]["template"]["spec"]
        (passwords,) = [v for v in redis_spec["volumes"] if v["name"] == "acl-passwords"]
        projected = {
            s["secret"]["name"]: s["secret"]["items"] for s in passwords["projected"]["sources"]
        }
        assert projected[role.secret] == [{"key": "password", "path": role.name}]
        known = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval"}
        known |= {"cooldownPeriod", "advanced", "triggers", "fallback", "idleReplicaCount"}
        assert set(obj["spec"]) <= known


def test_the_proxies_frame_limit_matches_the_configuration() -> None:
    """S2S_WS_MAX_FRAME_BYTES on the Ray pods is what transport_limits derives from config.yaml."""
    from deployments.transport_limits import LIMIT_ENV, environment
    from s2s.service.config import load_config

    config = load_config(ROOT / "config.yaml", environ={})
    want = environment(config.serve.max_frame_bytes, config.serve.max_control_bytes)
    ray_service = yaml.safe_load((ROOT / "k8s/base/rayservice.yaml").read_text())
    head = ray_service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in head["containers"][0]["env"]}
    assert env[LIMIT_ENV] == want[LIMIT_ENV]
    assert (
        env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"]
        == want["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"]
    )
