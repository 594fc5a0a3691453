"""Helpers for the phone tests: steering a call's session over REST, reading its record."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx

from s2s.audio.g711 import pcm16_to_ulaw
from s2s.audio.synth import speech_like

from ..conftest import SECOND
from .stack import ACME_KEY, EmulatorThread

HEADERS = {"Authorization": f"Bearer {ACME_KEY}"}


def headers(key: str | None) -> dict[str, str]:
    return HEADERS if key is None else {"Authorization": f"Bearer {key}"}


def caller_speech(seconds: float, seed: int = 0) -> bytes:
    """Speech-like μ-law at 8 kHz, as a phone network carries it."""
    return pcm16_to_ulaw(speech_like(seconds, 8000, seed=seed))


async def say_text(base: str, session_id: str, text: str, key: str | None = None) -> None:
    """A backend steering the call: text the model answers (``call <tool> {...}`` calls one)."""
    async with httpx.AsyncClient(headers=headers(key)) as http:
        reply = await http.post(f"{base}/v1/sessions/{session_id}/text", json={"text": text})
        assert reply.status_code == 202, reply.text


async def session(base: str, session_id: str, key: str | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=headers(key)) as http:
        reply = await http.get(f"{base}/v1/sessions/{session_id}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


async def closed_session(
    base: str, session_id: str, within: float = 15.0, key: str | None = None
) -> dict[str, Any]:
    """The session's record once it has ended."""
    async with asyncio.timeout(within * SECOND):
        while True:
            record = await session(base, session_id, key)
            if record.get("status") in ("closed", "failed"):
                return record
            await asyncio.sleep(0.1)


async def events(base: str, session_id: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every event of the session so far (from the replay log, without audio)."""
    found: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(headers=headers(key), timeout=10) as http,
        http.stream(
            "GET", f"{base}/v1/sessions/{session_id}/events", params={"audio": "false"}
        ) as reply,
    ):
        async for line in reply.aiter_lines():
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if found[-1].get("type") == "session_closed":
                    break
    return found


def provider_frames(emulator: EmulatorThread, marker: str) -> list[dict[str, Any]]:
    """Everything the provider received on the connection(s) that got ``marker`` (a text only
    one test sends), in order."""
    found: list[dict[str, Any]] = []
    for connection in list(emulator.emulator.sessions):
        texts = [f for f in list(connection.frames_in) if isinstance(f, str)]
        if any(marker in text for text in texts):
            found += [json.loads(text) for text in texts]
    return found


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == kind]


def audio_formats(frames: list[dict[str, Any]]) -> set[tuple[Any, Any]]:
    """The (input, output) audio formats the provider was configured with."""
    found = set()
    for update in of_type(frames, "session.update"):
        audio = (update.get("session") or {}).get("audio") or {}
        formats = (
            (audio.get("input") or {}).get("format"),
            (audio.get("output") or {}).get("format"),
        )
        found.add(tuple(json.dumps(f, sort_keys=True) if f else None for f in formats))
    return found


async def run_phone_cli(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """``s2s phone ...`` as a user runs it: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "s2s.cli",
        "phone",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout * SECOND):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return int(process.returncode or 0), out.decode(), err.decode()


async def call_session(base: str, conversation_id: str, key: str | None = None) -> str:
    """The session id of the call with this Genesys conversation id."""
    async with httpx.AsyncClient(headers=headers(key)) as http:
        listing = (await http.get(f"{base}/v1/sessions")).json()["sessions"]
    found = [
        s["session_id"]
        for s in listing
        if (s.get("metadata") or {}).get("telephony", {}).get("call_id") == conversation_id
    ]
    assert len(found) == 1, listing
    return str(found[0])


async def hang_up_from_the_service(base: str, session_id: str) -> None:
    """A supervisor or backend ends the call: ``DELETE /v1/sessions/{id}``."""
    async with httpx.AsyncClient(headers=HEADERS, timeout=20) as http:
        reply = await http.delete(f"{base}/v1/sessions/{session_id}")
        assert reply.status_code == 200, reply.text
