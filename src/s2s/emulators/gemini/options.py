"""The Gemini emulator's knobs (:class:`EmulatorOptions`) and its server-wide resumption handles.

Fault injection lives in the options so every connection sees it at once: a latency on every
message, refusing a resumption while the old connection is open, and exhausted quota (the
production shape: ``setupComplete``, then a close 1011 with the quota sentence).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .state import ModelState

__all__ = ["QUOTA_REASON", "EmulatorOptions", "HandleStore"]

#: The close reason of an exhausted quota (the server cuts it at 123 bytes).
QUOTA_REASON = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


@dataclass(slots=True)
class EmulatorOptions:
    """Knobs for the Gemini emulator.

    Attributes:
        api_key: the only accepted key; ``None`` accepts any non-empty key.
        speed: how much faster than real time answer audio is sent.
        chunk_ms: duration of each audio message.
        response_delay_s: pause before an answer's first output (model latency).
        connection_limit_s: a connection's lifetime (production: about 10 minutes); a
            ``goAway`` comes ``go_away_before_s`` earlier, then a close 1011.
        session_limit_s: without ``contextWindowCompression``, a session (across resumptions)
            ends here (production: 15 minutes of audio).
        resumption_interval_s: how often a ``sessionResumptionUpdate`` may come between turns.
        transparent_index: report ``lastConsumedClientMessageIndex`` when a client asks for it
            (``transparent``); False imitates servers that leave it out.
        message_delay_s: fault injection: delay before every server message.
        record: keep every frame in and out (``frames_in`` / ``frames_out``) for inspection.
        refuse_resume_while_open: refuse (1011) a resumption while the connection it continues
            is still open, as production has been reported to do (aicc2025/sip-to-ai#14).
        quota_exhausted: the account is out of quota: a new connection is set up, then closed
            1011 with :data:`QUOTA_REASON` ``quota_close_after_s`` later; an open one is closed
            ``quota_mid_session_s`` after its next client message.
        thinking_delay_s: extended-thinking models: how long the background reasoning takes
            between the spoken filler and the answer.
    """

    api_key: str | None = None
    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    connection_limit_s: float = 600.0
    go_away_before_s: float = 60.0
    session_limit_s: float = 900.0
    resumption_interval_s: float = 1.0
    transparent_index: bool = True
    message_delay_s: float = 0.0
    record: bool = False
    refuse_resume_while_open: bool = False
    quota_exhausted: bool = False
    quota_close_after_s: float = 1.0
    quota_mid_session_s: float = 0.1
    thinking_delay_s: float = 0.2


class HandleStore:
    """Resumption handles, server-wide: handle -> (state snapshot, model).

    The newest ``capacity`` handles are kept (production keeps them for two hours).
    """

    def __init__(self, capacity: int = 2000) -> None:
        self._handles: dict[str, tuple[ModelState, str]] = {}
        self.capacity = capacity
        self.expired_chains: set[str] = set()
        #: Conversation chains with an open connection (chain -> connections).
        self.open_chains: dict[str, int] = {}

    def put(self, state: ModelState, model: str) -> str:
        handle = secrets.token_urlsafe(32)
        self._handles[handle] = (state.snapshot(), model)
        while len(self._handles) > self.capacity:
            del self._handles[next(iter(self._handles))]
        return handle

    def get(self, handle: str) -> tuple[ModelState, str] | None:
        found = self._handles.get(handle)
        if found is None or found[0].chain in self.expired_chains:
            return None
        return found[0].snapshot(), found[1]

    def __len__(self) -> int:
        return len(self._handles)
