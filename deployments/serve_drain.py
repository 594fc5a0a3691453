"""Whether Serve is stopping this ingress replica (a redeploy, a scale-down, a drained node).

Serve gives a replica no notice before it drains: it stops routing new requests to it, waits
for the open ones to finish (up to ``graceful_shutdown_timeout_s``), and only then calls the
replica's destructor. A stream socket never finishes by itself (a call lasts minutes), so
without a notice every call would sit on the stopping replica for the whole grace period and
then be cut. :func:`replica_draining` reads the flag Serve sets when the stop begins, so the
ingress can tell its clients at once to reconnect elsewhere (close code 1012).

The flag is Serve's own (``_shutting_down`` on the replica implementation, Ray 2.60), reached
through the worker's actor instance: private API, contained here. If a Ray upgrade moves it,
this returns False (clients are then cut at the end of the grace period and still resume
without loss), and the redeploy test's timing check fails to say so.
"""

from __future__ import annotations

from typing import Any

__all__ = ["replica_draining"]


def replica_draining() -> bool:
    """True once Serve has begun stopping the replica this code runs in; False otherwise
    (also outside a Serve replica, or if Serve's internals changed)."""
    try:
        from ray._private import worker as ray_worker

        current: Any = ray_worker.global_worker
        replica = current.actors.get(current.actor_id)
        implementation = getattr(replica, "_replica_impl", None)
        return bool(getattr(implementation, "_shutting_down", False))
    except Exception:
        return False
