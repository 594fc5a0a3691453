"""The Serve application: ``import_path: deployments.app:build_app`` (``serve run``, KubeRay).

``build_app(args)`` reads the service configuration (``args["config"]``, else ``$S2S_CONFIG``,
else defaults; ``S2S_*`` environment variables override) and applies its ``serve`` section to
the ingress deployment. The Serve config (replicas, autoscaling, ``max_ongoing_requests``)
and the app config come from the one ``config.yaml``.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from s2s.service.config import ServiceConfig, load_config

from .ingress import Ingress

__all__ = ["build_app", "deployment_options"]


def deployment_options(config: ServiceConfig) -> dict[str, Any]:
    """Serve options for the ingress, from the ``serve`` section."""
    serve_cfg = config.serve
    options: dict[str, Any] = {
        "max_ongoing_requests": serve_cfg.max_ongoing_requests,
        "graceful_shutdown_timeout_s": serve_cfg.graceful_shutdown_timeout_s,
        "ray_actor_options": {"num_cpus": serve_cfg.replica_cpus},
    }
    if serve_cfg.autoscaling is not None:
        options["autoscaling_config"] = serve_cfg.autoscaling.model_dump()
    else:
        options["num_replicas"] = serve_cfg.num_replicas
    return options


def build_app(
    args: dict[str, Any] | None = None, config: ServiceConfig | None = None
) -> Application:
    """The ingress application for ``config`` (or the config named in ``args["config"]``)."""
    if config is None:
        config = load_config((args or {}).get("config"))
    deployment: Any = Ingress  # a serve.Deployment once decorated
    application: Application = deployment.options(**deployment_options(config)).bind(
        config.model_dump(mode="json")
    )
    return application
