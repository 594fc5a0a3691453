"""The ``s2s`` command line, run as a user would run it."""

from __future__ import annotations

import json
import re

import pytest
import websockets

from .cli import assert_demo_call, emulator_process, run


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
    assert_demo_call(out, tmp_path)
    assert "using the local emulator" in out.stdout


async def test_emulate_serves_until_interrupted():
    async with emulator_process("openai", "--port", "0", "--api-key", "sk-cli", lines=1) as lines:
        url = re.search(r"(ws://\S+)", lines[0]).group(1)
        async with websockets.connect(
            url + "?model=gpt-realtime", additional_headers={"Authorization": "Bearer sk-cli"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
