"""The README's main command, run as a user runs it: the whole stack and a demo call."""

from __future__ import annotations

import os
import re
import subprocess
import time
import wave

import psutil
import pytest

from ..cli import S2S
from ..conftest import SECOND
from .stack import free_port

pytestmark = pytest.mark.slow


def test_s2s_up_runs_the_stack_and_a_demo_call_then_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "GOOGLE", "GEMINI"))}
    env["S2S_SERVE__PORT"] = str(free_port())
    result = subprocess.run(
        [*S2S, "up", "--output-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300 * SECOND,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "redis: embedded redis-server" in out
    assert "using the local emulator" in out
    assert "tools: 1 worker process(es)" in out
    assert "session_started" in out and "tool_result       lookup_order" in out
    assert "The lookup_order tool returned" in out
    assert "session closed" in out
    # a newcomer can open the console, signed in, on the demo call as it happens
    assert re.search(r"console: http://127\.0\.0\.1:\d+/console/#key=\S+", out), out[:2000]
    assert re.search(r"watch it live: http://\S+/console/call#id=[0-9a-f]+&key=\S+", out)
    with wave.open(str(tmp_path / "out" / "reply.wav")) as reply:
        assert reply.getframerate() == 16000 and reply.getnframes() > 16000
    time.sleep(2)
    leftovers = []  # every process the stack started ran in tmp_path; none may remain
    for process in psutil.process_iter(["cwd", "cmdline"]):
        if process.info["cwd"] == str(tmp_path):
            leftovers.append(" ".join(process.info["cmdline"] or [])[:80])
    assert leftovers == []
