"""A tool result in the shapes providers take.

Text-taking providers (OpenAI ``function_call_output``, Nova ``toolResult``) get
:func:`result_text`; object-taking ones (Gemini ``functionResponse.response``) get
:func:`result_object`. An error is always ``{"error": <content>}`` so the model can tell a failed
tool from a result that happens to mention an error.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["result_object", "result_text"]


def result_text(content: str, is_error: bool) -> str:
    """The result as text: the content itself, or ``{"error": content}`` as JSON for an error."""
    return json.dumps({"error": content}) if is_error else content


def result_object(content: str, is_error: bool) -> dict[str, Any]:
    """The result as a JSON object: ``{"output": value}`` (``{"error": value}`` for a failure).

    JSON text becomes the value it encodes, anything else stays a string; ``output`` and
    ``error`` are the keys Gemini's models are trained on.
    """
    try:
        value: Any = json.loads(content)
    except ValueError:
        value = content
    return {"error" if is_error else "output": value}
