"""G.711 mu-law and A-law codecs (ITU-T G.711), vectorised with numpy.

Telephony media (Twilio, Telnyx, Plivo, Genesys, SIP/RTP) arrives as 8 kHz G.711. Decode it to
PCM16 and send it with ``sample_rate=8000``; encode the session's 8 kHz output back.
The tables match the reference implementation (and CPython's former ``audioop``) bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["alaw_to_pcm16", "pcm16_to_alaw", "pcm16_to_ulaw", "ulaw_to_pcm16"]

_ULAW_BIAS = 0x84
_ULAW_BIAS14 = 0x21
_ULAW_CLIP14 = 8159


def _build_ulaw_decode() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype("<i2")


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype("<i2")


def _segment(magnitude: np.ndarray, limits: np.ndarray) -> np.ndarray:
    return np.searchsorted(limits, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> np.ndarray:
    # 14-bit reference algorithm (arithmetic shift first), as in the ITU/Sun reference code.
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP14) + _ULAW_BIAS14
    segment = _segment(magnitude, np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]))
    code = np.where(
        segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    )
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1) >> 3
    segment = _segment(magnitude, np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]))
    mantissa = np.where(
        segment < 2, (magnitude >> 1) & 0x0F, (magnitude >> np.maximum(segment, 1)) & 0x0F
    )
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


_ULAW_TO_PCM = _build_ulaw_decode()
_ALAW_TO_PCM = _build_alaw_decode()
_PCM_TO_ULAW = _build_ulaw_encode()
_PCM_TO_ALAW = _build_alaw_encode()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes to PCM16 (two bytes out per byte in)."""
    return bytes(_ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].tobytes())


def alaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 A-law bytes to PCM16 (two bytes out per byte in)."""
    return bytes(_ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].tobytes())


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode PCM16 to G.711 mu-law (one byte per sample)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768
    return bytes(_PCM_TO_ULAW[samples].tobytes())


def pcm16_to_alaw(pcm: bytes) -> bytes:
    """Encode PCM16 to G.711 A-law (one byte per sample)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768
    return bytes(_PCM_TO_ALAW[samples].tobytes())
