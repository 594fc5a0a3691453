"""Running the ``s2s`` command as a user runs it (shared by the CLI tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from s2s.cli.emulate import PROVIDER_EMULATORS, emulator_cli

from .conftest import SECOND

S2S = [sys.executable, "-m", "s2s.cli"]

#: Every variable that would point the demo at a real provider instead of its emulator.
KEY_VARIABLES = frozenset(
    var for name in PROVIDER_EMULATORS.values() for var in emulator_cli(name).KEY_VARIABLES
)


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``s2s ARGS`` to completion, without any provider key in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return subprocess.run(
        [*S2S, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout * SECOND,
        check=False,
    )


@contextlib.asynccontextmanager
async def emulator_process(*args: str, lines: int) -> AsyncIterator[list[str]]:
    """Run ``s2s emulate ARGS`` and yield the first ``lines`` lines it prints; then Ctrl-C it,
    which must end it with status 0."""
    proc = await asyncio.create_subprocess_exec(
        *S2S,
        "emulate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        yield [
            (await asyncio.wait_for(proc.stdout.readline(), 20 * SECOND)).decode()
            for _ in range(lines)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10 * SECOND) == 0


def assert_demo_call(out: subprocess.CompletedProcess, output_dir: Path) -> None:
    """``s2s demo`` succeeded: it printed the tool round trip and the answer, wrote both WAVs."""
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tool_call         lookup_order" in out.stdout
    assert re.search(r"transcript\s+\[assistant\] I heard \d\.\d seconds of speech", out.stdout)
    assert "The lookup_order tool returned" in out.stdout
    with wave.open(str(output_dir / "reply.wav")) as reply:
        assert reply.getframerate() == 16000 and reply.getnframes() > 16000 * 2
    assert (output_dir / "caller.wav").exists()
