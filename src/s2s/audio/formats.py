"""The audio formats a session can speak with the application, and what each costs in bytes.

* ``pcm16``: 16-bit signed little-endian mono at the session's rate (8-48 kHz), two bytes a
  sample. Every provider takes it (at its own rate; the session resamples).
* ``pcmu``: G.711 mu-law, 8 kHz mono, one byte a sample: what telephony (Twilio, Genesys)
  carries. Providers that take it themselves get it untouched; for the others the session decodes
  it to PCM16 and resamples, and encodes their answers back.

A provider says which formats it takes and emits itself with a class attribute
``audio_formats`` (a frozenset of the names above); :func:`native_formats` reads it, and a
provider that declares nothing takes PCM16 only. No numpy here: this module is imported by every
session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = [
    "AUDIO_FORMATS",
    "PCMU_RATE",
    "AudioFormat",
    "LinkAudio",
    "bytes_per_sample",
    "duration_ms",
    "link_audio",
    "native_formats",
]

AudioFormat = Literal["pcm16", "pcmu"]
#: Every format name, in a stable order (for messages).
AUDIO_FORMATS: Final[tuple[str, ...]] = get_args(AudioFormat)
#: G.711 is 8 kHz audio.
PCMU_RATE: Final = 8000
#: What a provider that declares no ``audio_formats`` takes.
_DEFAULT_NATIVE: Final = frozenset({"pcm16"})
_WIDTH: Final = {"pcm16": 2, "pcmu": 1}


def bytes_per_sample(audio_format: str) -> int:
    """Bytes per mono sample of ``audio_format`` (2 for pcm16, 1 for pcmu).

    Raises:
        ValueError: an unknown format (the message lists the known ones).
    """
    try:
        return _WIDTH[audio_format]
    except KeyError:
        raise ValueError(
            f"unknown audio format {audio_format!r}; known: {', '.join(AUDIO_FORMATS)}"
        ) from None


def duration_ms(n_bytes: int, rate: int, audio_format: str = "pcm16") -> float:
    """Milliseconds of ``n_bytes`` of ``audio_format`` audio at ``rate`` Hz (0 for rate 0)."""
    if rate <= 0:
        return 0.0
    return n_bytes / bytes_per_sample(audio_format) / rate * 1000.0


def native_formats(provider: object) -> frozenset[str]:
    """The formats ``provider`` (a provider class or instance) takes and emits itself."""
    declared = getattr(provider, "audio_formats", None)
    return frozenset(declared) if declared else _DEFAULT_NATIVE


@dataclass(frozen=True, slots=True)
class LinkAudio:
    """The audio a session hands its provider protocol and gets back from it.

    Attributes:
        encoding: ``"pcm16"``, or ``"pcmu"`` when the provider takes mu-law itself.
        input_rate: the rate of the audio the protocol takes, in Hz.
        output_rate: the rate of the AUDIO_OUTPUT audio the protocol emits, in Hz.
    """

    encoding: str
    input_rate: int
    output_rate: int

    @property
    def input_bytes_per_s(self) -> int:
        return self.input_rate * bytes_per_sample(self.encoding)

    def input_ms(self, n_bytes: int) -> float:
        """Milliseconds of ``n_bytes`` of protocol input."""
        return duration_ms(n_bytes, self.input_rate, self.encoding)


def link_audio(audio_format: str, provider: object, input_rate: int, output_rate: int) -> LinkAudio:
    """What a session of ``audio_format`` exchanges with ``provider``, whose PCM16 rates are
    ``input_rate`` / ``output_rate``: the format itself at 8 kHz when the provider takes it
    natively (nothing is converted), else PCM16 at the provider's rates."""
    if audio_format != "pcm16" and audio_format in native_formats(provider):
        return LinkAudio(audio_format, PCMU_RATE, PCMU_RATE)
    return LinkAudio("pcm16", input_rate, output_rate)
