"""The caller's side of the server's events: turn ends, commits, input transcription.

:func:`caller_event` keeps :class:`~.pending_audio.PendingAudio` (what the server has not
committed) and the :class:`~s2s.conversation.Conversation` (the caller's turns and their
transcripts) up to date, and returns the event for the application, if any. Sans-I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...conversation import Conversation, Message
from ...errors import ProviderError
from ...events import EventType, Role, SessionEvent
from .pending_audio import PendingAudio
from .settings import PROVIDER

__all__ = ["CALLER_EVENTS", "caller_event"]

#: The server events :func:`caller_event` handles.
CALLER_EVENTS = frozenset(
    {
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
    }
)


def caller_event(
    ev: Mapping[str, Any], pending: PendingAudio, conversation: Conversation, now: float
) -> SessionEvent | None:
    """Apply one of :data:`CALLER_EVENTS`; the event for the application, if any."""
    item_id = ev.get("item_id")
    match ev["type"]:
        case "input_audio_buffer.speech_stopped":
            end_ms = ev.get("audio_end_ms")
            if isinstance(end_ms, int | float) and end_ms >= 0:
                pending.commit_ends_at_ms(end_ms)
            return SessionEvent(EventType.SPEECH_STOPPED, item_id=item_id, at=now)
        case "input_audio_buffer.committed":
            pending.forget_committed()
            if item_id and not conversation.has_item(item_id):
                conversation.append(Message(Role.USER, "", item_id))
            return None
        case "input_audio_buffer.cleared":
            pending.clear()
            return None
        case "conversation.item.input_audio_transcription.delta":
            return SessionEvent(
                EventType.TRANSCRIPT,
                text=ev.get("delta", ""),
                role=Role.USER,
                item_id=item_id,
                at=now,
            )
        case "conversation.item.input_audio_transcription.completed":
            transcript = ev.get("transcript", "")
            if item_id:
                conversation.set_text(item_id, transcript)
            return SessionEvent(
                EventType.TRANSCRIPT,
                text=transcript,
                role=Role.USER,
                final=True,
                item_id=item_id,
                at=now,
            )
        case "conversation.item.input_audio_transcription.failed":
            err = ev.get("error") or {}
            return SessionEvent(
                EventType.ERROR,
                item_id=item_id,
                at=now,
                error=ProviderError(
                    f"{PROVIDER}: input transcription failed: {err.get('message', '')}",
                    code=err.get("code"),
                    provider=PROVIDER,
                ),
            )
    return None
