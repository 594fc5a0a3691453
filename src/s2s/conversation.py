"""Provider-neutral conversation history, kept so a call can continue on a new connection.

Each provider protocol records what was said (final transcripts, texts, tool calls and their
results) as it goes. When a connection must be replaced (a provider time limit, a dropped
socket) the history is replayed to the new one in that provider's own format. It is plain data:
:meth:`Conversation.to_list` / :meth:`Conversation.from_list` round-trip through JSON or msgpack,
so a replacement process can pick it up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .config import ToolCall
from .events import Role

__all__ = ["Conversation", "FunctionCall", "FunctionOutput", "HistoryItem", "Message"]


@dataclass(frozen=True, slots=True)
class Message:
    """Something the user or the assistant said or typed."""

    role: Role
    text: str
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A tool call the model made."""

    call_id: str
    name: str
    arguments: str
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionOutput:
    """The application's result for a tool call."""

    call_id: str
    output: str
    is_error: bool = False


HistoryItem = Message | FunctionCall | FunctionOutput


class Conversation:
    """An ordered history of one call. Not thread-safe; owned by one protocol object."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[HistoryItem] = ()) -> None:
        self._items: list[HistoryItem] = list(items)

    def __iter__(self) -> Iterator[HistoryItem]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conversation) and self._items == other._items

    def __repr__(self) -> str:
        return f"Conversation({self._items!r})"

    def copy(self) -> Conversation:
        return Conversation(self._items)

    def append(self, item: HistoryItem) -> None:
        self._items.append(item)

    def set_text(self, item_id: str, text: str) -> bool:
        """Replace the text of the message ``item_id`` (a late transcript or a truncation)."""
        for i, item in enumerate(self._items):
            if isinstance(item, Message) and item.item_id == item_id:
                self._items[i] = replace(item, text=text)
                return True
        return False

    def remove(self, item_id: str) -> bool:
        """Drop the message or call whose provider item id is ``item_id``."""
        for i, item in enumerate(self._items):
            if not isinstance(item, FunctionOutput) and item.item_id == item_id:
                del self._items[i]
                return True
        return False

    def has_item(self, item_id: str) -> bool:
        return any(
            not isinstance(item, FunctionOutput) and item.item_id == item_id for item in self._items
        )

    def pending_calls(self) -> list[ToolCall]:
        """Tool calls that have no output yet, oldest first."""
        answered = {item.call_id for item in self._items if isinstance(item, FunctionOutput)}
        return [
            ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
            for item in self._items
            if isinstance(item, FunctionCall) and item.call_id not in answered
        ]

    def find_call(self, call_id: str) -> FunctionCall | None:
        for item in self._items:
            if isinstance(item, FunctionCall) and item.call_id == call_id:
                return item
        return None

    def messages(self) -> list[Message]:
        return [item for item in self._items if isinstance(item, Message)]

    def to_list(self) -> list[dict[str, Any]]:
        """Plain data for storage (JSON/msgpack)."""
        out: list[dict[str, Any]] = []
        for item in self._items:
            if isinstance(item, Message):
                out.append(
                    {
                        "kind": "message",
                        "role": item.role.value,
                        "text": item.text,
                        "item_id": item.item_id,
                    }
                )
            elif isinstance(item, FunctionCall):
                out.append(
                    {
                        "kind": "function_call",
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": item.arguments,
                        "item_id": item.item_id,
                    }
                )
            else:
                out.append(
                    {
                        "kind": "function_output",
                        "call_id": item.call_id,
                        "output": item.output,
                        "is_error": item.is_error,
                    }
                )
        return out

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, Any]]) -> Conversation:
        items: list[HistoryItem] = []
        for entry in data:
            kind = entry.get("kind")
            if kind == "message":
                items.append(Message(Role(entry["role"]), entry["text"], entry.get("item_id")))
            elif kind == "function_call":
                items.append(
                    FunctionCall(
                        entry["call_id"], entry["name"], entry["arguments"], entry.get("item_id")
                    )
                )
            elif kind == "function_output":
                items.append(
                    FunctionOutput(
                        entry["call_id"], entry["output"], bool(entry.get("is_error", False))
                    )
                )
            else:
                raise ValueError(f"unknown history item kind {kind!r}")
        return cls(items)
