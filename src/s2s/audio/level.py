"""Signal level measurement for PCM16."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rms_dbfs"]

SILENCE_DBFS = -120.0


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 audio in dB relative to full scale (-120 for digital silence)."""
    if len(pcm) < 2:
        return SILENCE_DBFS
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float64)
    mean_square = float(np.mean(samples * samples))
    if mean_square <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square / (32768.0 * 32768.0)))
