"""Strict JSON Schemas for the Prometheus operator's kinds k8s/ uses (monitoring.coreos.com/v1).

Neither the operator's CRDs nor a package that ships them is available offline (the pydantic
models on PyPI, cloudcoil-models-prometheus-operator, accept unknown fields, so a typo would
pass). These schemas are written from the operator's CRDs (v0.8x, ``example/prometheus-operator-
crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml``): the fields
k8s/ uses and the common ones around them, with the CRDs' types, enums, required fields and
duration pattern, and ``additionalProperties: false`` everywhere, so a misspelt field fails here
instead of being pruned silently by the API server. A field the CRDs have but these schemas do
not is refused too: add it here (from the CRD) when k8s/ starts using it.
"""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft7Validator

__all__ = ["errors"]

#: The CRDs' pattern for a Prometheus duration (``15s``, ``1m30s``, ``0``).
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
    r"(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


SECRET_KEY = _object(
    {"name": {"type": "string"}, "key": {"type": "string"}, "optional": {"type": "boolean"}},
    ("key",),
)
LABEL_SELECTOR = _object(
    {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": _object(
                {
                    "key": {"type": "string"},
                    "operator": {
                        "type": "string",
                        "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                    },
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                ("key", "operator"),
            ),
        },
    }
)
RELABEL = _object(
    {
        "action": {
            "type": "string",
            "enum": [
                spelling
                for action in ("Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop")
                + ("LabelKeep", "Lowercase", "Uppercase", "KeepEqual", "DropEqual")
                for spelling in (action, action.lower())
            ],
        },
        "modulus": {"type": "integer"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "separator": {"type": "string"},
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "targetLabel": {"type": "string"},
    }
)
#: What a ServiceMonitor endpoint and a PodMonitor endpoint share.
SCRAPE_ENDPOINT = {
    "path": {"type": "string"},
    "scheme": {"type": "string", "enum": ["http", "https"]},
    "interval": DURATION,
    "scrapeTimeout": DURATION,
    "honorLabels": {"type": "boolean"},
    "honorTimestamps": {"type": "boolean"},
    "params": {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
    "authorization": _object(
        {"type": {"type": "string", "not": {"pattern": "(?i)^basic$"}}, "credentials": SECRET_KEY}
    ),
    "relabelings": {"type": "array", "items": RELABEL},
    "metricRelabelings": {"type": "array", "items": RELABEL},
    "followRedirects": {"type": "boolean"},
    "enableHttp2": {"type": "boolean"},
    "filterRunning": {"type": "boolean"},
}
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
METADATA = _object(
    {
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    ("name",),
)


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )


MONITOR_SPEC = {
    "jobLabel": {"type": "string"},
    "namespaceSelector": _object(
        {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}
    ),
    "selector": LABEL_SELECTOR,
    "podTargetLabels": {"type": "array", "items": {"type": "string"}},
    "sampleLimit": {"type": "integer"},
    "targetLimit": {"type": "integer"},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _resource(
        "ServiceMonitor",
        _object(
            {
                **MONITOR_SPEC,
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "endpoints": {
                    "type": "array",
                    "items": _object(
                        {**SCRAPE_ENDPOINT, "port": {"type": "string"}, "targetPort": INT_OR_STRING}
                    ),
                },
            },
            ("endpoints", "selector"),
        ),
    ),
    "PodMonitor": _resource(
        "PodMonitor",
        _object(
            {
                **MONITOR_SPEC,
                "podMetricsEndpoints": {
                    "type": "array",
                    "items": _object(
                        {
                            **SCRAPE_ENDPOINT,
                            "port": {"type": "string"},
                            "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
                        }
                    ),
                },
            },
            ("selector",),
        ),
    ),
    "PrometheusRule": _resource(
        "PrometheusRule",
        _object(
            {
                "groups": {
                    "type": "array",
                    "items": _object(
                        {
                            "name": {"type": "string", "minLength": 1},
                            "interval": DURATION,
                            "limit": {"type": "integer"},
                            "query_offset": DURATION,
                            "labels": STRING_MAP,
                            "rules": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": INT_OR_STRING,
                                        "for": DURATION,
                                        "keep_firing_for": {**DURATION, "minLength": 1},
                                        "labels": STRING_MAP,
                                        "annotations": STRING_MAP,
                                    },
                                    ("expr",),
                                ),
                            },
                        },
                        ("name",),
                    ),
                }
            }
        ),
    ),
}


def errors(doc: dict[str, Any]) -> list[str]:
    """Every violation of the strict schema for ``doc``'s kind, as ``path: message``."""
    validator = Draft7Validator(copy.deepcopy(SCHEMAS[doc["kind"]]))
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(doc)
    )
