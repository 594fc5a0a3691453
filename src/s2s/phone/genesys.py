"""A Genesys Cloud Audio Connector simulator: one AudioHook v2 session, as Genesys runs it.

:meth:`GenesysCall.connect` opens the WebSocket with the AudioHook headers (signed when a client
secret is set; redirects are not followed; no subprotocol), sends ``open`` and returns once a
valid ``opened`` arrived. From then on it streams 200 ms caller frames on a monotonic clock
(μ-law silence unless :meth:`~GenesysCall.say` queued speech), pings 1 s after ``opened``, again
on the first pong and then every ``ping_interval_s``, plays the server's binary audio on a
real-time :class:`~.playout.Playout` (``playback_started``/``playback_completed``), flushes it on
``barge_in``, answers ``pause``/``resume``, and sends ``error`` 429 when bot frames come too fast.

Every server message is checked; a fatal violation is answered like the reference client does
(``error``, then ``close{reason:"error"}``), and every violation is kept in
:attr:`GenesysCall.violations`. The session logic is :mod:`.genesys_core` (sans-I/O), the tasks
and clocks :mod:`.genesys_driver`. A failure of a background task is re-raised from
:meth:`~GenesysCall.wait_for`, :meth:`~GenesysCall.finished` and :meth:`~GenesysCall.hang_up`.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from .genesys_config import CoreConfig
from .genesys_core import GenesysClientCore, Outgoing
from .genesys_driver import GenesysDriver, open_socket
from .genesys_messages import DEFAULT_MEDIA_OFFER
from .genesys_signature import SignatureOptions, audiohook_headers
from .genesys_timeline import GenesysOutcome, GenesysSessionError, GenesysTimeline, OpenedInfo
from .playout import Playout

__all__ = ["GenesysCall", "GenesysCredentials"]

DTMF_DIGITS = frozenset("0123456789*#")


@dataclass(frozen=True, slots=True)
class GenesysCredentials:
    """The integration's credentials; ``client_secret`` in base64, as Genesys stores it."""

    api_key: str
    client_secret: str | None = None


class GenesysCall(GenesysDriver):
    """One simulated Audio Connector session. Make it with :meth:`connect`."""

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        credentials: GenesysCredentials,
        *,
        organization_id: str | None = None,
        conversation_id: str | None = None,
        ani: str = "+15555550100",
        ani_name: str = "",
        dnis: str = "+18005550199",
        input_variables: Mapping[str, str] | None = None,
        language: str = "en-US",
        probe: bool = False,
        media_offer: Sequence[Mapping[str, object]] | None = None,
        open_timeout_s: float = 5.0,
        ping_interval_s: float = 5.0,
        close_timeout_s: float = 10.0,
        max_frames_per_s: float = 5.0,
        retry_after_s: float = 1.0,
        retry_grace_s: float = 0.1,
        playback_completed_on_barge_in: bool = True,
        signature: SignatureOptions | None = None,
        ssl: ssl_module.SSLContext | None = None,
    ) -> GenesysCall:
        """Open the session; returns once a valid ``opened`` arrived.

        Raises :class:`GenesysConnectError` when the upgrade fails (``status`` = HTTP status)
        and :class:`GenesysSessionError` when the session ends before ``opened`` (deadline,
        invalid ``opened``, ``disconnect``).
        """
        session_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        config = CoreConfig(
            session_id=session_id,
            organization_id=organization_id or str(uuid.uuid4()),
            conversation_id=conversation_id or str(uuid.uuid4()),
            participant_id=str(uuid.uuid4()),
            ani=ani,
            ani_name=ani_name,
            dnis=dnis,
            language=language,
            input_variables=dict(input_variables or {}),
            media_offer=tuple(DEFAULT_MEDIA_OFFER if media_offer is None else media_offer),
            probe=probe,
            ping_interval_s=ping_interval_s,
            max_frames_per_s=max_frames_per_s,
            retry_after_s=retry_after_s,
            retry_grace_s=retry_grace_s,
            playback_completed_on_barge_in=playback_completed_on_barge_in,
        )
        headers = audiohook_headers(
            url,
            api_key=credentials.api_key,
            client_secret=credentials.client_secret,
            organization_id=config.organization_id,
            session_id=session_id,
            correlation_id=correlation_id,
            options=signature,
        )
        ws = await open_socket(url, headers, ssl, close_timeout_s)
        call = cls(ws, GenesysClientCore(config), close_timeout_s=close_timeout_s)
        try:
            await call._open(open_timeout_s)
        except BaseException:
            await call.aclose()
            raise
        return call

    async def _open(self, open_timeout_s: float) -> None:
        self._reader = self._spawn(self._read(), "reader")
        await self._send(self._core.open_message())
        core = self._core
        try:
            await self._wait(
                lambda: core.opened is not None or self._closer is not None, open_timeout_s
            )
        except TimeoutError:
            message = f"no 'opened' within {open_timeout_s:g} s of 'open'"
            core.violate(message, fatal=False)
            self._begin_close("error", "error", (408, message))
        if core.opened is not None and (self._closer is None or core.config.probe):
            return
        await self._done.wait()  # the close sequence is bounded by close_timeout_s
        self._raise_failures()
        reason = f"server disconnected ({core.disconnect.reason})" if core.disconnect else "failed"
        raise GenesysSessionError(
            f"session {core.config.session_id} {reason} before 'opened'; violations: "
            f"{core.violations or 'none'}",
            tuple(core.violations),
            self.outcome,
        )

    # -- what tests read -------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._core.config.session_id

    @property
    def config(self) -> CoreConfig:
        return self._core.config

    @property
    def opened(self) -> OpenedInfo:
        if self._core.opened is None:
            raise GenesysSessionError("the session has not been opened")
        return self._core.opened

    @property
    def timeline(self) -> GenesysTimeline:
        return self._core.timeline

    @property
    def violations(self) -> list[str]:
        return self._core.violations

    @property
    def playout(self) -> Playout:
        """The bot audio as the caller heard it: ``playout.played``."""
        return self._core.bot.playout

    async def wait_for(
        self,
        predicate: Callable[[GenesysTimeline], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(timeline)`` holds; re-checked on every timeline change."""
        try:
            await self._wait(lambda: predicate(self.timeline), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"condition not met within {timeout:g} s; violations so far: {self.violations}"
            ) from None
        if not predicate(self.timeline):
            raise GenesysSessionError(
                f"the call ended before the condition was met; violations: {self.violations}",
                tuple(self.violations),
                self.outcome,
            )

    async def finished(self, timeout: float) -> GenesysOutcome:  # noqa: ASYNC109
        """Wait for the end of the session and return how it ended."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"the call was still running after {timeout:g} s") from None
        self._raise_failures()
        assert self.outcome is not None
        return self.outcome

    # -- scripted caller actions -----------------------------------------------------------

    def say_nowait(self, ulaw: bytes) -> None:
        """Queue caller speech (μ-law 8 kHz); it goes out in the next 200 ms frames."""
        if self._core.media is None:
            raise GenesysSessionError("this session streams no audio (probe or media:[])")
        self._core.caller.enqueue(ulaw)

    async def say(self, ulaw: bytes) -> None:
        """Queue caller speech and wait until all of it has been streamed (or dropped)."""
        self.say_nowait(ulaw)
        end = self._core.caller.enqueued
        await self._wait(lambda: self._core.caller.consumed >= end, None)
        if self._core.caller.consumed < end:
            raise GenesysSessionError("the call ended before the caller audio was streamed")

    async def press(self, digit: str) -> None:
        """Send a DTMF digit (``0``-``9``, ``*``, ``#``)."""
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"a DTMF digit is one of 0-9, * or #, got {digit!r}")
        await self._send_live(Outgoing("dtmf", {"digit": digit}))

    async def update_language(self, language: str) -> None:
        await self._send_live(Outgoing("update", {"language": language}))

    async def hold(self, seconds: float) -> None:
        """Put the caller on hold: ``paused``, no audio for ``seconds``, then ``resumed``."""
        await self._apply(self._core.hold_start(time.monotonic()))
        await asyncio.sleep(seconds)
        await self._apply(self._core.hold_end(time.monotonic()))

    async def discard(self, seconds: float) -> None:
        """Drop ``seconds`` of caller audio, then report it with ``discarded{start, discarded}``."""
        self._core.discard_start(time.monotonic())
        await asyncio.sleep(seconds)
        await self._apply(self._core.discard_end(time.monotonic()))

    async def hang_up(self) -> None:
        """The caller hangs up: ``close{reason:"end"}``, wait for ``closed``, close the socket."""
        self._begin_close("end", "caller")
        await self._done.wait()
        self._raise_failures()

    async def __aenter__(self) -> GenesysCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
