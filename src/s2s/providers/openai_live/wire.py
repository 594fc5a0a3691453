"""GPT-Live wire format: constants and builders for what our client sends.

Messages are plain dicts serialised with ``json.dumps`` (the audio append is built by hand: it is
the hot path). Their shapes are checked in tests against the official SDK's
``openai.types.live.ClientEvent``.

Reference: ``provider-drift-2026-12.md`` §1 and the ``openai.types.live`` package.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["MODELS", "SAMPLE_RATE", "VOICES"]

SAMPLE_RATE = 24000

#: The model ids GPT-Live serves (openai 3.57.0 literal, drift reference §1.1).
MODELS = frozenset({"gpt-live-1", "gpt-live-1.1"})

VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "beacon",
        "bossa",
        "cedar",
        "cinder",
        "coral",
        "delta",
        "echo",
        "gleam",
        "marin",
        "meridian",
        "quartz",
        "ripple",
        "sage",
        "shida",
        "shimmer",
        "stone",
        "tempo",
        "verse",
        "vesper",
        "willow",
    }
)

#: Most messages the startup ``input`` takes.
MAX_INPUT_MESSAGES = 128


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def session_start(session: dict[str, Any], event_id: str) -> str:
    return dumps({"type": "session.start", "event_id": event_id, "session": session})


def audio_append(pcm: bytes) -> str:
    """``session.input_audio.append`` of PCM16 24 kHz, built by hand: the hot path."""
    return (
        '{"type":"session.input_audio.append","audio":"'
        + base64.b64encode(pcm).decode("ascii")
        + '"}'
    )


def context_append(kind: str, content: str, delegation_id: str | None = None) -> str:
    """``session.{thinking,commentary,instructions}.append``; the ``delegation_id`` key is
    required even when null (drift reference §1.4)."""
    return dumps(
        {"type": f"session.{kind}.append", "content": content, "delegation_id": delegation_id}
    )


def function_output(call_id: str, output: str) -> str:
    return dumps(
        {
            "type": "response.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        }
    )


def response_create() -> str:
    return dumps({"type": "response.create"})


def session_close() -> str:
    return dumps({"type": "session.close"})


def input_message(role: str, text: str) -> dict[str, Any]:
    """One startup ``input`` message: one text part (``output_text`` for the assistant)."""
    part = "output_text" if role == "assistant" else "input_text"
    return {"role": role, "content": [{"type": part, "text": text}]}
