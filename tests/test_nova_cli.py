"""``s2s demo --provider nova`` and ``s2s emulate nova``, run as a user would run them."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import wave

import s2s
from s2s.emulators.nova import DEFAULT_CREDENTIALS

from .conftest import SECOND
from .helpers import collect, turn_end

S2S = [sys.executable, "-m", "s2s.cli"]


def test_emulate_nova_has_help():
    out = subprocess.run(
        [*S2S, "emulate", "nova", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and "--certfile" in out.stdout and "--access-key-id" in out.stdout


def test_providers_lists_nova():
    assert "nova" in s2s.list_providers()


def test_demo_runs_a_call_against_the_nova_emulator(tmp_path):
    out = subprocess.run(
        [*S2S, "demo", "--provider", "nova", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=90 * SECOND,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "using the local emulator at https://localhost:" in out.stdout
    assert "tool_call         lookup_order" in out.stdout
    assert re.search(r"transcript\s+\[assistant\] I heard \d\.\d seconds of speech", out.stdout)
    assert "The lookup_order tool returned" in out.stdout
    with wave.open(str(tmp_path / "reply.wav")) as reply:
        assert reply.getframerate() == 16000 and reply.getnframes() > 16000 * 2


async def test_emulate_nova_serves_until_interrupted():
    proc = await asyncio.create_subprocess_exec(
        *S2S,
        "emulate",
        "nova",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), 20 * SECOND)).decode() for _ in range(3)
        ]
        url = re.search(r"(https://localhost:\d+)", lines[0]).group(1)
        ca_file = re.search(r"CA file \(trust it in clients[^)]*\): (\S+)", lines[1]).group(1)
        assert DEFAULT_CREDENTIALS.access_key_id in lines[2]
        extra = {
            "base_url": url,
            "ca_file": ca_file,
            "aws_access_key_id": DEFAULT_CREDENTIALS.access_key_id,
            "aws_secret_access_key": DEFAULT_CREDENTIALS.secret_access_key,
        }
        async with await s2s.new("nova", s2s.Config(extra=extra)).start() as session:
            await session.send_text("hello emulator")
            events = await collect(session, turn_end())
        assert any(e.text == 'You said: "hello emulator".' for e in events)
    finally:
        proc.send_signal(2)
        assert await asyncio.wait_for(proc.wait(), 10 * SECOND) == 0
