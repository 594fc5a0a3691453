"""The whole service on one machine: what ``s2s up`` and ``s2s serve`` run.

:class:`LocalStack` starts, in order: an embedded Redis (if ``redis.url`` is ``embedded``), the
local emulator of every provider that has no key in the environment (if
``providers.<name>.emulate_without_key``), a local Ray with the session-slot resource, the Serve
application, and one supervised ``s2s tool-worker`` process per pool (restarted if it dies). It
stops everything, in reverse, on :meth:`LocalStack.stop` (also on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from s2s.cli.emulate import PROVIDER_EMULATORS, emulator_cli
from s2s.log import logger
from s2s.service.config import ServiceConfig
from s2s.service.redis_server import EmbeddedRedis

from .tenancy import hash_key

__all__ = ["LocalStack", "StackInfo"]

log = logger.getChild("stack")


@dataclass(slots=True)
class StackInfo:
    base_url: str
    api_key: str
    redis_url: str
    config: ServiceConfig
    emulated: dict[str, dict[str, Any]] = field(default_factory=dict)
    admin_key: str = ""
    """Reaches /metrics and /openapi.json and sees every tenant's sessions."""

    @property
    def ws_base(self) -> str:
        return "ws" + self.base_url[4:]

    def console_url(self, session_id: str | None = None) -> str:
        """The supervisor console signed in with the tenant key (``#key=``: a URL fragment, never
        sent to a server); with ``session_id``, that call's page."""
        page = f"call#id={session_id}&" if session_id else "#"
        return f"{self.base_url}/console/{page}key={self.api_key}"


class _EmulatorThread:
    """Runs emulators on their own event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="s2s-emulators", daemon=True
        )
        self._exits: list[Callable[[], Any]] = []

    def start(self) -> None:
        self._thread.start()

    def enter(self, manager: contextlib.AbstractAsyncContextManager[Any]) -> Any:
        value = asyncio.run_coroutine_threadsafe(manager.__aenter__(), self.loop).result(30)
        self._exits.append(lambda: manager.__aexit__(None, None, None))
        return value

    def stop(self) -> None:
        for exit_ in reversed(self._exits):
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(exit_(), self.loop).result(10)
        self._exits.clear()
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class LocalStack:
    """Start and stop the service locally (synchronous; call from a thread if in an event loop)."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        config_path: str | None = None,
        workers_per_pool: int = 1,
        verbose: bool = False,
        emulator_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.workers_per_pool = workers_per_pool
        self.verbose = verbose
        self.emulator_options = emulator_options or {}
        self.info: StackInfo | None = None
        self._redis: EmbeddedRedis | None = None
        self._emulators: _EmulatorThread | None = None
        self._workers: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ray_started = False
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._haproxy_dir: str | None = None

    # -- start --------------------------------------------------------------------------------

    @property
    def redis_server(self) -> EmbeddedRedis | None:
        """The embedded redis-server (``redis.url: embedded``), or None."""
        return self._redis

    def start(self) -> StackInfo:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackInfo:
        config = self.config
        redis_url = config.redis.url
        if redis_url == "embedded":
            # An append-only file: a redis-server restart keeps the calls' state and logs.
            self._redis = EmbeddedRedis(appendonly=True)
            redis_url = self._redis.start()
            print(f"redis: embedded redis-server at {redis_url}", flush=True)
        providers = {name: p.model_dump() for name, p in config.providers.items()}
        emulated: dict[str, dict[str, Any]] = {}
        for name, settings in config.providers.items():
            if any(os.environ.get(var) for var in settings.api_key_env):
                continue
            if not settings.emulate_without_key or name not in PROVIDER_EMULATORS:
                continue
            if self._emulators is None:
                self._emulators = _EmulatorThread()
                self._emulators.start()
            cli = emulator_cli(PROVIDER_EMULATORS[name])
            extra = self._emulators.enter(cli.local_settings(**self.emulator_options))
            emulated[name] = extra
            providers[name]["extra"] = {**settings.extra, **extra}
            where = extra.get("base_url") or extra.get("endpoint") or "loopback"
            print(
                f"{name}: no key in {'/'.join(settings.api_key_env)}; using the local "
                f"emulator at {where}",
                flush=True,
            )
        api_key = next(iter(config.auth.keys()), "") or f"s2s-local-{secrets.token_urlsafe(12)}"
        admin_key = next(iter(config.auth.admin_keys()), "") or (
            f"s2s-admin-{secrets.token_urlsafe(12)}"
        )
        auth = config.auth.model_dump()
        auth["api_keys"] = sorted({*config.auth.api_keys, api_key})
        auth["admin_key_hashes"] = sorted({*config.auth.admin_key_hashes, hash_key(admin_key)})
        self.config = config = config.with_overrides(
            redis={**config.redis.model_dump(), "url": redis_url}, providers=providers, auth=auth
        )
        base_url = self._start_ray_and_serve(config)
        self._start_workers(redis_url)
        self.info = StackInfo(base_url, api_key, redis_url, config, emulated, admin_key)
        return self.info

    def _start_ray_and_serve(self, config: ServiceConfig) -> str:
        import ray
        from ray import serve

        from . import haproxy, transport_limits
        from .app import build_app

        ingress = config.serve.ingress
        environment = transport_limits.environment(
            config.serve.max_frame_bytes, config.serve.max_control_bytes
        )
        if ingress == "direct":
            environment["RAY_SERVE_ENABLE_DIRECT_INGRESS"] = "1"
        elif ingress == "haproxy":
            self._haproxy_dir = haproxy.make_run_dir()
            environment |= haproxy.environment(self._haproxy_dir, bind_host=config.serve.host)
        # Ray's processes (the proxies, HAProxy, the replicas) take these from this environment;
        # they are put back as they were on stop, so the next stack in this process starts clean.
        self._set_environment(environment)
        ray.init(
            address="local",
            namespace="s2s",
            include_dashboard=False,
            resources={config.sessions.resource: config.sessions.slots_per_node},
            log_to_driver=self.verbose,
            logging_level=logging.INFO if self.verbose else logging.WARNING,
        )
        self._ray_started = True
        http_options: dict[str, Any] = {"host": config.serve.host, "port": config.serve.port}
        if config.serve.request_timeout_s is not None:
            http_options["request_timeout_s"] = config.serve.request_timeout_s
        # With direct ingress the replicas serve HTTP themselves; a proxy would only cost CPU.
        # One machine has one port: nodes joined to this Ray (the fault suite's) get no proxy
        # (or HAProxy); the head's reaches replicas on every node.
        proxy = "Disabled" if ingress == "direct" else "HeadOnly"
        serve.start(http_options=http_options, proxy_location=proxy)
        serve.run(build_app(config=config), name="s2s", route_prefix="/", blocking=False)
        base = f"http://{config.serve.host}:{config.serve.port}"
        if ingress == "direct":
            base = self._direct_ingress_url(config.serve.host)
        self._wait_healthy(base)
        mode = {"direct": "direct ingress", "proxy": "Serve proxy", "haproxy": "HAProxy"}
        print(f"serve: ingress at {base} ({mode[ingress]})", flush=True)
        return base

    def _set_environment(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()

    @staticmethod
    def _direct_ingress_url(host: str, timeout: float = 60.0) -> str:
        """Direct ingress gives each replica its own port from 30000; find the first one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for port in range(30000, 30016):
                url = f"http://{host}:{port}"
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(url + "/healthz", timeout=0.5).close()
                    return url
            time.sleep(0.25)
        raise RuntimeError("no direct-ingress replica answered on ports 30000-30015")

    @staticmethod
    def _wait_healthy(base: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/healthz", timeout=1) as reply,
            ):
                if reply.status == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"the ingress at {base} did not become healthy")

    def _worker_command(self, pool: str, redis_url: str) -> list[str]:
        command = [sys.executable, "-m", "s2s.cli", "tool-worker", "--pool", pool]
        return [*command, "--redis-url", redis_url, "--config", self._effective_config()]

    def _effective_config(self) -> str:
        """The stack's resolved configuration as a private file (what the workers load)."""
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="s2s-stack-")
            path = os.path.join(self._workdir.name, "config.yaml")
            with open(path, "w") as handle:
                yaml.safe_dump(self.config.model_dump(mode="json"), handle)
            os.chmod(path, 0o600)
        return os.path.join(self._workdir.name, "config.yaml")

    def _start_workers(self, redis_url: str) -> None:
        for pool in self.config.tool_pools:
            for index in range(self.workers_per_pool):
                self._spawn_worker(pool, index, redis_url)
        print(
            f"tools: {len(self._workers)} worker process(es) for pool(s) "
            f"{', '.join(self.config.tool_pools)}",
            flush=True,
        )
        self._supervisor = threading.Thread(
            target=self._supervise, args=(redis_url,), name="s2s-worker-supervisor", daemon=True
        )
        self._supervisor.start()

    def _spawn_worker(self, pool: str, index: int, redis_url: str) -> None:
        env = dict(os.environ)
        self._workers[(pool, index)] = subprocess.Popen(
            self._worker_command(pool, redis_url),
            env=env,
            stdout=None if self.verbose else subprocess.DEVNULL,
            stderr=None if self.verbose else subprocess.DEVNULL,
        )

    def _supervise(self, redis_url: str) -> None:
        while not self._stopping.wait(0.5):
            for (pool, index), process in list(self._workers.items()):
                if process.poll() is not None and not self._stopping.is_set():
                    log.warning(
                        "tool worker %s/%d exited (%s); starting a replacement",
                        pool,
                        index,
                        process.returncode,
                    )
                    self._spawn_worker(pool, index, redis_url)

    def worker_pids(self) -> dict[tuple[str, int], int]:
        return {key: process.pid for key, process in self._workers.items()}

    # -- stop ---------------------------------------------------------------------------------

    def stop(self, *, graceful: bool = True) -> None:
        """Stop everything :meth:`start` started, in reverse. ``graceful=False`` skips closing
        the calls and draining Serve's replicas (Ray's shutdown ends their processes anyway):
        for tests, where nobody is on the calls, it saves a few seconds per stack."""
        self._stopping.set()
        for process in self._workers.values():
            if process.poll() is None:
                process.terminate()
        for process in self._workers.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._workers.clear()
        if self._ray_started:
            import ray
            from ray import serve

            if graceful:
                with contextlib.suppress(Exception):
                    _close_sessions(self.config)
                with contextlib.suppress(Exception):
                    serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()
            self._ray_started = False
        self._restore_environment()
        if self._haproxy_dir is not None:
            from .haproxy import kill_leftovers

            if kill_leftovers(self._haproxy_dir):
                log.warning("HAProxy outlived Ray; stopped it")
            shutil.rmtree(self._haproxy_dir, ignore_errors=True)
            self._haproxy_dir = None
        if self._emulators is not None:
            self._emulators.stop()
            self._emulators = None
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close_sessions(config: ServiceConfig) -> None:
    """Close every live session actor (they are detached: nothing else would stop them)."""
    import ray

    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == config.sessions.namespace
    ]
    refs: list[Any] = []
    for name in names:
        with contextlib.suppress(Exception):
            refs.append(
                ray.get_actor(name, namespace=config.sessions.namespace).close.remote(
                    "service_shutdown"
                )
            )
    with contextlib.suppress(Exception):
        ray.get(refs, timeout=10)


@contextlib.asynccontextmanager
async def local_stack(config: ServiceConfig, **options: Any) -> AsyncIterator[StackInfo]:
    """``async with local_stack(config) as info:`` (starts and stops in a worker thread)."""
    stack = LocalStack(config, **options)
    info = await asyncio.to_thread(stack.start)
    try:
        yield info
    finally:
        await asyncio.to_thread(stack.stop)
