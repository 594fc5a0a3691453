"""``s2s demo --provider nova`` and ``s2s emulate nova``, run as a user would run them."""

from __future__ import annotations

import re

import s2s
from s2s.emulators.nova import DEFAULT_CREDENTIALS

from .cli import assert_demo_call, emulator_process, run
from .helpers import collect, turn_end


def test_emulate_nova_has_help():
    out = run("emulate", "nova", "--help")
    assert out.returncode == 0 and "--certfile" in out.stdout and "--access-key-id" in out.stdout


def test_providers_lists_nova():
    assert "nova" in s2s.list_providers()


def test_demo_runs_a_call_against_the_nova_emulator(tmp_path):
    out = run("demo", "--provider", "nova", "--output-dir", str(tmp_path), cwd=tmp_path, timeout=90)
    assert_demo_call(out, tmp_path)
    assert "using the local emulator at https://localhost:" in out.stdout


async def test_emulate_nova_serves_until_interrupted():
    async with emulator_process("nova", "--port", "0", lines=3) as lines:
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
