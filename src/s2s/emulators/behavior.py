"""Deterministic conversation behaviour shared by every emulator.

An emulated model answers by rules, so tests and demos can assert exact outcomes:

* A user text containing ``call <tool_name> <json-args>`` makes the model call that declared tool
  with those arguments. Several such phrases in one message make parallel calls. A name that is
  not declared gets a spoken refusal instead.
* After tool results arrive, the model says what each tool returned:
  ``The <tool_name> tool returned <output>.``
* ``recall`` (or "what did I say") makes the model list the caller's earlier utterances, which
  shows that history survived a connection switch.
* Any other text is quoted back: ``You said: "<text>".``
* A spoken turn gets the transcript ``[<N.N> seconds of speech]`` and the answer
  ``I heard <N.N> seconds of speech.``
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ToolRequest",
    "audio_transcript",
    "parse_tool_requests",
    "reply_for_audio",
    "reply_for_text",
    "reply_for_tool_outputs",
]

_CALL = re.compile(r"\bcall\s+([A-Za-z0-9_-]{1,64})\s*")
_RECALL = re.compile(r"\b(recall|what did i say)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ToolRequest:
    name: str
    arguments: dict[str, Any]


def _json_at(text: str, start: int) -> tuple[dict[str, Any], int] | None:
    if start >= len(text) or text[start] != "{":
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return (value, end) if isinstance(value, dict) else None


def parse_tool_requests(text: str) -> list[ToolRequest]:
    """Every ``call <name> <json>`` in ``text``, in order (``{}`` when the JSON is missing)."""
    requests: list[ToolRequest] = []
    pos = 0
    while match := _CALL.search(text, pos):
        parsed = _json_at(text, match.end())
        if parsed is None:
            requests.append(ToolRequest(match.group(1), {}))
            pos = match.end()
        else:
            requests.append(ToolRequest(match.group(1), parsed[0]))
            pos = parsed[1]
    return requests


def reply_for_text(text: str, earlier_user_texts: list[str]) -> str:
    """The answer to a typed (or transcribed) message that asked for no tool."""
    if _RECALL.search(text):
        if not earlier_user_texts:
            return "You have not said anything before this."
        quoted = "; ".join(f'"{t}"' for t in earlier_user_texts)
        return f"Earlier you said: {quoted}."
    return f'You said: "{text.strip()}".'


def reply_for_unknown_tools(names: list[str]) -> str:
    return "I have no tool named " + " or ".join(repr(n) for n in names) + "."


def reply_for_tool_outputs(outputs: list[tuple[str, str]]) -> str:
    """``outputs`` is ``[(tool_name, output_text), ...]``."""
    return " ".join(f"The {name} tool returned {output}." for name, output in outputs)


def audio_transcript(seconds: float) -> str:
    return f"[{seconds:.1f} seconds of speech]"


def reply_for_audio(seconds: float) -> str:
    return f"I heard {seconds:.1f} seconds of speech."


SECONDS_RE = re.compile(r"(\d+\.\d) seconds of speech")
