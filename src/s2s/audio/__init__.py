"""Audio helpers: streaming resampling, G.711 codecs, WAV files, levels and test speech.

All PCM here is 16-bit signed little-endian mono ("PCM16"), as bytes.
"""

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
