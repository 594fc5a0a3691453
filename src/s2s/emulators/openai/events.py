"""Server events of the OpenAI Realtime GA protocol, built as the production server shapes them.

Every builder returns a dict that validates against ``openai.types.realtime.RealtimeServerEvent``
(the conformance tests check each one), with the field set of the production capture in
``protocols.md`` §1.8.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

__all__ = ["Ids", "error", "session_object"]

VALID_CLIENT_TYPES = (
    "session.update, session.close, input_audio_buffer.append, "
    "session.input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear, "
    "conversation.item.create, conversation.item.truncate, conversation.item.delete, "
    "conversation.item.retrieve, response.create, response.cancel"
)


DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2024-10. You are a helpful, witty, and friendly AI."
)


class Ids:
    """Ids in the production formats (``event_…``, ``item_…``, ``resp_…``, ``call_…``)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(6)}{next(self._counter):04d}"

    def event(self) -> str:
        return self.new("event")


def error(
    ids: Ids,
    code: str,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": ids.event(),
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


def default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    """The session object of ``session.created`` (production defaults)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
        "include": None,
    }


def session_object(session: dict[str, Any]) -> dict[str, Any]:
    return dict(session)


def user_audio_item(
    item_id: str, status: str = "completed", transcript: str | None = None
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "object": "realtime.item",
        "status": status,
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def assistant_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "object": "realtime.item",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "object": "realtime.item",
        "status": status,
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def response_object(
    response_id: str,
    conversation_id: str,
    status: str,
    output: list[dict[str, Any]],
    modalities: list[str],
    voice: str,
    *,
    usage: dict[str, Any] | None = None,
    status_details: dict[str, Any] | None = None,
    audio_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``realtime.response``; ``audio_format`` is the session's output format (default PCM)."""
    output_format = audio_format or {"type": "audio/pcm", "rate": 24000}
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": conversation_id,
        "output_modalities": modalities,
        "max_output_tokens": "inf",
        "audio": {"output": {"format": output_format, "voice": voice}},
        "usage": usage,
        "metadata": None,
    }


def usage(input_text: int, input_audio: int, output_text: int, output_audio: int) -> dict[str, Any]:
    inputs = input_text + input_audio
    outputs = output_text + output_audio
    return {
        "total_tokens": inputs + outputs,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def rate_limits(remaining_tokens: int) -> list[dict[str, Any]]:
    return [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
        {"name": "tokens", "limit": 400000, "remaining": remaining_tokens, "reset_seconds": 0.25},
    ]
