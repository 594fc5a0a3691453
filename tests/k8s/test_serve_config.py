"""The generated Serve config: Ray's schema, strictness and agreement with the app's options."""

from __future__ import annotations

import pytest

from deployments.app import deployment_options
from deployments.serve_config import (
    CONTAINER_CONFIG_PATH,
    IMPORT_PATH,
    check_serve_config,
    ingress_deployment_name,
    serve_config,
)
from s2s.errors import ConfigurationError
from s2s.service.config import ServiceConfig


def test_the_serve_section_becomes_the_ingress_deployment():
    config = ServiceConfig.model_validate(
        {"serve": {"max_ongoing_requests": 800, "graceful_shutdown_timeout_s": 90}}
    )
    result = serve_config(config)
    (app,) = result["applications"]
    (deployment,) = app["deployments"]
    assert result["proxy_location"] == "EveryNode"
    assert result["http_options"] == {"host": "0.0.0.0", "port": 8000}
    assert app["import_path"] == IMPORT_PATH == "deployments.app:build_app"
    assert app["args"] == {"config": CONTAINER_CONFIG_PATH}
    assert deployment == {"name": ingress_deployment_name(), **deployment_options(config)}
    assert deployment["max_ongoing_requests"] == 800
    assert deployment["graceful_shutdown_timeout_s"] == 90


def test_autoscaling_replaces_num_replicas():
    config = ServiceConfig.model_validate({"serve": {"autoscaling": {"max_replicas": 6}}})
    (deployment,) = serve_config(config)["applications"][0]["deployments"]
    assert "num_replicas" not in deployment
    assert deployment["autoscaling_config"]["max_replicas"] == 6


def test_a_request_timeout_is_passed_only_when_configured():
    config = ServiceConfig.model_validate({"serve": {"request_timeout_s": 30}})
    assert serve_config(config)["http_options"]["request_timeout_s"] == 30


def test_keys_serve_would_ignore_are_refused():
    good = serve_config(ServiceConfig())
    good["applications"][0]["deployments"][0]["max_ongoing_request"] = 5
    good["applications"][0]["deployments"][0]["ray_actor_options"]["num_cpu"] = 1
    with pytest.raises(ConfigurationError) as error:
        check_serve_config(good)
    assert "serveConfigV2.applications[0].deployments[0].max_ongoing_request" in str(error.value)
    assert "deployments[0].ray_actor_options.num_cpu" in str(error.value)


def test_rays_schema_errors_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="invalid Serve config"):
        check_serve_config({"applications": [{"import_path": "no-colon-or-dot"}]})
