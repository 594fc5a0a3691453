"""The simulated Genesys client's rate limiter for bot audio frames (the ``error`` 429).

Genesys publishes no threshold, so the rule is configurable: more than ``max_frames_per_s`` binary
frames inside any sliding ``window_s`` (1 s) draws a 429 with ``retryAfter``. For that long the
server must send no audio; a frame arriving after a short ``grace_s`` (frames already in flight
when the 429 left) counts as "retryAfter ignored". Counting resumes when the window ends.
Sans-I/O: :meth:`FrameRateLimiter.on_frame` takes the arrival time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["FrameRateLimiter", "RateVerdict"]


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """``ok``; ``limit``: send a 429 now; ``ignored``: a frame inside the retryAfter window."""

    kind: Literal["ok", "limit", "ignored"]
    frames_in_window: int = 0


class FrameRateLimiter:
    """Sliding-window frame counter with a retryAfter back-off."""

    def __init__(
        self,
        max_frames_per_s: float,
        retry_after_s: float,
        *,
        grace_s: float = 0.1,
        window_s: float = 1.0,
    ) -> None:
        if max_frames_per_s <= 0 or retry_after_s < 0 or grace_s < 0 or window_s <= 0:
            raise ValueError(
                "rate limiter needs max_frames_per_s > 0, window_s > 0, retry_after_s >= 0 "
                f"and grace_s >= 0; got {max_frames_per_s}, {window_s}, {retry_after_s}, {grace_s}"
            )
        self.max_frames = max_frames_per_s * window_s
        self.retry_after_s = retry_after_s
        self.grace_s = grace_s
        self.window_s = window_s
        self._arrivals: deque[float] = deque()
        self._limited_at: float | None = None

    def backing_off(self, now: float) -> bool:
        """Whether ``now`` is inside the retryAfter window of the last 429."""
        return self._limited_at is not None and now < self._limited_at + self.retry_after_s

    def on_frame(self, now: float) -> RateVerdict:
        """Account for one frame arriving at ``now``."""
        if self._limited_at is not None:
            if now < self._limited_at + self.retry_after_s:
                in_flight = now < self._limited_at + self.grace_s
                return RateVerdict("ok" if in_flight else "ignored")
            self._limited_at = None
        arrivals = self._arrivals
        arrivals.append(now)
        while arrivals and arrivals[0] <= now - self.window_s:
            arrivals.popleft()
        if len(arrivals) > self.max_frames:
            count = len(arrivals)
            arrivals.clear()
            self._limited_at = now
            return RateVerdict("limit", count)
        return RateVerdict("ok", len(arrivals))
