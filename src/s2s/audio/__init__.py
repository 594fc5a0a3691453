"""Audio helpers: streaming resampling, G.711 codecs, WAV files, levels and test speech.

All PCM here is 16-bit signed little-endian mono ("PCM16"), as bytes. :mod:`.formats` names the
formats a session's application side can use (PCM16, G.711 mu-law) and :mod:`.convert` turns a
session's audio into its provider's and back. Submodules load on first use (numpy and soxr cost
~10 MB per process), so a session whose audio needs no conversion never imports them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
    from .level import rms_dbfs
    from .resample import StreamResampler, check_pcm16
    from .wav import read_wav, write_wav

__all__ = [
    "StreamResampler",
    "alaw_to_pcm16",
    "check_pcm16",
    "pcm16_to_alaw",
    "pcm16_to_ulaw",
    "read_wav",
    "rms_dbfs",
    "ulaw_to_pcm16",
    "write_wav",
]

_HOME = {
    "StreamResampler": "resample",
    "check_pcm16": "resample",
    "alaw_to_pcm16": "g711",
    "pcm16_to_alaw": "g711",
    "pcm16_to_ulaw": "g711",
    "ulaw_to_pcm16": "g711",
    "read_wav": "wav",
    "write_wav": "wav",
    "rms_dbfs": "level",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 's2s.audio' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
