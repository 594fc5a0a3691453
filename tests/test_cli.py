"""The ``s2s`` command line, run as a user would run it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest
import websockets

from .conftest import SECOND

S2S = [sys.executable, "-m", "s2s.cli"]


def run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [*S2S, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout * SECOND,
        check=False,
    )


def test_help_lists_the_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("demo", "emulate", "providers"):
        assert command in out.stdout


@pytest.mark.parametrize("args", [("demo",), ("emulate",), ("emulate", "openai"), ("providers",)])
def test_every_subcommand_has_help(args):
    out = run(*args, "--help")
    assert out.returncode == 0 and "usage: s2s" in out.stdout


def test_providers_lists_the_builtins():
    assert "openai_realtime" in run("providers").stdout.split()


def test_demo_runs_a_call_against_the_emulator(tmp_path):
    out = run("demo", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "using the local emulator" in out.stdout
    assert "tool_call         lookup_order" in out.stdout
    assert re.search(r"transcript\s+\[assistant\] I heard \d\.\d seconds of speech", out.stdout)
    assert "The lookup_order tool returned" in out.stdout
    with wave.open(str(tmp_path / "reply.wav")) as reply:
        assert reply.getframerate() == 16000 and reply.getnframes() > 16000 * 2
    assert (tmp_path / "caller.wav").exists()


async def test_emulate_serves_until_interrupted():
    proc = await asyncio.create_subprocess_exec(
        *S2S,
        "emulate",
        "openai",
        "--port",
        "0",
        "--api-key",
        "sk-cli",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20 * SECOND)).decode()
        url = re.search(r"(ws://\S+)", line).group(1)
        async with websockets.connect(
            url + "?model=gpt-realtime", additional_headers={"Authorization": "Bearer sk-cli"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
    finally:
        proc.send_signal(2)
        assert await asyncio.wait_for(proc.wait(), 10 * SECOND) == 0
