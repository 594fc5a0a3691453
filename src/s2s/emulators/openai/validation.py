"""Validate client events the way the GA server does, with its error codes and messages.

``validate(message)`` returns the parsed pydantic model, or an ``(code, message, param)`` triple
for the ``error`` event; :func:`validate_frame` does the same against any table of event models
(the GPT-Live emulator's, which words its errors the same way). Codes and message shapes follow
production: ``invalid_json``, ``invalid_value`` (unknown event type, bad enum),
``unknown_parameter``, ``missing_required_parameter``, ``invalid_type``,
``integer_below_min_value`` / ``integer_above_max_value`` (and the ``decimal_`` forms).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ...providers.openai_realtime.schema import CLIENT_EVENT_MODELS
from .events import VALID_CLIENT_TYPES

__all__ = ["ValidationFailure", "validate", "validate_frame"]

ValidationFailure = tuple[str, str, str | None]

_PRIORITY = {
    "extra_forbidden": 0,
    "missing": 1,
    "union_tag_invalid": 2,
    "union_tag_not_found": 2,
    "literal_error": 3,
    "greater_than_equal": 4,
    "less_than_equal": 4,
}

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _param(data: Any, loc: tuple[int | str, ...]) -> str:
    """Dotted path of ``loc`` through ``data``, skipping pydantic's union/tag labels."""
    parts: list[str] = []
    current = data
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(current, dict) and isinstance(key, str) and (key in current or last):
            parts.append(key)
            current = current.get(key)
        elif isinstance(current, list) and isinstance(key, int):
            if parts:
                parts[-1] += f"[{key}]"
            else:
                parts.append(f"[{key}]")
            current = current[key] if key < len(current) else None
        # anything else is a union member or discriminator label: not part of the JSON path
    return ".".join(parts)


def _failure(error: dict[str, Any], data: dict[str, Any]) -> ValidationFailure:
    kind = error["type"]
    param = _param(data, tuple(error["loc"]))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown_parameter", f"Unknown parameter: '{param}'.", param
    if kind == "missing":
        return "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    if kind in ("greater_than_equal", "less_than_equal"):
        numeric = "integer" if isinstance(value, int) else "decimal"
        if kind == "greater_than_equal":
            bound, word, rel = ctx.get("ge"), "below minimum", ">="
            code = f"{numeric}_below_min_value"
        else:
            bound, word, rel = ctx.get("le"), "above maximum", "<="
            code = f"{numeric}_above_max_value"
        return (
            code,
            f"Invalid '{param}': {numeric} {word} value. Expected a value {rel} {bound}, "
            f"but got {value} instead.",
            param,
        )
    if kind in ("literal_error", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags") or ""
        if kind == "union_tag_invalid":  # the bad value is the tag: name it, as the server does
            tag = str(ctx.get("discriminator", "type")).strip("'")
            param = f"{param}.{tag}" if param else tag
        return (
            "invalid_value",
            f"Invalid value: '{value if kind == 'literal_error' else ctx.get('tag')}'. "
            f"Supported values are: {expected}.",
            param,
        )
    if kind == "union_tag_not_found":
        tag = ctx.get("discriminator", "type").strip("'")
        full = f"{param}.{tag}" if param else tag
        return "missing_required_parameter", f"Missing required parameter: '{full}'.", full
    expected = _TYPE_NAMES.get(kind, "a valid value")
    return (
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
    )


def validate(raw: str) -> BaseModel | ValidationFailure:
    """Parse and validate one Realtime client text frame."""
    return validate_frame(raw, CLIENT_EVENT_MODELS, VALID_CLIENT_TYPES)


def validate_frame(
    raw: str, models: Mapping[str, type[BaseModel]], supported: str
) -> BaseModel | ValidationFailure:
    """Parse one client text frame and validate it with ``models[frame["type"]]``;
    ``supported`` lists the valid types for the error about an unknown one."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return "invalid_json", f"We could not parse the JSON body of your request. ({exc})", None
    if not isinstance(data, dict):
        return "invalid_type", "Invalid type for event: expected an object.", None
    kind = data.get("type")
    if not isinstance(kind, str):
        return "missing_required_parameter", "Missing required parameter: 'type'.", "type"
    model = models.get(kind)
    if model is None:
        return (
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: {supported}.",
            "type",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: _PRIORITY.get(e["type"], 9))
        return _failure(dict(errors[0]), data)
