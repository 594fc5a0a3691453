"""The assistant's answer items on one connection: what arrived, what was heard, the cut.

A response may hold several assistant ``message`` items (gpt-realtime-2: a spoken preamble, then
the answer). They play one after another on one timeline per response
(:class:`~s2s.playback.PlaybackTracker`). On barge-in the caller has heard a prefix of that
timeline, so :meth:`AnswerItems.cut`:

* leaves the items played in full alone;
* truncates the item that was playing to the milliseconds heard *of that item*
  (``audio_end_ms`` from its own first sample), or deletes it if none of it was heard;
* deletes the items after it (never heard), including ones that had no audio yet;
* makes the :class:`~s2s.conversation.Conversation` say the same: the heard part of each
  transcript, the deleted items gone.

It also turns the answer's output events into the application's events, dropping the late
output of what was cut or cancelled. Sans-I/O: it returns the frames to send and never touches
a socket or a clock.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ...conversation import Conversation
from ...errors import ProviderProtocolError
from ...events import EventType, Role, SessionEvent
from ...playback import PlaybackTracker
from . import wire
from .settings import PROVIDER

__all__ = ["AnswerItems", "Cut"]


class Cut:
    """The outcome of a barge-in: the frames that make the server forget what was not heard."""

    __slots__ = ("frames", "item_id")

    def __init__(self, item_id: str, frames: list[str]) -> None:
        #: The item that was playing (truncated or deleted).
        self.item_id = item_id
        self.frames = frames


class AnswerItems:
    """Assistant message items, their audio and transcripts (owned by one protocol)."""

    __slots__ = (
        "_bytes_per_ms",
        "_cut_responses",
        "_encoding",
        "_rate",
        "_response_items",
        "_transcripts",
        "_truncated",
        "cancelled",
        "conversation",
        "playback",
    )

    def __init__(
        self, conversation: Conversation, rate: int, encoding: str, bytes_per_ms: float
    ) -> None:
        self.conversation = conversation
        self.playback = PlaybackTracker()
        #: Responses whose late output is dropped (cancelled, or cut by the caller).
        self.cancelled: set[str] = set()
        self._rate = rate
        self._encoding = encoding
        self._bytes_per_ms = bytes_per_ms
        self._transcripts: dict[str, str] = {}
        self._truncated: set[str] = set()
        self._response_items: dict[str, list[str]] = {}
        self._cut_responses: set[str] = set()

    def item_added(self, item_id: str, response_id: str | None) -> None:
        """A ``message`` item of ``response_id`` was added (``response.output_item.added``)."""
        if response_id:
            self._response_items.setdefault(response_id, []).append(item_id)

    def was_cut(self, response_id: str | None) -> bool:
        """True when a barge-in cut ``response_id``: later items of it were never heard."""
        return bool(response_id) and response_id in self._cut_responses

    def is_truncated(self, item_id: str | None) -> bool:
        return item_id is not None and item_id in self._truncated

    def drop(self, item_id: str) -> str:
        """Forget an item of a cut response that arrived after the cut: the frame deleting it."""
        self._truncated.add(item_id)
        self.conversation.remove(item_id)
        return wire.dumps({"type": "conversation.item.delete", "item_id": item_id})

    def audio(self, item_id: str, response_id: str | None, nbytes: int, now: float) -> None:
        """``nbytes`` of answer audio for ``item_id`` arrived (and will be played)."""
        self.playback.on_audio(item_id, nbytes / self._bytes_per_ms, now, group=response_id)

    def _dropped(self, ev: Mapping[str, Any]) -> bool:
        return ev.get("item_id") in self._truncated or ev.get("response_id") in self.cancelled

    def audio_event(self, ev: Mapping[str, Any], now: float) -> SessionEvent | None:
        """``response.output_audio.delta``: the AUDIO_OUTPUT to play (``None``: dropped)."""
        audio = _b64decode(ev.get("delta", ""))
        item_id = ev.get("item_id")
        if self._dropped(ev):
            return None  # the caller already moved on; do not play the rest
        if item_id:
            self.audio(item_id, ev.get("response_id"), len(audio), now)
        return SessionEvent(
            EventType.AUDIO_OUTPUT,
            audio=audio,
            sample_rate=self._rate,
            encoding=self._encoding,
            response_id=ev.get("response_id"),
            item_id=item_id,
            at=now,
        )

    def transcript_event(self, ev: Mapping[str, Any], now: float) -> SessionEvent | None:
        """``response.output_audio_transcript.delta``: the TRANSCRIPT (``None``: dropped)."""
        item_id = ev.get("item_id", "")
        delta = ev.get("delta", "")
        self._transcripts[item_id] = self._transcripts.get(item_id, "") + delta
        if self._dropped(ev):
            return None
        return SessionEvent(
            EventType.TRANSCRIPT,
            text=delta,
            role=Role.ASSISTANT,
            response_id=ev.get("response_id"),
            item_id=item_id,
            at=now,
        )

    def done_event(
        self, ev: Mapping[str, Any], text: str, kind: EventType, now: float
    ) -> SessionEvent | None:
        """An item's full transcript or text: recorded in history unless the item was cut
        (history keeps the cut), and the final event for the application."""
        item_id = ev.get("item_id", "")
        self._transcripts[item_id] = text
        if item_id in self._truncated:
            return None
        self.conversation.set_text(item_id, text)
        return SessionEvent(
            kind,
            text=text,
            role=Role.ASSISTANT if kind is EventType.TRANSCRIPT else None,
            final=True,
            response_id=ev.get("response_id"),
            item_id=item_id,
            at=now,
        )

    def cut(self, now: float, running: str | None) -> Cut | None:
        """Cut the latest answer to what the caller heard, if the caller may not have heard all.

        That is when its audio is still playing, or when its response (``running``: the id of
        the response still being generated, if any) is the one playing: the server then has
        audio that has not even arrived yet.
        """
        latest = self.playback.latest
        if latest is None or latest in self._truncated:
            return None
        head = self.playback.playhead(latest, now)
        if head is None:
            return None
        if not (running == head.group or not head.finished):
            return None
        frames: list[str] = []
        heard = head.played_ms
        if heard <= 0:
            frames.append(self.drop(head.item_id))
        else:
            frames.append(self._truncate(head.item_id, heard, head.received_ms))
        for item_id in head.before:  # played in full; their transcript.done may come later
            if item_id in self._transcripts:
                self.conversation.set_text(item_id, self._transcripts[item_id])
        siblings = self._response_items.get(head.group, [])
        later = list(head.after)
        if head.item_id in siblings:
            index = siblings.index(head.item_id)
            later += [i for i in siblings[index + 1 :] if i not in later]
        frames.extend(self.drop(item_id) for item_id in later)
        self._cut_responses.add(head.group)
        self.cancelled.add(head.group)
        self.playback.forget(latest)
        return Cut(head.item_id, frames)

    def _truncate(self, item_id: str, played_ms: int, received_ms: float) -> str:
        self._truncated.add(item_id)
        text = self._transcripts.get(item_id, "")
        heard = text[: int(len(text) * played_ms / received_ms)] if received_ms else ""
        self.conversation.set_text(item_id, heard)
        return wire.dumps(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": played_ms,
            }
        )


def _b64decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError) as exc:
        raise ProviderProtocolError(
            f"{PROVIDER}: audio delta is not valid base64", provider=PROVIDER
        ) from exc
