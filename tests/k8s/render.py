"""Rendering ``k8s/`` with real kustomize, offline.

kustomize v5 ships inside ``kubectl`` (``kubectl kustomize``); a standalone ``kustomize``
binary is used when on PATH. Without either the manifest tests skip, unless
``S2S_REQUIRE_KUSTOMIZE=1`` (CI sets it), which makes a missing renderer a failure.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
MIN_KUSTOMIZE = (5, 0)


def _version(text: str) -> tuple[int, int] | None:
    match = re.search(r"v?(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def kustomize_command() -> tuple[list[str], str] | str:
    """(the build command, its version) or why there is none."""
    if shutil.which("kustomize"):
        out = subprocess.run(
            ["kustomize", "version"], capture_output=True, text=True, check=False, timeout=30
        )
        version = _version(out.stdout)
        if version and version >= MIN_KUSTOMIZE:
            return ["kustomize", "build"], out.stdout.strip()
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        try:
            found = json.loads(out.stdout).get("kustomizeVersion", "")
        except json.JSONDecodeError:
            found = ""
        version = _version(found)
        if version and version >= MIN_KUSTOMIZE:
            return ["kubectl", "kustomize"], f"kubectl's kustomize {found}"
        return f"kubectl's kustomize is {found or 'unknown'}; >= v5 is needed"
    return "neither kustomize (>= v5) nor kubectl is on PATH"


def require_kustomize() -> list[str]:
    found = kustomize_command()
    if isinstance(found, str):
        if os.environ.get("S2S_REQUIRE_KUSTOMIZE") == "1":
            pytest.fail(f"S2S_REQUIRE_KUSTOMIZE=1 but {found}")
        pytest.skip(f"cannot render k8s/ offline: {found}")
    return found[0]


@functools.cache
def _build(path: Path) -> str:
    command = require_kustomize()
    out = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    if out.returncode != 0:
        raise AssertionError(f"kustomize build {path} failed:\n{out.stderr}")
    return out.stdout


def build(path: Path) -> list[dict[str, Any]]:
    """The resources kustomize renders from ``path`` (fresh copies)."""
    return [doc for doc in yaml.safe_load_all(_build(path)) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
