"""OpenAI Realtime (GA) wire format: constants and the builders for what our client sends.

Messages are plain dicts serialised with ``json.dumps`` (the audio append is built by hand: it is
the hot path). Their shapes are checked in tests against the strict models in :mod:`.schema`
and against the official SDK's ``RealtimeClientEvent``.

Reference: ``../shared/reference/protocols.md`` §1 and the ``openai.types.realtime`` package.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["GA_MODELS", "SAMPLE_RATE", "TRANSCRIPTION_MODELS", "VOICES"]

SAMPLE_RATE = 24000

#: Models the GA endpoint serves (openai 3.54.0 literal list, plus dated snapshots).
GA_MODELS = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-1.5",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-mini-2025-12-15",
    }
)

VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)

TRANSCRIPTION_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe",
        "gpt-4o-transcribe-diarize",
        "gpt-realtime-whisper",
    }
)


# -- builders for what our client sends -------------------------------------------------------


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def audio_append(pcm: bytes) -> str:
    """``input_audio_buffer.append`` of the session's audio (PCM16 24 kHz or G.711 mu-law),
    built by hand: the hot path."""
    return (
        '{"type":"input_audio_buffer.append","audio":"'
        + base64.b64encode(pcm).decode("ascii")
        + '"}'
    )


def user_text_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant_text_item(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def function_output_item(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def item_create(item: dict[str, Any], event_id: str | None = None) -> str:
    message: dict[str, Any] = {"type": "conversation.item.create", "item": item}
    if event_id:
        message["event_id"] = event_id
    return dumps(message)
