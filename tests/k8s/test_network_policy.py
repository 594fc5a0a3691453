"""The rendered NetworkPolicies, evaluated as data: who can connect to which pod and port.

Pods are built from the rendered pod templates' labels, plus the labels KubeRay adds to Ray
pods (``ray.io/cluster`` differs between the two clusters of a NewCluster upgrade), and a few
sources from elsewhere: a stray pod of the namespace, an operator's pod, the KubeRay and KEDA
operators, an ingress controller, a client outside the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from .netpol import ALL_PORTS, Pod, allowed, policy_types, reachable_ports, selecting, selects
from .render import K8S, OVERLAYS, build, one

MEDIA_PORTS = range(32768, 61000)  # Linux's ephemeral ports: a session actor's media channel
SERVE = 8000
DASHBOARD = 8265
REDIS = 6379


@dataclass(frozen=True)
class Cluster:
    """The pods of one overlay, and sources from around it."""

    docs: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    namespace: str
    head_old: Pod
    head_new: Pod
    worker_old: Pod
    worker_new: Pod
    redis_cleanup: Pod
    tool_worker: Pod
    redis: Pod
    redis_gcs: Pod
    stray: Pod
    operator: Pod
    kuberay: Pod
    keda: Pod
    ingress_nginx: Pod
    client: Pod
    has_keda: bool

    @property
    def pods(self) -> list[Pod]:
        return [
            self.head_old,
            self.head_new,
            self.worker_old,
            self.worker_new,
            self.tool_worker,
            self.redis,
            self.redis_gcs,
        ]


def _ray_pod(
    namespace: str, template: dict[str, Any], node_type: str, cluster: str, group: str
) -> Pod:
    # KubeRay's labels (common/pod.go labelPod): the template's own override all but ray.io/*.
    labels = {
        "ray.io/is-ray-node": "yes",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
        **template["metadata"]["labels"],
        "ray.io/cluster": cluster,
        "ray.io/node-type": node_type,
        "ray.io/group": group,
    }
    return Pod.in_namespace(f"{cluster}-{node_type}", namespace, labels)


def _template_pod(docs: list[dict[str, Any]], kind: str, name: str, namespace: str) -> Pod:
    labels = one(docs, kind, name)["spec"]["template"]["metadata"]["labels"]
    return Pod.in_namespace(name, namespace, labels)


@pytest.fixture(scope="module", params=OVERLAYS)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    docs = build(K8S / "overlays" / str(request.param))
    rayservice = one(docs, "RayService", "s2s")
    namespace = rayservice["metadata"]["namespace"]
    spec = rayservice["spec"]["rayClusterConfig"]
    head = spec["headGroupSpec"]["template"]
    (group,) = spec["workerGroupSpecs"]
    old, new = "s2s-raycluster-old12", "s2s-raycluster-new34"
    tool_worker = one(docs, "Deployment")["metadata"]["name"]
    return Cluster(
        docs=docs,
        policies=[d for d in docs if d["kind"] == "NetworkPolicy"],
        namespace=namespace,
        head_old=_ray_pod(namespace, head, "head", old, "headgroup"),
        head_new=_ray_pod(namespace, head, "head", new, "headgroup"),
        worker_old=_ray_pod(namespace, group["template"], "worker", old, group["groupName"]),
        worker_new=_ray_pod(namespace, group["template"], "worker", new, group["groupName"]),
        redis_cleanup=_ray_pod(namespace, head, "redis-cleanup", old, "headgroup"),
        tool_worker=_template_pod(docs, "Deployment", tool_worker, namespace),
        redis=_template_pod(docs, "StatefulSet", "s2s-redis", namespace),
        redis_gcs=_template_pod(docs, "StatefulSet", "s2s-redis-gcs", namespace),
        stray=Pod.in_namespace("debug", namespace, {"run": "debug"}),
        operator=Pod.in_namespace("ray-admin", namespace, {"s2s.io/operator": "true"}),
        kuberay=Pod.in_namespace(
            "kuberay-operator", "kuberay", {"app.kubernetes.io/name": "kuberay-operator"}
        ),
        keda=Pod.in_namespace("keda-operator", "keda", {"app.kubernetes.io/name": "keda-operator"}),
        ingress_nginx=Pod.in_namespace(
            "controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
        ),
        client=Pod("client", "", external=True),
        has_keda=any(d["kind"] == "ScaledObject" for d in docs),
    )


def ports(c: Cluster, source: Pod, target: Pod) -> set[int]:
    return reachable_ports(c.policies, source, target)


# -- the evaluator itself --------------------------------------------------------------------------


def _policy(spec: dict[str, Any], namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_the_evaluator_follows_the_network_policy_semantics() -> None:
    a = Pod.in_namespace("a", "ns", {"app": "a"})
    b = Pod.in_namespace("b", "ns", {"app": "b"})
    elsewhere = Pod.in_namespace("b", "other", {"app": "b"})
    assert allowed([], a, b, 80)  # no policy: not isolated
    deny = _policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    assert not allowed([deny], a, b, 80)
    assert not allowed([deny], b, b, 80)  # not even from itself
    egress_only = _policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert allowed([egress_only], a, b, 80)
    from_a = _policy(
        {
            "podSelector": {"matchLabels": {"app": "b"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": 80}]}
            ],
        }
    )
    assert policy_types(from_a) == ["Ingress"]
    assert allowed([deny, from_a], a, b, 80)
    assert not allowed([deny, from_a], a, b, 81)
    assert not allowed([deny, from_a], b, b, 80)
    assert not allowed([deny, from_a], elsewhere, b, 80)  # podSelector alone: own namespace
    assert not allowed([deny, from_a], a, b, 80, "UDP")
    both = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}},
        "podSelector": {"matchLabels": {"app": "b"}},
    }
    cross = _policy({"podSelector": {}, "ingress": [{"from": [both]}]})
    assert allowed([cross], elsewhere, a, 5)
    assert not allowed([cross], b, a, 5)  # the namespace does not match
    assert not allowed([cross], Pod.in_namespace("c", "other", {"app": "c"}), a, 5)
    split = _policy(
        {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": both["namespaceSelector"]}]}],
        }
    )
    assert allowed([split], Pod.in_namespace("c", "other", {"app": "c"}), a, 5)
    ranged = _policy({"podSelector": {}, "ingress": [{"ports": [{"port": 10, "endPort": 12}]}]})
    outside = Pod("x", "", external=True)
    assert reachable_ports([ranged], outside, a, range(1, 20)) == {10, 11, 12}
    for policies in ([deny, from_a], [cross], [split], [ranged], [deny, from_a, ranged]):
        for source in (a, b, elsewhere, outside):
            for target in (a, b, elsewhere):
                some = range(1, 100)
                assert reachable_ports(policies, source, target, some) == {
                    port for port in some if allowed(policies, source, target, port)
                }
    assert selects(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, b.labels
    )
    assert not selects({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, a.labels)


# -- coverage --------------------------------------------------------------------------------------


def test_every_pod_is_isolated_by_a_default_deny(cluster: Cluster) -> None:
    (deny,) = [
        p
        for p in cluster.policies
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert policy_types(deny) == ["Ingress"]
    for pod in [*cluster.pods, cluster.redis_cleanup, cluster.stray]:
        assert deny in selecting(cluster.policies, pod), pod.name


def test_every_app_pod_is_selected_by_a_policy_of_its_own(cluster: Cluster) -> None:
    own = [p for p in cluster.policies if p["spec"]["podSelector"] != {}]
    for pod in cluster.pods:
        if pod is cluster.tool_worker:
            assert selecting(own, pod) == []  # nothing may connect to a tool worker
        else:
            assert selecting(own, pod), pod.name


def test_outbound_traffic_is_not_restricted(cluster: Cluster) -> None:
    # Providers, tool back ends, DNS and the API server: no policy limits egress.
    assert all(policy_types(p) == ["Ingress"] for p in cluster.policies)


# -- media channels and Ray's own traffic -------------------------------------------------------


def test_ray_pods_reach_each_other_on_every_port_across_both_clusters(cluster: Cluster) -> None:
    ray = [cluster.head_old, cluster.head_new, cluster.worker_old, cluster.worker_new]
    for source in ray:
        for target in ray:
            if source is not target:
                assert ports(cluster, source, target) == set(ALL_PORTS), (source, target)


def test_a_new_clusters_ingress_reaches_an_old_clusters_session_actor(cluster: Cluster) -> None:
    for port in (MEDIA_PORTS[0], 45123, MEDIA_PORTS[-1]):
        assert allowed(cluster.policies, cluster.worker_new, cluster.worker_old, port)
        assert allowed(cluster.policies, cluster.worker_old, cluster.worker_new, port)


def test_only_ray_pods_reach_the_media_ports(cluster: Cluster) -> None:
    others = [
        cluster.tool_worker,
        cluster.redis,
        cluster.redis_gcs,
        cluster.stray,
        cluster.operator,
        cluster.kuberay,
        cluster.keda,
        cluster.ingress_nginx,
        cluster.client,
    ]
    for source in others:
        for worker in (cluster.worker_old, cluster.worker_new):
            reachable = ports(cluster, source, worker)
            assert not reachable & set(MEDIA_PORTS), source.name
            assert reachable <= {SERVE}, (source.name, sorted(reachable)[:10])


def test_tool_workers_reach_neither_ray_pod_beyond_the_public_serve_port(cluster: Cluster) -> None:
    for target in (cluster.worker_old, cluster.worker_new):
        assert ports(cluster, cluster.tool_worker, target) == {SERVE}
    for head in (cluster.head_old, cluster.head_new):
        assert ports(cluster, cluster.tool_worker, head) == set()


# -- the dashboard, the job API and the Ray client ----------------------------------------------


def test_only_the_operators_reach_the_dashboard(cluster: Cluster) -> None:
    head = cluster.head_new
    assert ports(cluster, cluster.operator, head) == {DASHBOARD, 10001}
    assert ports(cluster, cluster.kuberay, head) == {DASHBOARD}
    for source in (
        cluster.stray,
        cluster.tool_worker,
        cluster.redis,
        cluster.keda,
        cluster.ingress_nginx,
        cluster.client,
    ):
        assert ports(cluster, source, head) == set(), source.name
    # The operator label counts in this namespace only; the KubeRay rule needs both its
    # namespace and its pod.
    outsider = Pod.in_namespace("x", "elsewhere", {"s2s.io/operator": "true"})
    assert ports(cluster, outsider, head) == set()
    fake = Pod.in_namespace("x", "elsewhere", {"app.kubernetes.io/name": "kuberay-operator"})
    assert ports(cluster, fake, head) == set()
    neighbour = Pod.in_namespace("x", "kuberay", {"app": "other"})
    assert ports(cluster, neighbour, head) == set()
    # An operator's pod reaches nothing else of the service.
    for target in (cluster.worker_old, cluster.redis, cluster.redis_gcs, cluster.tool_worker):
        assert ports(cluster, cluster.operator, target) <= {SERVE}


# -- calls -------------------------------------------------------------------------------------


def test_clients_reach_the_serve_port_of_the_session_workers_only(cluster: Cluster) -> None:
    for source in (cluster.client, cluster.ingress_nginx, cluster.stray):
        for worker in (cluster.worker_old, cluster.worker_new):
            assert ports(cluster, source, worker) == {SERVE}, source.name
        assert not allowed(cluster.policies, source, cluster.head_new, SERVE)  # not serving


def test_nothing_reaches_the_tool_workers(cluster: Cluster) -> None:
    sources = [
        cluster.head_new,
        cluster.worker_new,
        cluster.redis,
        cluster.stray,
        cluster.operator,
        cluster.kuberay,
        cluster.keda,
        cluster.client,
        cluster.tool_worker,
    ]
    for source in sources:
        assert ports(cluster, source, cluster.tool_worker) == set(), source.name


# -- Redis -------------------------------------------------------------------------------------


def test_the_app_redis_admits_the_ray_pods_and_tool_workers_only(cluster: Cluster) -> None:
    for source in (
        cluster.head_old,
        cluster.head_new,
        cluster.worker_old,
        cluster.worker_new,
        cluster.tool_worker,
    ):
        assert ports(cluster, source, cluster.redis) == {REDIS}, source.name
    for source in (
        cluster.stray,
        cluster.operator,
        cluster.kuberay,
        cluster.ingress_nginx,
        cluster.client,
        cluster.redis_gcs,
    ):
        assert ports(cluster, source, cluster.redis) == set(), source.name


def test_keda_reaches_the_app_redis_where_it_scales_the_tool_workers(cluster: Cluster) -> None:
    expected = {REDIS} if cluster.has_keda else set()
    assert ports(cluster, cluster.keda, cluster.redis) == expected
    assert ports(cluster, cluster.keda, cluster.redis_gcs) == set()
    stranger = Pod.in_namespace("x", "keda", {"app.kubernetes.io/name": "other"})
    assert ports(cluster, stranger, cluster.redis) == set()


def test_the_gcs_redis_admits_the_head_and_kuberays_cleanup_job_only(cluster: Cluster) -> None:
    for source in (cluster.head_old, cluster.head_new, cluster.redis_cleanup):
        assert ports(cluster, source, cluster.redis_gcs) == {REDIS}, source.name
    for source in (
        cluster.worker_old,
        cluster.worker_new,
        cluster.tool_worker,
        cluster.redis,
        cluster.stray,
        cluster.operator,
        cluster.kuberay,
        cluster.keda,
        cluster.client,
    ):
        assert ports(cluster, source, cluster.redis_gcs) == set(), source.name


def test_the_ports_the_policies_name_are_the_pods_ports(cluster: Cluster) -> None:
    spec = one(cluster.docs, "RayService")["spec"]["rayClusterConfig"]
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    worker = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    head_ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    worker_ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert head_ports["dashboard"] == DASHBOARD
    assert head_ports["gcs-server"] == REDIS
    assert worker_ports["serve"] == SERVE
    for name in ("s2s-redis", "s2s-redis-gcs"):
        assert one(cluster.docs, "Service", name)["spec"]["ports"][0]["port"] == REDIS
        container = one(cluster.docs, "StatefulSet", name)["spec"]["template"]["spec"]
        assert container["containers"][0]["ports"] == [{"name": "redis", "containerPort": REDIS}]
