"""Converting a session's audio between the application's format and its provider's.

:class:`AudioIn` turns the application's audio into what the provider protocol takes, and
:class:`AudioOut` turns the protocol's AUDIO_OUTPUT audio into the application's format. Each is
one stateful stream (the resamplers keep filter state across chunks):

* PCM16 sessions resample between the application's rate and the provider's, as before.
* mu-law sessions with a provider that takes mu-law itself pass bytes through untouched: no
  decoding, no resampler (:attr:`AudioIn.resampler` and :attr:`AudioOut.resampler` stay
  ``None``).
* mu-law sessions with any other provider decode to 8 kHz PCM16 and resample on the way in, and
  resample to 8 kHz and encode on the way out.

Sans-I/O: no clock, no sockets. numpy and soxr load only when something is really converted.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInputError
from .formats import PCMU_RATE, LinkAudio
from .resample import StreamResampler, check_pcm16

__all__ = ["AudioIn", "AudioOut", "check_audio"]


def check_audio(data: object, audio_format: str) -> bytes:
    """``data`` as bytes if it is audio of ``audio_format``, else raise.

    PCM16 must have an even number of bytes; mu-law has one byte a sample, so any length works.

    Raises:
        InvalidInputError: not bytes-like, or (PCM16) an odd number of bytes.
    """
    if audio_format == "pcm16":
        return check_pcm16(data)
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if not isinstance(data, bytes):
        raise InvalidInputError(f"audio must be {audio_format} bytes, got {type(data).__name__}")
    return data


class AudioIn:
    """The application's audio (``audio_format`` at ``rate`` Hz) -> the protocol's input."""

    __slots__ = ("_decode", "audio_format", "link", "resampler")

    def __init__(self, audio_format: str, link: LinkAudio) -> None:
        self.audio_format = audio_format
        self.link = link
        #: The current resampler (None until one is needed; never for a native format).
        self.resampler: StreamResampler | None = None
        self._decode: Callable[[bytes], bytes] | None = None
        if audio_format == "pcmu" and link.encoding == "pcm16":
            from .g711 import ulaw_to_pcm16  # numpy: loaded only when transcoding

            self._decode = ulaw_to_pcm16

    def process(self, audio: bytes, rate: int) -> bytes:
        """Convert the next chunk (already checked with :func:`check_audio`).

        A PCM16 chunk at a new ``rate`` flushes the previous rate's resampler first, so no
        audio is lost when the rate changes mid-call.

        Raises:
            InvalidInputError: mu-law audio at a rate other than 8 kHz.
        """
        if self.audio_format == "pcmu" and rate != PCMU_RATE:
            raise InvalidInputError(
                f"mu-law (pcmu) audio is 8000 Hz; sample_rate={rate} is not possible"
            )
        if not audio:
            return b""
        if self.link.encoding == self.audio_format and self.audio_format != "pcm16":
            return audio  # the provider takes it as it is
        if self._decode is not None:
            audio = self._decode(audio)
        out = b""
        if self.resampler is None or self.resampler.in_rate != rate:
            if self.resampler is not None:
                out = self.resampler.flush()
            self.resampler = StreamResampler(rate, self.link.input_rate)
        return out + self.resampler.process(audio)


class AudioOut:
    """The protocol's AUDIO_OUTPUT audio -> the application's format at ``rate`` Hz."""

    __slots__ = ("_encode", "audio_format", "link", "rate", "resampler")

    def __init__(self, audio_format: str, rate: int, link: LinkAudio) -> None:
        self.audio_format = audio_format
        self.rate = rate
        self.link = link
        self._encode: Callable[[bytes], bytes] | None = None
        if audio_format == "pcmu" and link.encoding == "pcm16":
            from .g711 import pcm16_to_ulaw  # numpy: loaded only when transcoding

            self._encode = pcm16_to_ulaw
        #: None when the provider's audio already is in the application's format and rate.
        self.resampler: StreamResampler | None = None
        if link.encoding == "pcm16" and link.output_rate != rate:
            self.resampler = StreamResampler(link.output_rate, rate)

    @property
    def passthrough(self) -> bool:
        """True when the protocol's audio goes to the application untouched."""
        return self.resampler is None and self._encode is None

    def process(self, audio: bytes) -> bytes:
        """Convert the next chunk (may return less while a resampler fills)."""
        if self.resampler is not None:
            audio = self.resampler.process(audio)
        return self._encoded(audio)

    def flush(self) -> bytes:
        """What the resampler still holds, converted (at the end of an answer)."""
        if self.resampler is None:
            return b""
        return self._encoded(self.resampler.flush())

    def reset(self) -> None:
        """Drop what the resampler holds (the answer was cut)."""
        if self.resampler is not None:
            self.resampler.reset()

    def _encoded(self, pcm: bytes) -> bytes:
        if self._encode is None or not pcm:
            return pcm
        return self._encode(pcm)
