"""Read and write PCM16 mono WAV files (stdlib ``wave``)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

__all__ = ["read_wav", "write_wav"]


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Return ``(pcm16_mono, sample_rate)``; stereo files are mixed down to mono.

    Raises:
        InvalidInputError: the file is not 16-bit PCM WAV.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InvalidInputError(f"{path}: not a PCM WAV file: {exc}") from exc
    if width != 2:
        raise InvalidInputError(f"{path}: {8 * width}-bit samples; s2s needs 16-bit PCM")
    if channels > 1:
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.int32)
        frames = samples.mean(axis=1).astype("<i2").tobytes()
    return frames, rate


def write_wav(path: str | Path, pcm: bytes, sample_rate: int) -> None:
    """Write PCM16 mono audio to ``path``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
