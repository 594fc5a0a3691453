"""The KubeRay RayService CRD (v1.7.0) as a strict JSON Schema, read from ``../shared/data``.

Strict: every object schema that lists ``properties`` (and does not preserve unknown fields)
gets ``additionalProperties: false``, so a misspelt field fails instead of being pruned
silently by the API server. The CRD is never copied into the project.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

CRD_PATH = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "ray.io_rayservices.v1.7.0.yaml"
)


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _strict(value) for key, value in node.items()}
        if (
            "properties" in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in out
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


@functools.cache
def _schema() -> dict[str, Any]:
    if not CRD_PATH.exists():
        pytest.skip(f"the KubeRay CRD is not at {CRD_PATH} (shared/data is outside the project)")
    crd = yaml.safe_load(CRD_PATH.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = _strict(version["schema"]["openAPIV3Schema"])
    return schema


def rayservice_errors(doc: dict[str, Any]) -> list[str]:
    """Every schema violation of a RayService, as ``path: message``."""
    validator = Draft7Validator(copy.deepcopy(_schema()))
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(doc)
    )
