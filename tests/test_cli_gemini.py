"""``s2s demo --provider gemini_live`` and ``s2s emulate gemini``, run as a user would run them."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import wave

import pytest
import websockets

from .conftest import SECOND
from .test_cli import S2S, run


def test_emulate_gemini_has_help():
    out = run("emulate", "gemini", "--help")
    assert out.returncode == 0 and "--certfile" in out.stdout and "--keyfile" in out.stdout


def test_demo_runs_a_call_against_the_gemini_emulator(tmp_path):
    out = run("demo", "--provider", "gemini_live", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "no GOOGLE_API_KEY / GEMINI_API_KEY set: using the local emulator at https://" in out.stdout
    )
    assert "tool_call         lookup_order" in out.stdout
    assert re.search(r"transcript\s+\[assistant\] I heard \d\.\d seconds of speech", out.stdout)
    assert "The lookup_order tool returned" in out.stdout
    with wave.open(str(tmp_path / "reply.wav")) as reply:
        assert reply.getframerate() == 16000 and reply.getnframes() > 16000 * 2


async def test_emulate_gemini_serves_tls_and_prints_its_ca_file():
    proc = await asyncio.create_subprocess_exec(
        *S2S,
        "emulate",
        "gemini",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), 20 * SECOND)).decode() for _ in range(3)
        ]
        base = re.search(r"(https://\S+)", lines[0]).group(1)
        endpoint = re.search(r"endpoint: (wss://\S+)", lines[1]).group(1)
        ca_file = re.search(r"CA file \(trust it in clients[^)]*\): (\S+)", lines[2]).group(1)
        assert endpoint.startswith(base.replace("https://", "wss://"))
        context = ssl.create_default_context(cafile=ca_file)
        async with websockets.connect(
            endpoint, additional_headers={"x-goog-api-key": "cli-key"}, ssl=context
        ) as ws:
            await ws.send(json.dumps({"setup": {"model": "models/gemini-3.8-live"}}))
            assert "setupComplete" in json.loads(await ws.recv())
    finally:
        proc.send_signal(2)
        assert await asyncio.wait_for(proc.wait(), 10 * SECOND) == 0


@pytest.mark.parametrize("args", [("--certfile", "c.pem"), ("--keyfile", "k.pem")])
def test_emulate_gemini_wants_both_certificate_files(args):
    out = run("emulate", "gemini", *args)
    assert out.returncode != 0 and "both --certfile and --keyfile" in out.stderr
