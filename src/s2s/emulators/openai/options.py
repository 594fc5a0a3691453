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
    """

    api_key: str | None = None
    speed: float = 4.0
    chunk_ms: int = 100
    response_delay_s: float = 0.0
    session_limit_s: float = 3600.0
    event_delay_s: float = 0.0
    record: bool = False
    timing: bool = False
