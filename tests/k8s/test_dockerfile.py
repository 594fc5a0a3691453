"""The image definition (no Docker engine here: checked as text against the project)."""

from __future__ import annotations

import re
import tomllib

from deployments.serve_config import CONTAINER_CONFIG_PATH

from .render import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in DOCKERFILE.replace("\\\n", " ").splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(name: str) -> list[str]:
    return [line[len(name) + 1 :] for line in INSTRUCTIONS if line.startswith(name + " ")]


def test_the_base_is_rays_image_of_the_pinned_ray_and_python():
    (base,) = instructions("FROM")
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)", base)
    assert match, base
    pinned = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert pinned and match.group(1) == pinned.group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={match.group(2)}.{match.group(3)}"


def test_the_project_and_its_ray_layer_are_installed_pinned():
    copied = " ".join(instructions("COPY"))
    for path in ("src", "actors", "deployments", "pyproject.toml", "constraints.txt"):
        assert re.search(rf"(^|\s){re.escape(path)}(\s|$)", copied), path
    (install,) = [run for run in instructions("RUN") if "pip install" in run]
    assert '-c constraints.txt ".[all]"' in install
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert {"actors", "deployments"} <= set(wheel["targets"]["wheel"]["packages"])


def test_the_image_reads_the_config_where_the_configmap_is_mounted():
    assert f"S2S_CONFIG={CONTAINER_CONFIG_PATH}" in " ".join(instructions("ENV"))
    assert instructions("USER") == ["ray"]


def test_the_build_context_keeps_what_the_image_copies():
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()
    }
    assert not {"src", "actors", "deployments", "config.yaml", "README.md"} & ignored
