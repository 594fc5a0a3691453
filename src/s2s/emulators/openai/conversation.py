"""``conversation.item.*`` client events: create, truncate, delete, retrieve."""

from __future__ import annotations

from typing import Any

from .base import SessionBase
from .items import _Item

__all__ = ["ConversationMixin"]


class ConversationMixin(SessionBase):
    """Conversation item edits for :class:`~.session.EmulatedSession`."""

    # -- conversation items --------------------------------------------------------------------

    def _find(self, item_id: str) -> _Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    async def _find_or_error(self, item_id: str, event_id: str | None) -> _Item | None:
        """The item, or ``None`` after telling the client it does not exist."""
        item = self._find(item_id)
        if item is None:
            await self.error(
                "invalid_value",
                f"Item with item_id '{item_id}' not found.",
                param="item_id",
                event_id=event_id,
            )
        return item

    async def _on_conversation_item_create(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        raw = data["item"]
        item_id = raw.get("id") or self.ids.new("item")
        if self._find(item_id) is not None:
            await self.error(
                "invalid_value",
                f"Item with id '{item_id}' already exists.",
                param="item.id",
                event_id=event_id,
            )
            return
        kind = raw["type"]
        if kind == "message":
            parts = raw.get("content") or []
            text = " ".join(p.get("text") or p.get("transcript") or "" for p in parts).strip()
            item = _Item(id=item_id, type="message", role=raw["role"], text=text)
        elif kind == "function_call":
            item = _Item(
                id=item_id,
                type="function_call",
                call_id=raw.get("call_id") or self.ids.new("call"),
                name=raw["name"],
                arguments=raw["arguments"],
            )
        else:
            item = _Item(
                id=item_id,
                type="function_call_output",
                call_id=raw["call_id"],
                output=raw["output"],
            )
        previous_id = data.get("previous_item_id")
        if previous_id:
            previous = self._find(previous_id)
            if previous is None:
                await self.error(
                    "invalid_value",
                    f"Previous item with id '{previous_id}' not found.",
                    param="previous_item_id",
                    event_id=event_id,
                )
                return
            self.items.insert(self.items.index(previous) + 1, item)
        else:
            previous_id = self.items[-1].id if self.items else None
            self.items.append(item)
        for kind_name in ("conversation.item.added", "conversation.item.done"):
            await self.send(
                {
                    "type": kind_name,
                    "event_id": self.ids.event(),
                    "previous_item_id": previous_id,
                    "item": item.wire(),
                }
            )

    async def _on_conversation_item_truncate(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        if item.role != "assistant" or not item.audio:
            await self.error(
                "invalid_value",
                "Only model output audio messages can be truncated.",
                param="item_id",
                event_id=event_id,
            )
            return
        end = data["audio_end_ms"]
        if end > item.audio_ms:
            await self.error(
                "invalid_value",
                f"Audio content of {int(item.audio_ms)}ms is already shorter than {end}ms.",
                param="audio_end_ms",
                event_id=event_id,
            )
            return
        if item.audio_ms:
            item.text = item.text[: int(len(item.text) * end / item.audio_ms)]
        item.audio_ms = float(end)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "event_id": self.ids.event(),
                "item_id": item.id,
                "content_index": data["content_index"],
                "audio_end_ms": end,
            }
        )

    async def _on_conversation_item_delete(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        self.items.remove(item)
        await self.send(
            {"type": "conversation.item.deleted", "event_id": self.ids.event(), "item_id": item.id}
        )

    async def _on_conversation_item_retrieve(
        self, data: dict[str, Any], event_id: str | None
    ) -> None:
        item = await self._find_or_error(data["item_id"], event_id)
        if item is None:
            return
        await self.send(
            {
                "type": "conversation.item.retrieved",
                "event_id": self.ids.event(),
                "item": item.wire(),
            }
        )
