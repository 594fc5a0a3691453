"""Turns synthesized from GPT-Live's timeline (sans-I/O, plain state).

GPT-Live has no responses and no turn events (drift reference §1.7): the model talks full duplex
and transcripts are timed fragments with no "done". A turn here is a stretch of one speaker's
speech: it opens with the first fragment (or, for the assistant, the first non-silent output
audio) and closes after ``turn_gap_ms`` of model-clock silence. The model clock is the session
timeline: milliseconds of output audio received, the same clock the fragments' ``start_ms`` /
``end_ms`` use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["AssistantTurn", "Fragment", "UserTurn", "join_fragments"]

_SENTENCE_END = re.compile(r"[.!?]$")


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    start_ms: float
    end_ms: float


def join_fragments(fragments: list[Fragment]) -> str:
    """The text of ``fragments``: they carry their own leading spaces, except that a sentence
    end followed by a capital gets one inserted (§1.7)."""
    text = ""
    for fragment in fragments:
        piece = fragment.text
        if text and piece[:1].isupper() and _SENTENCE_END.search(text):
            text += " "
        text += piece
    return text.strip()


def is_punctuation(text: str) -> bool:
    """A fragment that is only closing punctuation (it must not open a new turn)."""
    stripped = text.strip()
    return bool(stripped) and all(c in ".,!?;:…" for c in stripped)


@dataclass(slots=True)
class UserTurn:
    item_id: str
    fragments: list[Fragment] = field(default_factory=list)

    @property
    def last_end_ms(self) -> float:
        return self.fragments[-1].end_ms if self.fragments else 0.0

    @property
    def text(self) -> str:
        return join_fragments(self.fragments)


@dataclass(slots=True)
class AssistantTurn:
    """One stretch of model speech, and how much of it the application was given."""

    response_id: str
    item_id: str
    last_voiced_ms: float
    fragments: list[Fragment] = field(default_factory=list)
    #: Model-clock span of the audio delivered to the application.
    audio_from_ms: float | None = None
    delivered_to_ms: float | None = None
    #: The application's playback report for this item (ms heard), if any.
    reported_ms: float | None = None
    #: Model-clock point where ``interrupt()`` cut it; nothing after it is delivered.
    cut_at_ms: float | None = None
    #: SPEECH_STARTED was reported for caller speech over this turn.
    barged: bool = False

    @property
    def text(self) -> str:
        return join_fragments(self.fragments)

    def heard_until_ms(self) -> float:
        """Model-clock point the caller heard up to: the audio delivered, or less when the
        application reported playing less."""
        if self.audio_from_ms is None or self.delivered_to_ms is None:
            return self.fragments[0].start_ms if self.fragments else 0.0
        heard = self.delivered_to_ms
        if self.reported_ms is not None:
            heard = min(heard, self.audio_from_ms + self.reported_ms)
        return heard

    def heard_text(self) -> str:
        """The words the caller heard (fragments that started before the cut)."""
        cut = self.cut_at_ms if self.cut_at_ms is not None else self.heard_until_ms()
        return join_fragments([f for f in self.fragments if f.start_ms < cut])
