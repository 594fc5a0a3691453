"""Parse client messages the way the Gemini Live server does, with its close reasons.

A message is proto3 JSON: field names in camelCase or snake_case at every level, unknown names
refused, exactly one top-level field. :func:`parse` returns the validated
:class:`~s2s.providers.gemini_live.wire.ClientMessage` with the name of the field that is set,
or a :class:`Refusal`: the close code (1007, invalid argument) and a reason in the production
style, e.g. ``Invalid JSON payload received. Unknown name "x" at 'setup': Cannot find field.``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from ...providers.gemini_live.wire import ClientMessage

__all__ = ["Refusal", "parse"]

INVALID_ARGUMENT = 1007

_TYPE_NAMES = {
    "int_type": "TYPE_INT32",
    "int_parsing": "TYPE_INT32",
    "int_from_float": "TYPE_INT32",
    "float_type": "TYPE_FLOAT",
    "float_parsing": "TYPE_FLOAT",
    "string_type": "TYPE_STRING",
    "bool_type": "TYPE_BOOL",
    "bool_parsing": "TYPE_BOOL",
    "literal_error": "TYPE_ENUM",
    "list_type": "TYPE_MESSAGE",
    "dict_type": "TYPE_MESSAGE",
    "model_type": "TYPE_MESSAGE",
    "model_attributes_type": "TYPE_MESSAGE",
}

#: Proto fields whose values are maps: their keys are user data, not field names.
_MAP_FIELDS = frozenset({"properties"})


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    reason: str


def _path(loc: tuple[int | str, ...]) -> str:
    """``setup.tools[0].function_declarations[0].parameters`` for a pydantic location."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif previous in _MAP_FIELDS:
            out += f"[{json.dumps(part)}]"
        else:
            out += ("." if out else "") + to_snake(part)
        previous = to_snake(part) if isinstance(part, str) else part
    return out


def _refusal(error: dict[str, Any]) -> Refusal:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        where = _path(loc[:-1])
        at = f" at '{where}'" if where else ""
        return Refusal(
            INVALID_ARGUMENT,
            f'Invalid JSON payload received. Unknown name "{loc[-1]}"{at}: Cannot find field.',
        )
    if kind == "missing":
        return Refusal(INVALID_ARGUMENT, f"Invalid value at '{_path(loc)}': the field is required.")
    value = json.dumps(error.get("input"))
    type_name = _TYPE_NAMES.get(kind, "TYPE_MESSAGE")
    return Refusal(INVALID_ARGUMENT, f"Invalid value at '{_path(loc)}' ({type_name}), {value}")


def parse(frame: str | bytes) -> tuple[ClientMessage, str] | Refusal:
    """The validated message and the name of its one field, or why the server closes."""
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return Refusal(INVALID_ARGUMENT, "Invalid JSON payload received. Unexpected token.")
    if not isinstance(data, dict):
        return Refusal(
            INVALID_ARGUMENT,
            "Invalid JSON payload received. Expected an object for the message, "
            f"got {type(data).__name__}.",
        )
    try:
        message = ClientMessage.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        return _refusal(dict(errors[0]))
    fields = [name for name in type(message).model_fields if getattr(message, name) is not None]
    if not fields:
        return Refusal(
            INVALID_ARGUMENT,
            "Invalid request: the message sets none of setup, client_content, realtime_input, "
            "tool_response, context_update.",
        )
    if len(fields) > 1:
        return Refusal(
            INVALID_ARGUMENT,
            "Invalid JSON payload received. Oneof field 'message_type' is already set. "
            f"Cannot set '{to_snake(fields[1])}'",
        )
    return message, fields[0]
