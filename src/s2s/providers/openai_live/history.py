"""A call's history as GPT-Live startup ``input`` (drift reference §1.3).

Text only, roles ``user`` / ``assistant`` / ``developer`` (there is no system role), one text part
each, the newest 128 messages. Tool calls and their results have no item of their own in the
startup input, so they become developer text.
"""

from __future__ import annotations

from typing import Any

from ...conversation import Conversation, FunctionCall, Message
from . import wire

__all__ = ["history_input"]


def history_input(conversation: Conversation) -> list[dict[str, Any]]:
    """``conversation`` as startup ``input`` messages, newest 128."""
    names = {i.call_id: i.name for i in conversation if isinstance(i, FunctionCall)}
    out: list[dict[str, Any]] = []
    for item in conversation:
        if isinstance(item, Message):
            if item.text:
                out.append(wire.input_message(item.role.value, item.text))
        elif isinstance(item, FunctionCall):
            out.append(
                wire.input_message(
                    "developer", f"The {item.name} tool was called with {item.arguments}."
                )
            )
        else:
            name = names.get(item.call_id, "tool")
            verb = "failed with" if item.is_error else "returned"
            out.append(wire.input_message("developer", f"The {name} tool {verb} {item.output}."))
    return out[-wire.MAX_INPUT_MESSAGES :]
