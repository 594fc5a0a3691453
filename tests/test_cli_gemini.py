"""``s2s demo --provider gemini_live`` and ``s2s emulate gemini``, run as a user would run them."""

from __future__ import annotations

import json
import re
import ssl

import pytest
import websockets

from .cli import assert_demo_call, emulator_process, run


def test_emulate_gemini_has_help():
    out = run("emulate", "gemini", "--help")
    assert out.returncode == 0 and "--certfile" in out.stdout and "--keyfile" in out.stdout


def test_demo_runs_a_call_against_the_gemini_emulator(tmp_path):
    out = run("demo", "--provider", "gemini_live", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert_demo_call(out, tmp_path)
    assert (
        "no GOOGLE_API_KEY / GEMINI_API_KEY set: using the local emulator at https://" in out.stdout
    )


async def test_emulate_gemini_serves_tls_and_prints_its_ca_file():
    async with emulator_process("gemini", "--port", "0", "--api-key", "cli-key", lines=3) as lines:
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


@pytest.mark.parametrize("args", [("--certfile", "c.pem"), ("--keyfile", "k.pem")])
def test_emulate_gemini_wants_both_certificate_files(args):
    out = run("emulate", "gemini", *args)
    assert out.returncode != 0 and "both --certfile and --keyfile" in out.stderr
