"""``s2s k8s render`` (regenerate the config-derived parts of ``k8s/`` and the app Redis's ACL
rules) and ``s2s k8s slots``.

Registered with ``s2s`` through the ``s2s.commands`` entry-point group (pyproject.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_k8s"]


def add_k8s(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "k8s",
        help="Kubernetes manifests: regenerate what comes from config.yaml; size worker pods",
        description="Keep k8s/ in sync with config.yaml (the RayService's serveConfigV2 and "
        "the ConfigMap the pods mount) and with the Redis ACL roles (s2s.service.redis_acl), "
        "and work out session slots for a worker pod size.",
    )
    commands = parser.add_subparsers(dest="k8s_command", metavar="ACTION", required=True)
    render = commands.add_parser(
        "render",
        help="write k8s/**/generated/ from config.yaml (and each overlay's config-overrides.yaml) "
        "and the Redis ACL rules",
    )
    render.add_argument(
        "--project", type=Path, default=Path("."), help="the project folder (default: .)"
    )
    render.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file is stale",
    )
    render.set_defaults(run=run_render)
    slots = commands.add_parser(
        "slots", help="session slots for a worker pod (docs/deploy.md explains the formula)"
    )
    slots.add_argument("--memory", required=True, help="the pod's memory limit, e.g. 16Gi")
    slots.add_argument("--cpus", required=True, help="the pod's CPU limit, e.g. 8 or 7500m")
    slots.add_argument("--session-mb", type=float, default=None, help="memory per call (MB)")
    slots.add_argument("--session-cpu", type=float, default=None, help="cores per call")
    slots.set_defaults(run=run_slots)


async def run_render(args: argparse.Namespace) -> int:
    from .k8s import stale_files, write_files

    project: Path = args.project.resolve()
    if not (project / "config.yaml").exists() or not (project / "k8s").is_dir():
        print(f"s2s k8s render: {project} has no config.yaml and k8s/", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(project)
        for path in stale:
            print(f"stale: {path.relative_to(project)}", file=sys.stderr)
        if stale:
            print("run `s2s k8s render` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(project):
        print(f"wrote {path.relative_to(project)}")
    return 0


async def run_slots(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .sizing import SessionCost, parse_cpu, parse_memory, session_slots

    cost = SessionCost()
    if args.session_mb is not None:
        cost = replace(cost, memory_mb=args.session_mb)
    if args.session_cpu is not None:
        cost = replace(cost, cpu=args.session_cpu)
    try:
        memory, cpus = parse_memory(args.memory), parse_cpu(args.cpus)
    except ValueError as exc:
        print(f"s2s k8s slots: {exc}", file=sys.stderr)
        return 2
    print(session_slots(memory, cpus, cost))
    return 0
