"""A small evaluator of Kubernetes NetworkPolicies (ingress only), for the rendered manifests.

It follows the API's semantics (``networking.k8s.io/v1``):

* a pod is isolated for ingress when some policy of its namespace selects it with ``Ingress``
  among its ``policyTypes`` (which default to ``[Ingress]``, plus ``Egress`` when the policy has
  egress rules); an isolated pod accepts a connection only if some rule of some selecting
  policy allows it (policies add up), a pod no policy selects accepts everything;
* a rule with no ``from`` (or an empty one) admits every source, one with no ``ports`` every
  port; a ``ports`` entry without ``port`` admits every port of its protocol (TCP by default),
  ``endPort`` makes a range;
* a peer with only ``podSelector`` means pods of the policy's namespace; with only
  ``namespaceSelector``, every pod of the matching namespaces; with both, the matching pods of
  the matching namespaces. A source outside the cluster matches no pod or namespace selector.

Named ports and ``ipBlock`` peers are refused (the manifests use neither): they would need
more context than labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_PORTS = range(1, 65536)


@dataclass(frozen=True)
class Pod:
    """A connection's source or target: its labels and its namespace's labels."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    external: bool = False  # outside the cluster (a client behind a load balancer)

    @classmethod
    def in_namespace(cls, name: str, namespace: str, labels: Mapping[str, str]) -> Pod:
        return cls(name, namespace, dict(labels), {"kubernetes.io/metadata.name": namespace})


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector matches ``labels`` (an empty selector matches everything)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"unknown selector operator {operator}")
    return True


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _peer_admits(peer: Mapping[str, Any], source: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        raise ValueError("ipBlock peers are not evaluated")
    if source.external:
        return False
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = source.namespace == policy_namespace
    else:
        in_namespace = selects(namespaces, source.namespace_labels)
    return in_namespace and selects(peer.get("podSelector"), source.labels)


def _port_admits(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    entries = list(ports or [])
    if not entries:
        return True
    for entry in entries:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        first = entry["port"]
        if isinstance(first, str):
            raise ValueError(f"named port {first!r} is not evaluated")
        if first <= port <= entry.get("endPort", first):
            return True
    return False


def selecting(policies: Iterable[Mapping[str, Any]], target: Pod) -> list[Mapping[str, Any]]:
    """The policies that isolate ``target`` for ingress."""
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == target.namespace
        and "Ingress" in policy_types(p)
        and selects(p["spec"]["podSelector"], target.labels)
    ]


def _admitted(
    isolating: list[Mapping[str, Any]], source: Pod, port: int, protocol: str = "TCP"
) -> bool:
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            if peers and not any(
                _peer_admits(peer, source, policy["metadata"]["namespace"]) for peer in peers
            ):
                continue
            if _port_admits(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Pod,
    target: Pod,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether ``source`` may open a connection to ``target`` on ``port``."""
    isolating = selecting(policies, target)
    return not isolating or _admitted(isolating, source, port, protocol)


def _rule_ports(ports: Iterable[Mapping[str, Any]] | None, protocol: str) -> set[int]:
    entries = list(ports or [])
    if not entries:
        return set(ALL_PORTS)
    out: set[int] = set()
    for entry in entries:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return set(ALL_PORTS)
        first = entry["port"]
        if isinstance(first, str):
            raise ValueError(f"named port {first!r} is not evaluated")
        out |= set(range(first, entry.get("endPort", first) + 1))
    return out


def reachable_ports(
    policies: Iterable[Mapping[str, Any]],
    source: Pod,
    target: Pod,
    ports: Iterable[int] = ALL_PORTS,
) -> set[int]:
    """The TCP ports of ``target`` (among ``ports``) that ``source`` may connect to: the same
    answer as :func:`allowed` port by port, worked out from the rules' port lists."""
    isolating = selecting(policies, target)
    wanted = set(ports)
    if not isolating:
        return wanted
    reachable: set[int] = set()
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            if peers and not any(
                _peer_admits(peer, source, policy["metadata"]["namespace"]) for peer in peers
            ):
                continue
            reachable |= _rule_ports(rule.get("ports"), "TCP")
    return reachable & wanted
