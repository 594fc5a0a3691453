"""A running service for the Ray tests: emulator thread, LocalStack, and a small client."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from deployments.api import parse_audio_frame
from deployments.tenancy import hash_key
from s2s.emulators.base import Emulator
from s2s.emulators.openai import OpenAIEmulator

from ..conftest import OPENAI_KEY, SECOND

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key-0123"
"""The default tenant's key."""
ACME_KEY = "acme-key-0123456789"
GLOBEX_KEY = "globex-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"
METRICS_KEY = "metrics-key-0123456789"
"""Prometheus's key: ``/metrics`` and nothing else."""
INITECH_KEY = "initech-key-0123456789"
#: initech brings its own provider key, held in this variable (a key the provider refuses).
INITECH_PROVIDER_KEY_VAR = "S2S_TEST_INITECH_OPENAI_KEY"
#: acme's phone settings: its Twilio auth token and Genesys client secret live in these.
ACME_TWILIO_TOKEN_VAR = "S2S_TEST_ACME_TWILIO_TOKEN"
ACME_TWILIO_TOKEN = "acme-twilio-auth-token-0123456789"
ACME_GENESYS_SECRET_VAR = "S2S_TEST_ACME_GENESYS_SECRET"
ACME_GENESYS_SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
ACME_TRANSFER_TARGET = "+18005550123"
#: globex's quotas in the test stack.
GLOBEX_MAX_LIVE = 2
GLOBEX_PER_MINUTE = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorThread:
    """An emulator (OpenAI's unless given) on its own event loop, so module- or session-scoped
    tests can share it."""

    def __init__(self, emulator: Emulator | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emulator: Any = emulator or OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=8.0)

    def start(self) -> Any:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(10)
        return self.emulator

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def frames_in(self) -> list[dict[str, Any]]:
        return [
            json.loads(f)
            for s in list(self.emulator.sessions)
            for f in list(s.frames_in)
            if isinstance(f, str)
        ]


def service_config(emulator_url: str) -> dict[str, Any]:
    return {
        "redis": {"url": "embedded"},
        "providers": {
            "openai_realtime": {
                "api_key_env": [],
                "emulate_without_key": False,
                "extra": {"api_key": OPENAI_KEY, "base_url": emulator_url},
            }
        },
        "serve": {"port": free_port(), "max_frame_bytes": 32000},
        "sessions": {"idle_timeout_s": 60, "snapshot_interval_s": 0.3},
        "tool_pools": {
            "default": {"modules": ["s2s.tools.examples"], "timeout_s": 3, "claim_idle_s": 1},
            "slow": {"modules": ["tests.service.tools"], "timeout_s": 15, "claim_idle_s": 1},
        },
        "auth": {
            "api_keys": [API_KEY],
            "admin_key_hashes": [hash_key(ADMIN_KEY)],
            "metrics_key_hashes": [hash_key(METRICS_KEY)],
        },
        "tenants": {
            "acme": {
                "key_hashes": [hash_key(ACME_KEY)],
                "tools": ["lookup_order", "check_balance"],
                "telephony": {
                    "instructions": "You answer acme's customer line.",
                    "dtmf_to_model": True,
                    "transfer_targets": {"billing": ACME_TRANSFER_TARGET},
                    "twilio": {"auth_token_env": ACME_TWILIO_TOKEN_VAR},
                    "genesys": {"client_secret_env": ACME_GENESYS_SECRET_VAR},
                },
            },
            "globex": {
                "key_hashes": [hash_key(GLOBEX_KEY)],
                "providers": ["openai_realtime"],
                "quotas": {
                    "max_live_sessions": GLOBEX_MAX_LIVE,
                    "creates_per_minute": GLOBEX_PER_MINUTE,
                    "max_call_s": 30,
                },
            },
            "initech": {
                "key_hashes": [hash_key(INITECH_KEY)],
                "provider_credentials": {"openai_realtime": {"api_key": INITECH_PROVIDER_KEY_VAR}},
            },
        },
    }


def with_repo_on_path() -> None:
    """Ray workers and tool workers import tests.service.tools: put the repo on their path
    (and give them initech's provider key, a wrong one, and acme's telephony secrets)."""
    os.environ[INITECH_PROVIDER_KEY_VAR] = "sk-initech-refused-by-the-provider"
    os.environ[ACME_TWILIO_TOKEN_VAR] = ACME_TWILIO_TOKEN
    os.environ[ACME_GENESYS_SECRET_VAR] = ACME_GENESYS_SECRET
    current = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), current) if p)


@dataclass
class Call:
    """One client of the stream WebSocket: events by sequence number, audio collected."""

    ws: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    seqs: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: The stream's own messages (``stream_opened``, ``input_ack``), not events.
    stream: list[dict[str, Any]] = field(default_factory=list)

    @property
    def input_position(self) -> int:
        """The highest input position the service acknowledged on this socket so far."""
        return max((m["input_position"] for m in self.stream), default=0)

    async def until(
        self, accept: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout * SECOND):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, bytes):
                    seq, item, chunk = parse_audio_frame(frame)
                    self.seqs.append(seq)
                    self.audio.extend(chunk)
                    event = {
                        "seq": seq,
                        "type": "audio_output",
                        "item_id": item,
                        "bytes": len(chunk),
                    }
                else:
                    event = json.loads(frame)
                    if event["type"] in ("stream_opened", "input_ack"):
                        self.stream.append(event)
                        continue
                    if "seq" not in event:
                        self.errors.append(event)
                        continue
                    self.seqs.append(event["seq"])
                self.events.append(event)
                if accept(event):
                    return event

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]


def turn_completed(event: dict[str, Any]) -> bool:
    return event["type"] == "turn_end" and event.get("reason") == "completed"


def tool_result(event: dict[str, Any]) -> bool:
    return event["type"] == "tool_result"


async def open_call(base_ws: str, session_id: str, last_seq: int = 0, key: str = API_KEY) -> Call:
    url = f"{base_ws}/v1/sessions/{session_id}/stream?last_seq={last_seq}"
    ws = await websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {key}"}, max_size=None
    )
    return Call(ws)


def http_client(base_url: str, key: str = API_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, timeout=30 * SECOND, headers={"Authorization": f"Bearer {key}"}
    )
