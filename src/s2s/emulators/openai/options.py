"""The OpenAI emulator's knobs: :class:`EmulatorOptions`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EmulatorOptions"]


@dataclass(slots=True)
class EmulatorOptions:
    """Knobs for the OpenAI emulator.

    Attributes:
        api_key: the only accepted key; ``None`` accepts any non-empty key.
        speed: how much faster than real time response audio is sent.
        chunk_ms: duration of each ``response.output_audio.delta``.
        response_delay_s: pause between ``response.created`` and the first output (model latency).
        session_limit_s: the session time limit (production: 3600); then ``session_expired``.
        event_delay_s: fault injection: delay before every server event.
        record: keep every frame in and out (``frames_in`` / ``frames_out``) for inspection.
        timing: keep ``time.monotonic()`` of every audio append received (``append_times``) and
            every audio delta sent (``delta_times[item_id]``), for latency benchmarks.
        preamble: answer in two assistant items, a spoken preamble then the answer, as
            gpt-realtime-2 does; ``None`` (default): only for models starting ``gpt-realtime-2``.
        preamble_text: what the preamble item says.
        phase: give those items ``phase: "commentary"`` / ``"final_answer"`` (Azure documents
            it; whether OpenAI sends it is unverified, so off by default).
        fail_responses: fault injection: a provider error code (see
            :data:`~.failures.RESPONSE_FAILURES`) every ``response.create`` fails with after a
            successful handshake. Terminal codes (quota, billing, account, model) answer with an
            ``error`` event and a failed ``response.done``, then close the connection; rate
            limits fail one response (a failed ``response.done``) and the session goes on.
    """

    api_key: str | None = None
    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    session_limit_s: float = 3600.0
    event_delay_s: float = 0.0
    record: bool = False
    timing: bool = False
    preamble: bool | None = None
    preamble_text: str = "Let me check that."
    phase: bool = False
    fail_responses: str | None = None

    def preamble_for(self, model: str) -> bool:
        """True when answers to ``model`` start with a preamble item."""
        return model.startswith("gpt-realtime-2") if self.preamble is None else self.preamble
