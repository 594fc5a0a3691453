"""The Ray pods' ``preStop`` hook: stop taking calls, then wait for the live ones to end.

``python -m deployments.drain --scope node --timeout 3570`` (worker pods):

1. asks Ray to drain this node (``ray drain-node``, reason preemption, with the deadline): no
   new session actor is placed here, Serve marks the node's proxy as draining (its
   ``/-/healthz`` fails, so the pod leaves the Service) and starts this node's ingress replicas
   elsewhere before stopping these (each open WebSocket gets ``graceful_shutdown_timeout_s``).
   ``drain-node`` is a hidden Ray command; if it fails the hook still waits;
2. waits until no session-actor process runs on this node, or until the timeout.

``--scope cluster`` (the head pod, which hosts no sessions) waits until no session actor is
left in the whole cluster: the head's GCS must outlive the workers' calls.

The hook exits 0 in every case (a failing preStop only delays the kill); Kubernetes sends
SIGTERM afterwards, and kills the pod at ``terminationGracePeriodSeconds``, so ``--timeout``
must stay below that (a test checks the manifests).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["SESSION_ACTOR_CLASS", "drain_command", "session_processes", "wait_for_calls"]

#: The session actor's class name (``actors.session_actor.SessionActor``; a test checks):
#: Ray titles an actor's process ``ray::<class>`` (``ray::<class>.<method>`` during a call).
SESSION_ACTOR_CLASS = "SessionActor"


def session_processes(proc: Path = Path("/proc")) -> list[int]:
    """PIDs of this machine's session-actor processes (read from ``/proc/<pid>/cmdline``)."""
    prefix = f"ray::{SESSION_ACTOR_CLASS}".encode()
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended, or is not ours to read
            continue
        title = cmdline.split(b"\0", 1)[0].strip()
        if title == prefix or title.startswith(prefix + b"."):
            pids.append(int(entry.name))
    return sorted(pids)


def cluster_sessions(namespace: str) -> int:
    """Live named session actors in the cluster (connects to it as a driver)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="auto", namespace="s2s-drain", log_to_driver=False)
    names = ray.util.list_named_actors(all_namespaces=True)
    return sum(1 for actor in names if actor.get("namespace") == namespace)


def drain_command(deadline_s: int) -> list[str]:
    """The ``ray drain-node`` call for this node."""
    return [
        "ray",
        "drain-node",
        "--reason",
        "DRAIN_NODE_REASON_PREEMPTION",
        "--reason-message",
        "pod terminating (s2s preStop)",
        "--deadline-remaining-seconds",
        str(deadline_s),
    ]


def wait_for_calls(
    count: Callable[[], int],
    timeout_s: float,
    *,
    interval_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> bool:
    """Poll ``count()`` until it is 0 (True) or ``timeout_s`` passes (False)."""
    deadline = clock() + timeout_s
    while True:
        try:
            live = count()
        except Exception as exc:  # a count we cannot take is not a reason to cut calls
            say(f"drain: cannot count live calls ({type(exc).__name__}: {exc})")
            live = -1
        if live == 0:
            say("drain: no live calls left")
            return True
        left = deadline - clock()
        if left <= 0:
            say(f"drain: timeout with {live} live call(s); the pod stops now")
            return False
        if live > 0:
            say(f"drain: {live} live call(s), waiting up to {left:.0f} s more")
        sleep(min(interval_s, left))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.drain", description=__doc__)
    parser.add_argument("--scope", choices=("node", "cluster"), default="node")
    parser.add_argument("--timeout", type=float, required=True, help="seconds to wait at most")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks")
    parser.add_argument("--namespace", default="s2s-sessions", help="session actors' namespace")
    args = parser.parse_args(argv)
    if args.scope == "node":
        try:
            failed = subprocess.run(drain_command(int(args.timeout)), timeout=60).returncode != 0
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"drain: {exc}", flush=True)
            failed = True
        if failed:
            print("drain: ray drain-node failed; waiting for the calls anyway", flush=True)
        counter: Callable[[], int] = lambda: len(session_processes())  # noqa: E731
    else:
        counter = lambda: cluster_sessions(args.namespace)  # noqa: E731
    wait_for_calls(
        counter,
        args.timeout,
        interval_s=args.interval,
        say=lambda text: print(text, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
