"""Pod hardening and the app Redis's ACL users, in every rendered overlay.

* Every pod (Ray head and workers, tool workers, both Redis) runs as a non-root user with
  RuntimeDefault seccomp, and every container (init containers and KubeRay's autoscaler
  sidecar too) without capabilities or privilege escalation, on a read-only root filesystem.
* The app Redis runs with the ACL file its init container builds from the generated rules and
  the roles' Secrets: the script is run here, offline, and must give what
  :func:`s2s.service.redis_acl.render_acl` gives (which tests/service/test_redis_acl.py loads
  into a real Redis).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from s2s.service import redis_acl

from .render import K8S, OVERLAYS, build, one

IMAGE_USERS = {"s2s": 1000, "redis": 999}  # the Dockerfile's `ray`, the official image's `redis`


@pytest.fixture(params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(K8S / "overlays" / str(request.param))


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod template, by a readable name."""
    specs = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    }
    for doc in docs:
        if doc["kind"] == "RayService":
            spec = doc["spec"]["rayClusterConfig"]
            specs["RayService/head"] = spec["headGroupSpec"]["template"]["spec"]
            for group in spec["workerGroupSpecs"]:
                specs[f"RayService/{group['groupName']}"] = group["template"]["spec"]
    return specs


def _image_user(image: str) -> int:
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return IMAGE_USERS[name]


def check_container(where: str, container: dict[str, Any], pod: dict[str, Any]) -> None:
    context = container.get("securityContext") or {}
    assert context.get("allowPrivilegeEscalation") is False, where
    assert context.get("capabilities", {}).get("drop") == ["ALL"], where
    assert not context.get("capabilities", {}).get("add"), where
    assert not context.get("privileged"), where
    assert context.get("readOnlyRootFilesystem") is True, where
    # The pod's settings hold unless the container overrides them.
    assert context.get("runAsNonRoot", pod["runAsNonRoot"]) is True, where
    assert context.get("runAsUser", pod["runAsUser"]) > 0, where
    seccomp = context.get("seccompProfile", pod["seccompProfile"])
    assert seccomp == {"type": "RuntimeDefault"}, where


def test_every_pod_and_container_is_locked_down(docs: list[dict[str, Any]]) -> None:
    specs = pod_specs(docs)
    assert {"RayService/head", "RayService/sessions", "StatefulSet/s2s-redis"} <= set(specs)
    for name, spec in specs.items():
        pod = spec.get("securityContext") or {}
        assert pod.get("runAsNonRoot") is True, name
        assert isinstance(pod.get("runAsUser"), int), name
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            where = f"{name}: {container['name']}"
            check_container(where, container, pod)
            assert pod["runAsUser"] == _image_user(container["image"]), where


def test_the_autoscaler_sidecar_is_locked_down_too(docs: list[dict[str, Any]]) -> None:
    spec = one(docs, "RayService")["spec"]["rayClusterConfig"]
    options = spec["autoscalerOptions"]
    head = spec["headGroupSpec"]["template"]["spec"]
    # KubeRay copies autoscalerOptions.securityContext onto the sidecar it adds to the head pod.
    sidecar = {"securityContext": options["securityContext"]}
    check_container("autoscaler", sidecar, head["securityContext"])
    volumes = {v["name"] for v in head["volumes"]}
    assert {m["name"] for m in options.get("volumeMounts", [])} <= volumes


def test_read_only_containers_get_writable_scratch_where_they_write(
    docs: list[dict[str, Any]],
) -> None:
    specs = pod_specs(docs)
    writable = {
        # Ray: sessions, logs, sockets under /tmp/ray; tool workers: Python's temp files.
        "RayService/head": "/tmp",
        "RayService/sessions": "/tmp",
        "StatefulSet/s2s-redis": "/data",
        "StatefulSet/s2s-redis-gcs": "/data",
    }
    writable |= {name: "/tmp" for name in specs if name.startswith("Deployment/")}
    for name, path in writable.items():
        spec = specs[name]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        kind, _, short = name.partition("/")
        claims = set()
        if kind == "StatefulSet":
            templates = one(docs, kind, short)["spec"]["volumeClaimTemplates"]
            claims = {t["metadata"]["name"] for t in templates}
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == path]
        assert not mount.get("readOnly"), name
        assert mount["name"] in claims or "emptyDir" in volumes[mount["name"]], name


def test_tool_workers_and_redis_get_no_kubernetes_api_token(docs: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(docs).items():
        if not name.startswith("RayService/"):  # KubeRay's autoscaler uses the head's
            assert spec.get("automountServiceAccountToken") is False, name


# -- the app Redis's ACL users -------------------------------------------------------------------


def redis_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "StatefulSet", "s2s-redis")["spec"]["template"]["spec"]
    return spec


def test_redis_runs_with_the_acl_file_and_no_shared_password(docs: list[dict[str, Any]]) -> None:
    spec = redis_pod(docs)
    (redis,) = spec["containers"]
    (init,) = spec["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    args = redis["args"]
    assert args[args.index("--aclfile") + 1] == f"{env['ACL_DIR']}/users.acl"
    assert "--requirepass" not in args and "env" not in redis  # the default user is off
    config = one(docs, "ConfigMap", "s2s-redis-config")["data"]["redis.conf"]
    directives = {
        line.split()[0] for line in config.splitlines() if line.strip() and line[0] != "#"
    }
    assert not {"requirepass", "user", "aclfile"} & directives  # users: the ACL file only
    mounts = {m["name"]: m["mountPath"] for m in redis["volumeMounts"]}
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert mounts["acl"] == init_mounts["acl"] == env["ACL_DIR"]
    assert init_mounts["acl-passwords"] == env["ACL_CREDENTIALS"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["acl"]["emptyDir"]["medium"] == "Memory"
    rules = one(docs, "ConfigMap", volumes["acl-rules"]["configMap"]["name"])
    (filename,) = rules["data"]
    assert f"{init_mounts['acl-rules']}/{filename}" == env["ACL_RULES"]
    assert rules["data"][filename] == (K8S / "base" / "generated" / filename).read_text()
    assert rules["data"][filename].endswith(redis_acl.rules_file())


def test_each_role_with_a_secret_gets_its_password_projected(docs: list[dict[str, Any]]) -> None:
    volumes = {v["name"]: v for v in redis_pod(docs)["volumes"]}
    sources = [s["secret"] for s in volumes["acl-passwords"]["projected"]["sources"]]
    expected = [r for r in redis_acl.ROLES if r.secret]
    assert [s["name"] for s in sources] == [r.secret for r in expected]
    for source, role in zip(sources, expected, strict=True):
        assert source["items"] == [{"key": "password", "path": role.name}]
        assert source.get("optional", False) is role.secret_optional
    # Readable by the redis user's group (fsGroup), by nobody else.
    assert volumes["acl-passwords"]["projected"]["defaultMode"] == 0o440


def test_the_probes_authenticate_as_the_probe_user(docs: list[dict[str, Any]]) -> None:
    (redis,) = redis_pod(docs)["containers"]
    for probe in (redis["readinessProbe"], redis["livenessProbe"]):
        command = " ".join(probe["exec"]["command"])
        assert "--user probe ping" in command
        assert "/run/redis-acl/probe.password" in command
        assert "grep -q PONG" in command  # an error reply fails the probe
    assert redis_acl.role("probe").secret is None  # its password is made by the init container


def run_acl_script(
    docs: list[dict[str, Any]], tmp_path: Path, passwords: dict[str, bytes]
) -> tuple[str, Path]:
    """Run the init container's script as the pod would, on this machine."""
    if not all(shutil.which(tool) for tool in ("sh", "sha256sum", "od", "head", "cut", "tr")):
        pytest.skip("the init container's shell tools are not on PATH")
    spec = redis_pod(docs)
    (init,) = spec["initContainers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    rules = one(docs, "ConfigMap", volumes["acl-rules"]["configMap"]["name"])["data"]
    (text,) = rules.values()
    (tmp_path / "rules").write_text(text)
    credentials, out = tmp_path / "credentials", tmp_path / "out"
    credentials.mkdir()
    out.mkdir()
    for name, password in passwords.items():
        (credentials / name).write_bytes(password)
    env = {
        "PATH": os.environ["PATH"],
        "ACL_RULES": str(tmp_path / "rules"),
        "ACL_CREDENTIALS": str(credentials),
        "ACL_DIR": str(out),
    }
    subprocess.run([*init["command"], *init["args"]], env=env, check=True, timeout=30)
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".new")) == []
    return (out / "users.acl").read_text(), out


def test_the_init_container_writes_what_render_acl_writes(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Passwords as Secrets hold them, byte for byte (the app gets the same bytes in its
    # environment): no trimming.
    passwords = {"service": b"s3rvice pw", "tools": "t\u00f6ols\n".encode(), "keda": b"k"}
    acl, out = run_acl_script(docs, tmp_path, passwords)
    probe = (out / "probe.password").read_text()
    assert len(probe) == 64 and int(probe, 16) >= 0  # 32 random bytes, in hex
    expected = redis_acl.render_acl(
        {**{name: value.decode() for name, value in passwords.items()}, "probe": probe}
    )
    assert acl == expected
    assert "s3rvice" not in acl  # hashes only
    assert oct((out / "users.acl").stat().st_mode & 0o777) == oct(0o600)


def test_a_role_whose_secret_is_absent_gets_a_password_nobody_knows(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    acl, out = run_acl_script(docs, tmp_path, {"service": b"a", "tools": b"b"})
    keda = (out / "keda.password").read_text()
    line = next(line for line in acl.splitlines() if line.startswith("user keda "))
    assert line == redis_acl.acl_line(redis_acl.role("keda"), keda)
    assert acl.splitlines()[0] == redis_acl.acl_line(redis_acl.DEFAULT_USER)
    assert " off " in acl.splitlines()[0]
