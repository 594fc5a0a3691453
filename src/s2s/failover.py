"""Moving a call to the next provider of ``Config.failover`` (the parts without I/O).

A provider can fail in ways retrying will not fix: quota or billing exhausted, a refused key, a
model that is gone, or reconnect attempts used up. With a failover list the session does not end
then: it continues the call on the next provider. This module holds the decisions and
conversions; :class:`~s2s.session.Session` does the connecting:

* :class:`ProviderChain`: the ordered providers of a session and which one is current.
* :func:`carry_over`: the old connection's :class:`~s2s.protocol.Continuation` made fit for
  another provider (its conversation and unanswered caller audio, converted to the new
  provider's format; never the old provider's own state, such as a resumption handle).
* :class:`AudioCarrier`: caller audio held for the old provider's format, converted to the new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .audio.convert import AudioIn
from .audio.formats import LinkAudio
from .errors import ProviderError, S2SError
from .protocol import Continuation

if TYPE_CHECKING:
    from .engine import Provider

__all__ = ["AudioCarrier", "ProviderChain", "carry_over", "fails_over"]


class ProviderChain:
    """The providers a session may use, in order, and the one in use."""

    __slots__ = ("_index", "_providers")

    def __init__(self, providers: Sequence[Provider]) -> None:
        if not providers:
            raise ValueError("a session needs at least one provider")
        self._providers = list(providers)
        self._index = 0

    @property
    def current(self) -> Provider:
        return self._providers[self._index]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._providers]

    def remaining(self) -> list[Provider]:
        """The providers after the current one, in order."""
        return self._providers[self._index + 1 :]

    def move_to(self, provider: Provider) -> None:
        """Make ``provider`` (one of the chain's) the current one."""
        self._index = self._providers.index(provider)

    def find(self, name: str) -> Provider | None:
        return next((p for p in self._providers if p.name == name), None)


def fails_over(error: S2SError, chain: ProviderChain) -> bool:
    """True when ``error`` ended the current provider and another one is left to try.

    Every provider error that reaches the session's end is one retrying did not (or cannot) fix:
    the session only ends a call on a retryable error after its reconnect attempts ran out.
    Errors that are not the provider's (bad input, a closed session) never move a call.
    """
    return isinstance(error, ProviderError) and bool(chain.remaining())


class AudioCarrier:
    """Converts caller audio held in one link's format to another link's format."""

    __slots__ = ("_convert", "_source")

    def __init__(self, source: LinkAudio, target: LinkAudio) -> None:
        self._source = source
        self._convert = AudioIn(source.encoding, target)

    def convert(self, audio: bytes) -> bytes:
        if not audio:
            return b""
        return self._convert.process(audio, self._source.input_rate)

    def flush(self) -> bytes:
        """The resampler's tail: send it after the last converted chunk so nothing is lost."""
        resampler = self._convert.resampler
        return resampler.flush() if resampler is not None else b""


def carry_over(carry: Continuation, carrier: AudioCarrier) -> Continuation:
    """What the next provider continues from: the conversation and the caller audio the old
    provider had not committed (converted), without the old provider's own state."""
    return Continuation(
        conversation=carry.conversation.copy(),
        pending_audio=carrier.convert(carry.pending_audio),
        state={},
        reason="failover",
    )
