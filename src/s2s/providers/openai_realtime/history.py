"""History and accounting in Realtime shapes: replaying a Conversation, reading ``usage``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...conversation import FunctionCall, FunctionOutput, Message
from ...events import Role, Usage
from ..shared import result_text
from . import wire

__all__ = ["replay_item", "usage_from"]


def replay_item(item: Message | FunctionCall | FunctionOutput) -> dict[str, Any] | None:
    """The ``conversation.item.create`` item that carries ``item`` to a new connection, or
    ``None`` for a turn with no transcript (it has nothing to carry)."""
    if isinstance(item, Message):
        if not item.text:
            return None
        if item.role is Role.USER:
            return wire.user_text_item(item.text)
        return wire.assistant_text_item(item.text)
    if isinstance(item, FunctionCall):
        return wire.function_call_item(item.call_id, item.name, item.arguments)
    return wire.function_output_item(item.call_id, result_text(item.output, item.is_error))


def usage_from(usage: Mapping[str, Any]) -> Usage:
    """``response.done``'s ``usage`` as a :class:`Usage`."""
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        total_tokens=usage.get("total_tokens") or 0,
        input_audio_tokens=inp.get("audio_tokens") or 0,
        input_text_tokens=inp.get("text_tokens") or 0,
        output_audio_tokens=out.get("audio_tokens") or 0,
        output_text_tokens=out.get("text_tokens") or 0,
        cached_tokens=inp.get("cached_tokens") or 0,
    )
