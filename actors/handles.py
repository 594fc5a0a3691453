"""Creating and finding session actors by session id.

Actors are *named* (``session:<id>``) in a dedicated namespace and *detached* (no owner: an
ingress replica that scales down does not take calls with it). Creation is get-or-create, so
two replicas racing on one id end up with one actor. Each actor takes ``num_cpus=0`` and one
unit of the session-slot resource, which is what the Ray autoscaler counts to add nodes.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from s2s.service.config import ServiceConfig

from .session_actor import SessionActor, ray_actor_name
from .spec import SessionSpec

__all__ = ["RemoteSessionActor", "SessionHandle", "get_or_create", "lookup"]

#: A Ray actor handle to a :class:`SessionActor` (Ray's own typing of handles is too loose to
#: help mypy, so the handle is typed as ``Any`` at this boundary).
SessionHandle = Any

#: ``max_restarts=0``: a restarted process could not resume the provider socket anyway; the
#: ingress builds a replacement from the saved state instead.
_remote: Any = ray.remote
RemoteSessionActor: Any = _remote(num_cpus=0, max_restarts=0, max_concurrency=1000)(SessionActor)


def get_or_create(
    spec: SessionSpec, service: ServiceConfig, avoid_node: str | None = None
) -> SessionHandle:
    """The session's actor, created if it does not exist (on another node than ``avoid_node``
    if one has a free slot: a replacement must not land on the node that just failed, which
    Ray still counts as alive for several seconds)."""
    options: dict[str, Any] = {}
    if avoid_node is not None:
        target = node_with_free_slot(service.sessions.resource, avoid_node)
        if target is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(target, soft=True)
    return RemoteSessionActor.options(
        name=ray_actor_name(spec.session_id),
        namespace=service.sessions.namespace,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        resources={service.sessions.resource: 1},
        **options,
    ).remote(spec.session_id, spec.to_dict(), service.model_dump())


def node_with_free_slot(resource: str, avoid_node: str) -> str | None:
    """The node other than ``avoid_node`` with the most free session slots, or None."""
    from ray._private.state import available_resources_per_node

    free = {
        node: slots.get(resource, 0.0)
        for node, slots in available_resources_per_node().items()  # type: ignore[no-untyped-call]
        if node != avoid_node
    }
    best = max(free, key=lambda node: free[node], default=None)
    return best if best is not None and free[best] >= 1 else None


def lookup(session_id: str, service: ServiceConfig) -> SessionHandle | None:
    """The live actor of ``session_id``, or None."""
    try:
        return ray.get_actor(ray_actor_name(session_id), namespace=service.sessions.namespace)
    except ValueError:
        return None
