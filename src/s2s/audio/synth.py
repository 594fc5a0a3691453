"""Deterministic speech-like audio, for demos, emulators and tests.

Not speech, but it has what voice-activity detectors and codecs care about: voiced syllables
(a harmonic series on a gliding pitch, shaped by two moving formants) separated by short gaps
that are well under any end-of-turn silence. The same arguments always give the same samples.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["silence", "speech_for_text", "speech_like"]

_SECONDS_PER_CHAR = 0.06


def silence(duration_s: float, sample_rate: int) -> bytes:
    """``duration_s`` of digital silence as PCM16."""
    return bytes(int(round(duration_s * sample_rate)) * 2)


def speech_like(
    duration_s: float,
    sample_rate: int,
    *,
    seed: int = 0,
    pitch_hz: float = 140.0,
    level_dbfs: float = -20.0,
) -> bytes:
    """``duration_s`` of speech-like PCM16 at ``sample_rate``, starting and ending in a syllable."""
    total = int(round(duration_s * sample_rate))
    if total <= 0:
        return b""
    rng = np.random.default_rng(seed)
    out = np.zeros(total, dtype=np.float64)
    pos = 0
    while pos < total:
        syllable = int(rng.uniform(0.12, 0.26) * sample_rate)
        syllable = min(syllable, total - pos)
        out[pos : pos + syllable] = _syllable(syllable, sample_rate, rng, pitch_hz)
        pos += syllable
        gap = int(rng.uniform(0.03, 0.12) * sample_rate)
        if pos + gap >= total - int(0.1 * sample_rate):
            break
        pos += gap
    peak_rms = np.sqrt(np.mean(out[out != 0] ** 2)) if np.any(out) else 1.0
    target_rms = 32768.0 * 10 ** (level_dbfs / 20.0)
    out *= target_rms / peak_rms
    return bytes(np.clip(out, -32767, 32767).astype("<i2").tobytes())


@functools.lru_cache(maxsize=256)
def speech_for_text(text: str, sample_rate: int, *, seed: int = 0) -> bytes:
    """Speech-like audio as long as a voice would take to say ``text`` (about 60 ms a letter).

    Cached: emulators say the same sentences again and again.
    """
    duration = max(0.3, len(text) * _SECONDS_PER_CHAR)
    return speech_like(duration, sample_rate, seed=seed or (sum(map(ord, text)) & 0xFFFF))


def _syllable(n: int, rate: int, rng: np.random.Generator, pitch_hz: float) -> np.ndarray:
    t = np.arange(n) / rate
    f0 = pitch_hz * rng.uniform(0.85, 1.2) * (1.0 + rng.uniform(-0.12, 0.12) * t / max(t[-1], 1e-3))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formant1 = rng.uniform(400, 850)
    formant2 = rng.uniform(1100, 2300)
    nyquist = rate / 2
    wave = np.zeros(n)
    for k in range(1, 30):
        freq = k * f0.mean()
        if freq > min(4000.0, nyquist * 0.9):
            break
        gain = np.exp(-(((freq - formant1) / 180.0) ** 2)) + 0.6 * np.exp(
            -(((freq - formant2) / 260.0) ** 2)
        )
        wave += (gain + 0.02) / k**0.5 * np.sin(k * phase)
    envelope = np.clip(np.sin(np.pi * np.arange(n) / max(n - 1, 1)), 0.0, 1.0) ** 0.6
    return np.asarray(wave * envelope)
