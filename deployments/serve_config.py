"""The Serve config (KubeRay ``serveConfigV2``) generated from the service's ``config.yaml``.

One source of truth: the ingress options come from :func:`deployments.app.deployment_options`,
the import path and deployment name from the code itself, so the generated config cannot
disagree with ``s2s serve``. :func:`check_serve_config` validates a config with Ray's own
``ServeDeploySchema`` and, because Serve's models silently ignore unknown keys, also rejects
keys they do not define (a typo would otherwise be dropped without a word).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from s2s.errors import ConfigurationError
from s2s.service.config import ServiceConfig

from .app import build_app, deployment_options
from .ingress import Ingress

__all__ = [
    "APP_NAME",
    "CONTAINER_CONFIG_PATH",
    "IMPORT_PATH",
    "check_serve_config",
    "ingress_deployment_name",
    "serve_config",
]

#: Where the pods mount the ConfigMap generated from config.yaml (k8s/base).
CONTAINER_CONFIG_PATH = "/etc/s2s/config.yaml"
#: The application name (the same as ``s2s serve`` uses).
APP_NAME = "s2s"
IMPORT_PATH = f"{build_app.__module__}:{build_app.__name__}"


def ingress_deployment_name() -> str:
    """The ingress deployment's name, as Serve knows it."""
    deployment: Any = Ingress  # a serve.Deployment once decorated
    name: str = deployment.name
    return name


def serve_config(
    config: ServiceConfig, *, config_path: str = CONTAINER_CONFIG_PATH
) -> dict[str, Any]:
    """The Serve config for ``config`` on a cluster; the app reads ``config_path`` in the pods.

    Raises:
        ConfigurationError: a setting the Kubernetes deployment does not support.
    """
    serve_cfg = config.serve
    if serve_cfg.ingress == "direct":
        raise ConfigurationError(
            "serve.ingress: direct is for local runs: the k8s Service reaches port 8000 on "
            "every pod, where only haproxy (the default) or proxy listens; set serve.ingress "
            "to haproxy"
        )
    http_options: dict[str, Any] = {"host": "0.0.0.0", "port": serve_cfg.port}
    if serve_cfg.request_timeout_s is not None:  # else no timeout: it would cut WebSockets
        http_options["request_timeout_s"] = serve_cfg.request_timeout_s
    deployment = {"name": ingress_deployment_name(), **deployment_options(config)}
    result = {
        "proxy_location": "EveryNode",
        "http_options": http_options,
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {"config": config_path},
                "deployments": [deployment],
            }
        ],
    }
    check_serve_config(result)
    return result


#: Which Serve model each nested key of a config is checked against.
_NESTED: dict[type[BaseModel], dict[str, type[BaseModel]]] = {
    ServeDeploySchema: {"http_options": HTTPOptionsSchema, "applications": ServeApplicationSchema},
    ServeApplicationSchema: {"deployments": DeploymentSchema},
    DeploymentSchema: {
        "ray_actor_options": RayActorOptionsSchema,
        "autoscaling_config": AutoscalingConfig,
    },
}


def _unknown_keys(data: Any, model: type[BaseModel], where: str) -> list[str]:
    if not isinstance(data, dict):
        return []
    problems = [f"{where}.{key}" for key in data if key not in model.model_fields]
    for key, child_model in _NESTED.get(model, {}).items():
        child = data.get(key)
        items = child if isinstance(child, list) else [child]
        for index, item in enumerate(items):
            label = f"{where}.{key}[{index}]" if isinstance(child, list) else f"{where}.{key}"
            problems += _unknown_keys(item, child_model, label)
    return problems


def check_serve_config(data: Any) -> ServeDeploySchema:
    """Validate a Serve config strictly: Ray's schema plus no keys Serve would ignore.

    Raises:
        ConfigurationError: naming every problem.
    """
    unknown = _unknown_keys(data, ServeDeploySchema, "serveConfigV2")
    if unknown:
        raise ConfigurationError("unknown Serve config keys: " + ", ".join(unknown))
    try:
        return ServeDeploySchema.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"invalid Serve config: {exc}") from None
