"""The caller side of a Twilio stream: which 20 ms frames go out at each clock slot (sans-I/O).

Slot ``k`` (1, 2, ...) is due ``k × 20 ms`` after ``start``; its frame carries the audio of
``[(k-1)·20, k·20)`` ms, so ``media.timestamp`` is ``(k-1)·20``. A frame holds the next 160
bytes of queued caller audio, padded with μ-law silence (``0xFF``), or silence alone.

:class:`Delivery` adds the network's habits: ``gaps`` leaves out silence frames after every
``gap_after_ms`` of silence for ``gap_ms`` (no frames, the next timestamp jumps; caller audio
ends a gap at once), and ``bursts`` holds frames back and delivers ``burst_frames`` of them at
once every ``burst_every`` slots (timestamps unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

from .twilio_messages import FRAME_BYTES, FRAME_MS

__all__ = ["SILENCE", "CallerAudio", "Delivery", "Frame"]

#: μ-law silence.
SILENCE = 0xFF

#: (media.timestamp in ms, 160 bytes of μ-law, how many of them are caller audio).
Frame = tuple[int, bytes, int]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How caller frames reach the server."""

    gaps: bool = False
    bursts: bool = False
    gap_after_ms: int = 1000
    gap_ms: int = 400
    burst_every: int = 25
    burst_frames: int = 3

    def __post_init__(self) -> None:
        if self.gap_after_ms < 0 or self.gap_ms < FRAME_MS:
            raise ValueError(f"Delivery gaps need gap_after_ms >= 0 and gap_ms >= {FRAME_MS}")
        if not 1 <= self.burst_frames <= self.burst_every:
            raise ValueError("Delivery needs 1 <= burst_frames <= burst_every")


class CallerAudio:
    """Queued caller audio, cut into frames slot by slot."""

    __slots__ = (
        "_buffer",
        "_delivery",
        "_gap_left_ms",
        "_held",
        "_silence_ms",
        "queued",
        "sent_total",
    )

    def __init__(self, delivery: Delivery | None = None) -> None:
        self._delivery = delivery or Delivery()
        self._buffer = bytearray()
        self._held: list[Frame] = []
        self._silence_ms = 0
        self._gap_left_ms = 0
        #: Caller audio bytes queued so far, and sent so far (counted by :meth:`sent`).
        self.queued = 0
        self.sent_total = 0

    def push(self, ulaw: bytes) -> None:
        self._buffer += ulaw
        self.queued += len(ulaw)

    def sent(self, caller_bytes: int) -> None:
        """Count ``caller_bytes`` of caller audio as sent."""
        self.sent_total += caller_bytes

    def frames(self, slot: int) -> list[Frame]:
        """The frames to send now, at slot ``slot`` (none, one, or a burst)."""
        delivery = self._delivery
        audio = bytes(self._buffer[:FRAME_BYTES])
        del self._buffer[:FRAME_BYTES]
        if audio:
            self._silence_ms = self._gap_left_ms = 0
        elif delivery.gaps:
            if self._gap_left_ms > 0:
                self._gap_left_ms -= FRAME_MS
                return []
            if self._silence_ms >= delivery.gap_after_ms:
                self._silence_ms = 0
                self._gap_left_ms = delivery.gap_ms - FRAME_MS
                return []
            self._silence_ms += FRAME_MS
        frame = audio + bytes([SILENCE]) * (FRAME_BYTES - len(audio))
        self._held.append(((slot - 1) * FRAME_MS, frame, len(audio)))
        every = delivery.burst_every
        if delivery.bursts and slot % every > every - delivery.burst_frames:
            return []
        out, self._held = self._held, []
        return out
