"""What is fixed for one simulated Genesys session, and the ``open`` message it makes.

The ``open`` parameters follow §2.4 of the protocol brief (Audio Connector flavour):
``organizationId``, ``conversationId``, ``participant{id, ani, aniName, dnis}``, the ``media``
offer, ``language`` and ``inputVariables``. A connection probe uses the nil UUID for the
conversation and the participant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .genesys_messages import NIL_UUID

__all__ = ["CoreConfig"]


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Everything fixed for one session."""

    session_id: str
    organization_id: str
    conversation_id: str
    participant_id: str
    ani: str
    ani_name: str
    dnis: str
    language: str
    input_variables: Mapping[str, str]
    media_offer: tuple[Mapping[str, object], ...]
    probe: bool = False
    ping_interval_s: float = 5.0
    max_frames_per_s: float = 5.0
    retry_after_s: float = 1.0
    retry_grace_s: float = 0.1
    playback_completed_on_barge_in: bool = True

    def open_parameters(self) -> dict[str, object]:
        """``open.parameters`` for this session."""
        return {
            "organizationId": self.organization_id,
            "conversationId": NIL_UUID if self.probe else self.conversation_id,
            "participant": {
                "id": NIL_UUID if self.probe else self.participant_id,
                "ani": self.ani,
                "aniName": self.ani_name,
                "dnis": self.dnis,
            },
            "media": [dict(m) for m in self.media_offer],
            "language": self.language,
            "inputVariables": dict(self.input_variables),
        }
