"""Carry a conversation to a new Nova stream within Nova's chat-history rules.

Nova takes history only as TEXT blocks sent once, after the system prompt and before the audio
starts, and refuses it unless: the first message is USER, the whole history is at most 40 KB,
and each ``textInput`` is at most 1 KB. :func:`plan` turns a provider-neutral
:class:`~s2s.conversation.Conversation` into that shape:

* tool calls and their results become short ASSISTANT notes (Nova history has no tool blocks);
* consecutive messages of one role are merged; empty ones are dropped;
* the oldest messages are dropped until the rest fits in the byte budget, then any leading
  ASSISTANT messages, so history starts with USER;
* long texts are split into pieces under the per-``textInput`` limit, on word boundaries where
  possible (a piece never splits a UTF-8 character).

What the model has not answered yet (the caller's last words or tool results that arrived after
its last reply) is returned separately as ``unanswered``: it is sent as live input, so the model
answers it on the new stream instead of treating it as settled history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...conversation import Conversation, FunctionCall, FunctionOutput, HistoryItem, Message
from ...events import Role
from ..shared import result_text
from .wire import MAX_HISTORY_BYTES, MAX_TEXT_BYTES

__all__ = ["HistoryPlan", "Turn", "plan", "split_text", "tool_note"]

#: Room left under Nova's 1 KB ``textInput`` limit.
PIECE_BYTES = MAX_TEXT_BYTES - 24


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "USER" or "ASSISTANT"
    pieces: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(len(piece.encode("utf-8")) for piece in self.pieces)


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    history: list[Turn] = field(default_factory=list)
    #: Text the model still has to answer (``""`` when nothing is outstanding).
    unanswered: str = ""
    #: Messages left out to fit the budget (oldest first, plus any leading ASSISTANT ones).
    dropped: int = 0


def split_text(text: str, limit: int = PIECE_BYTES) -> list[str]:
    """Pieces of ``text`` of at most ``limit`` UTF-8 bytes, cut after a space where possible.

    The pieces join back (``"".join``) into ``text.strip()``, as Nova joins a block's inputs.
    """
    pieces: list[str] = []
    rest = text.strip()
    while len(rest.encode("utf-8")) > limit:
        cut = len(rest.encode("utf-8")[:limit].decode("utf-8", errors="ignore"))
        space = rest.rfind(" ", 0, cut - 1)
        if space > cut // 2:
            cut = space + 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


def _result(output: FunctionOutput) -> str:
    """A result as the model is given it (a failure as ``{"error": ...}``, like a live one)."""
    return result_text(output.output, output.is_error)


def tool_note(call: FunctionCall, output: FunctionOutput | None) -> str:
    """How a tool call is remembered in text form."""
    result = "no result yet" if output is None else f"result {_result(output)}"
    failed = " (failed)" if output is not None and output.is_error else ""
    return f"[{call.name} tool{failed}: input {call.arguments}, {result}]"


def _is_model_action(item: HistoryItem) -> bool:
    return isinstance(item, FunctionCall) or (
        isinstance(item, Message) and item.role is Role.ASSISTANT and bool(item.text.strip())
    )


def _unanswered_text(items: list[HistoryItem], calls: dict[str, FunctionCall]) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, Message) and item.text.strip():
            parts.append(item.text.strip())
        elif isinstance(item, FunctionOutput):
            call = calls.get(item.call_id)
            name = call.name if call is not None else "requested"
            outcome = "failed with" if item.is_error else "returned"
            parts.append(f"The {name} tool {outcome} {_result(item)}.")
    return " ".join(parts)


def plan(conversation: Conversation, budget: int = MAX_HISTORY_BYTES) -> HistoryPlan:
    """The history blocks and the unanswered input for a new stream (see the module doc)."""
    items = list(conversation)
    calls = {item.call_id: item for item in items if isinstance(item, FunctionCall)}
    outputs = {item.call_id: item for item in items if isinstance(item, FunctionOutput)}
    last_action = max((i for i, item in enumerate(items) if _is_model_action(item)), default=-1)
    settled, tail = items[: last_action + 1], items[last_action + 1 :]

    texts: list[tuple[str, str]] = []
    for item in settled:
        if isinstance(item, Message):
            if item.text.strip():
                texts.append(("USER" if item.role is Role.USER else "ASSISTANT", item.text))
        elif isinstance(item, FunctionCall):
            output = outputs.get(item.call_id)
            if output is not None and output in tail:
                output = None  # its result is still unanswered: sent live below
            texts.append(("ASSISTANT", tool_note(item, output)))
    merged: list[tuple[str, str]] = []
    for role, text in texts:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + " " + text.strip())
        else:
            merged.append((role, text.strip()))

    turns = [Turn(role, tuple(split_text(text))) for role, text in merged]
    dropped = 0
    while turns and (sum(t.size for t in turns) > budget or turns[0].role != "USER"):
        turns.pop(0)
        dropped += 1
    return HistoryPlan(turns, _unanswered_text(tail, calls), dropped)
