"""The GPT-Live emulator's knobs: :class:`LiveEmulatorOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LiveEmulatorOptions"]


@dataclass(slots=True)
class LiveEmulatorOptions:
    """Knobs for the GPT-Live emulator.

    Attributes:
        api_key: the only accepted key; ``None`` accepts any non-empty key.
        answer_after_ms: silence after the caller's speech before the model answers.
        barge_in_ms: caller speech over the model this long makes the model stop by itself.
        response_delay_s: model latency: timeline silence before each answer starts.
        fragment_ms: about how much speech one transcript fragment covers.
        usage_interval_ms: timeline between ``session.usage.updated`` events.
        session_limit_s: wall-clock session limit; then ``session.closed{reason:"expired"}``.
        utterances: what the caller says, in order (one text per utterance); when it runs out,
            an utterance is heard as ``[N.N seconds of speech]``. ``call <tool> {json}`` in an
            utterance makes the model delegate that tool call.
        backend_model: the Responses model reported when the session names none.
        event_delay_s: fault injection: delay before every server event.
        record: keep every frame in and out (``frames_in`` / ``frames_out``) for inspection.
        failure: a :data:`~.server.FAILURES` name sent to every session right after it starts.
    """

    api_key: str | None = None
    answer_after_ms: float = 600.0
    barge_in_ms: float = 1200.0
    response_delay_s: float = 0.0
    fragment_ms: float = 200.0
    usage_interval_ms: float = 1000.0
    session_limit_s: float = 3600.0
    utterances: list[str] = field(default_factory=list)
    backend_model: str = "gpt-5.6-luna"
    event_delay_s: float = 0.0
    record: bool = False
    failure: str | None = None
