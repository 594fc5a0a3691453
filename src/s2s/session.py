"""The live session: pumps a provider protocol over a transport and keeps the call going.

A :class:`Session` owns one provider connection at a time (a *link*: a sans-I/O protocol object
plus its transport). It converts the caller's audio (the session's format and rate, see
``Config.audio_format``) to what the provider takes and the provider's audio back (resampling,
and G.711 mu-law transcoding for providers that do not take mu-law themselves; see
:mod:`s2s.audio.convert`), runs hooks, and hands events to :meth:`Session.recv`.

When the protocol asks for it (a provider time limit, a ``goAway``) or the connection drops with
a retryable error, the session *continues the call*: it builds a new protocol from the old one's
:class:`~s2s.protocol.Continuation`, connects, waits until the new link is ready, and only then
makes it current. Everything the application sends in the meantime is buffered in order and
replayed into the new link, so no caller audio, text or tool result is lost; the application
sees one SESSION_RESUMED event with the measured gap. Buffered input the new link refuses (say, the
result of a tool call the provider cancelled) is reported as an ERROR event after it.

Reconnecting stops when it cannot help: an error that is not retryable (quota, billing, a refused
key, a model that is gone) ends the provider at once, and so do ``reconnect.attempts`` connections
in a row that ended before the provider did anything (providers accept the handshake and then
fail; only real server activity, or a minute of healthy uptime, resets that count). With
``Config.failover`` the call then moves to the next provider the same way, conversation, pending
tool calls and held caller audio included (:mod:`s2s.failover`), and the application sees one
PROVIDER_SWITCHED event with the measured gap.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .audio.convert import AudioIn, AudioOut, check_audio
from .audio.formats import LinkAudio, duration_ms, link_audio
from .config import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Config, ToolResult
from .errors import (
    InvalidInputError,
    ProviderConnectionError,
    ProviderProtocolError,
    S2SError,
    SessionClosedError,
    SessionExpiredError,
)
from .events import EventType, SessionEvent
from .failover import ProviderChain, fails_over
from .hooks import Hooks
from .log import logger, session_id_var
from .protocol import Continuation
from .session_connect import Connecting
from .session_delivery import EventDelivery
from .session_links import Link, SessionStats, Stop, Switch, dispatch
from .session_moves import CallMoves
from .tasks import TaskSet
from .transport import TransportClosed

if TYPE_CHECKING:
    from .engine import Provider

__all__ = ["Session"]

_now = time.monotonic
log = logger.getChild("session")

#: Most caller audio buffered while a connection is being replaced (milliseconds, as sent to
#: the provider).
MAX_SWITCH_BUFFER_MS = 60_000
#: A connection up this long counts as healthy even if the provider said nothing yet.
HEALTHY_UPTIME_S = 60.0
#: Events that prove the provider is really serving the call (not just a handshake).
_ACTIVITY = frozenset(
    {EventType.AUDIO_OUTPUT, EventType.TEXT_OUTPUT, EventType.TRANSCRIPT, EventType.TOOL_CALL}
)


class Session(Connecting, CallMoves, EventDelivery):
    """A live speech-to-speech session. Create it with ``await engine.start()``.

    Use it as an async context manager, or call :meth:`close` when the call ends::

        async with await engine.start() as session:
            await session.send_audio(chunk)
            async for event in session.recv():
                ...

    All ``send_*`` methods raise :class:`~s2s.errors.SessionClosedError` after the session
    closed and :class:`~s2s.errors.InvalidInputError` for bad arguments (the session is then
    unchanged). :meth:`recv` yields events until the session closes; if it closed because of a
    fatal error, :meth:`recv` raises that error after the last event.
    """

    def __init__(
        self,
        provider: Provider,
        config: Config,
        *,
        hooks: Hooks | None = None,
        session_id: str | None = None,
        fallbacks: Sequence[Provider] = (),
    ) -> None:
        self.id = session_id or uuid.uuid4().hex
        self.config = config
        self.stats = SessionStats()
        self._chain = ProviderChain([provider, *fallbacks])
        #: Connections in a row that ended before the provider did anything.
        self._barren = 0
        self._use_provider(provider)
        self._hooks = hooks or Hooks()
        self._queue: asyncio.Queue[SessionEvent | Stop] = asyncio.Queue()
        self._link: Link | None = None
        self._switch: Switch | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._failure: S2SError | None = None
        self._deliver_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._tasks = TaskSet()
        self._last_audio_item: str | None = None
        self._user_text: list[str] = []
        self._assistant_text: list[str] = []
        self._context = contextvars.copy_context()
        self._context.run(session_id_var.set, self.id)

    def _use_provider(self, provider: Provider) -> None:
        """Make ``provider`` the one the session's audio is converted for."""
        self._chain.move_to(provider)
        self._provider = provider
        self.provider = provider.name
        #: What the protocols take and emit: the session's mu-law untouched when the provider
        #: takes it, else PCM16 at the provider's rates.
        self._link_audio = self._link_audio_for(provider)
        self._audio_in = AudioIn(self.config.audio_format, self._link_audio)
        self._audio_out = AudioOut(
            self.config.audio_format, self.config.sample_rate, self._link_audio
        )

    def _link_audio_for(self, provider: Provider) -> LinkAudio:
        return link_audio(
            self.config.audio_format, provider, provider.input_rate, provider.output_rate
        )

    # -- public API -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closing

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        """Send caller audio in the session's format (``config.audio_format``), mono.

        PCM16 may come at any ``sample_rate`` from 8 kHz to 48 kHz (default
        ``config.sample_rate``); it is resampled to the provider's rate by a stateful streaming
        resampler. mu-law (``"pcmu"``) is 8 kHz, any number of bytes; it reaches providers that
        take mu-law untouched and is decoded and resampled for the others. Chunks of 10-100 ms
        suit live audio.
        """
        self._ensure_open("send_audio")
        fmt = self.config.audio_format
        data = check_audio(audio, fmt)
        rate = self.config.sample_rate if sample_rate is None else sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise InvalidInputError(f"sample_rate must be an int in Hz, got {rate!r}")
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise InvalidInputError(
                f"sample_rate={rate} is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
            )
        converted = self._audio_in.process(data, rate)  # checks a mu-law rate even if empty
        self.stats.audio_in_ms += duration_ms(len(data), rate, fmt)
        if converted:
            await self._apply("audio", converted)

    async def send_text(self, text: str) -> None:
        """Send a typed user message; the model answers it."""
        self._ensure_open("send_text")
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError("text is empty")
        await self._apply("text", text)

    async def send_tool_result(self, result: ToolResult) -> None:
        """Answer a TOOL_CALL event. Results survive connection switches."""
        self._ensure_open("send_tool_result")
        if not isinstance(result, ToolResult):
            raise InvalidInputError(
                f"send_tool_result needs a ToolResult, got {type(result).__name__}"
            )
        await self._apply("tool_result", result)

    async def interrupt(self) -> None:
        """Stop the model's current answer and make it forget what the caller did not hear.

        An INTERRUPTED event follows so playback queues can be flushed. While the call moves to a
        new connection after the old one dropped (the drop already cut the old answer), the
        interrupt is held in order with the other input and applied to the new connection.
        """
        self._ensure_open("interrupt")
        link = self._link
        if link is None:
            return
        if link.retired:  # lost: its protocol refuses input, the switch replays it instead
            await self._apply("interrupt", None)
            return
        link.protocol.interrupt(_now())
        await self._after(link)

    async def end_turn(self) -> None:
        """The caller finished speaking: commit their audio and ask for an answer.

        Only needed with manual turn detection (``extra={"turn_detection": "none"}``).
        """
        self._ensure_open("end_turn")
        await self._apply("end_turn", None)

    def report_playback(self, item_id: str, played_ms: int | float) -> None:
        """Tell the session how much of an assistant audio item the caller has heard.

        ``item_id`` comes from AUDIO_OUTPUT events. With reports, an interruption cuts the
        model's memory of its answer exactly where the caller stopped hearing it; without them
        the session estimates by wall clock.
        """
        if not isinstance(item_id, str) or not item_id:
            raise InvalidInputError("report_playback needs the item_id of an AUDIO_OUTPUT event")
        if isinstance(played_ms, bool) or not isinstance(played_ms, (int, float)):
            raise InvalidInputError(f"played_ms must be a number, got {played_ms!r}")
        if played_ms < 0:
            raise InvalidInputError(f"played_ms must be >= 0, got {played_ms}")
        if self._link is not None:
            self._link.protocol.report_playback(item_id, int(played_ms))

    async def recv(self) -> AsyncIterator[SessionEvent]:
        """Yield events until the session closes (raises the fatal error, if one closed it)."""
        while True:
            item = await self._queue.get()
            if isinstance(item, Stop):
                self._queue.put_nowait(item)  # later recv() calls stop too
                if item.error is not None:
                    raise item.error
                return
            yield item

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self.recv()

    def snapshot(self) -> Continuation:
        """The state a new session needs to continue this call (see ``S2S.start(resume=...)``)."""
        if self._link is None:
            return Continuation(provider=self.provider)
        snapshot = self._link.protocol.continuation("snapshot")
        snapshot.provider = self.provider
        return snapshot

    @property
    def idle(self) -> bool:
        """True when no response is in progress and no tool call awaits a result."""
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        """Wait until :attr:`idle` (wrap in ``asyncio.timeout()`` to bound the wait)."""
        await self._idle.wait()

    async def close(self) -> None:
        """End the session politely and release the connection. Safe to call twice."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        links = [link for link in (self._link,) if link is not None]
        for link in links:
            await self._retire(link, polite=True)
        self._cancel_tasks()
        self._queue.put_nowait(Stop(None))
        self._closed.set()
        log.info("session closed")

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the pump ---------------------------------------------------------------------------

    def _ensure_open(self, what: str) -> None:
        if self._closing:
            reason = f": {self._failure}" if self._failure else ""
            raise SessionClosedError(f"{what}() on a closed session{reason}")

    async def _apply(self, op: str, value: Any) -> None:
        """Hand one application input to the current link, or hold it during a switch."""
        switch = self._switch
        if switch is not None:
            if op == "audio":
                limit = MAX_SWITCH_BUFFER_MS * self._link_audio.input_bytes_per_s // 1000
                if switch.audio_bytes + len(value) > limit:  # refused: the buffer is unchanged
                    raise InvalidInputError(
                        f"the provider connection is being replaced and more than "
                        f"{MAX_SWITCH_BUFFER_MS // 1000} s of audio is already waiting; "
                        "retry shortly"
                    )
                switch.audio_bytes += len(value)
            switch.ops.append((op, value))
            return
        link = self._link
        if link is None:
            raise SessionClosedError(f"{op}: the session has no connection")
        dispatch(link.protocol, op, value)
        await self._after(link)

    async def _after(self, link: Link) -> None:
        """Deliver new events, send new frames, and act on the protocol's flags."""
        protocol = link.protocol
        async with self._deliver_lock:
            for event in protocol.events_received():
                if not link.active and event.type in _ACTIVITY:
                    link.active = True
                    self._barren = 0
                await self._deliver(event)
        if link.transport is not None and not link.retired:
            try:
                async with link.send_lock:
                    while frames := protocol.data_to_send():
                        for frame in frames:
                            await link.transport.send(frame)
            except TransportClosed:
                pass  # the read loop sees the close and decides what happens next
        if link.deadline != protocol.deadline:
            link.deadline = protocol.deadline
            link.wake.set()
        if link is not self._link:  # a link being set up
            if link.error is None and protocol.failure is not None:
                link.error = protocol.failure
            if link.error is not None or protocol.ready:
                link.settled.set()
            return
        self._update_idle(link)
        if protocol.failure is not None:
            await self._fail(protocol.failure)
        elif protocol.rotation is not None and self._switch is None and not self._closing:
            reason, protocol.rotation = protocol.rotation, None
            self._begin_switch(link, reason, lost=False)

    def _update_idle(self, link: Link) -> None:
        if link.protocol.idle:
            self._idle.set()
        else:
            self._idle.clear()

    async def _read_loop(self, link: Link) -> None:
        protocol = link.protocol
        assert link.transport is not None
        try:
            while True:
                data = await link.transport.recv()
                protocol.receive_data(data, _now())
                await self._after(link)
        except TransportClosed as closed:
            error = protocol.connection_lost(closed.code, closed.reason, _now())
            fatal = self._link_lost(link, error, closed)  # decided before anything awaits
            await self._after(link)
            if fatal is not None:
                await self._fail(fatal)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a protocol must not hang the call silently
            log.exception("protocol failure")
            error = ProviderProtocolError(
                f"{self.provider}: cannot process a provider message: {exc!r}",
                provider=self.provider,
            )
            link.error = error
            link.settled.set()
            if link is self._link:
                await self._fail(error)

    def _link_lost(
        self, link: Link, error: S2SError | None, closed: TransportClosed
    ) -> S2SError | None:
        """Act on the end of ``link``'s connection; returns the error that ends the session.

        Synchronous on purpose: a retryable loss of the current link starts the switch at once,
        so input the application sends from now on is held for the new link, never handed to
        the lost one (whose protocol refuses it).
        """
        if link.retired or self._closing:
            return None
        if error is None:
            error = ProviderConnectionError(
                f"{self.provider}: the provider closed the connection (code={closed.code})",
                code=str(closed.code) if closed.code is not None else None,
                provider=self.provider,
            )
        if link is not self._link:  # failed during setup: _connect decides
            link.error = link.error or error
            link.settled.set()
            return None
        if not error.retryable:
            return error
        if not link.active and _now() - link.ready_at < HEALTHY_UPTIME_S:
            self._barren += 1
            attempts = link.provider.reconnect.attempts
            if self._barren >= attempts:
                return ProviderConnectionError(
                    f"{link.provider.name}: {self._barren} connections in a row ended before the "
                    f"provider did anything; giving up ({error.message})",
                    code=error.code,
                    provider=link.provider.name,
                    retryable=False,
                )
        reason = "session_expired" if isinstance(error, SessionExpiredError) else "connection_lost"
        log.warning("connection ended (%s); continuing the call on a new one", error)
        self._begin_switch(link, reason, lost=True)
        return None

    async def _timer_loop(self, link: Link) -> None:
        protocol = link.protocol
        while not link.retired:
            link.wake.clear()
            deadline = protocol.deadline
            link.deadline = deadline
            if deadline is not None and deadline <= _now():
                protocol.timer_expired(_now())
                await self._after(link)
                if protocol.deadline == deadline:  # guard against a protocol that did not move it
                    await asyncio.sleep(0.01)
                continue
            timeout = None if deadline is None else deadline - _now()
            try:
                await asyncio.wait_for(link.wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _retire(self, link: Link, *, polite: bool) -> None:
        """Stop using ``link``: say goodbye if ``polite``, close the transport, stop its tasks."""
        if link.transport is not None and polite and not link.retired:
            link.protocol.close(_now())
            try:
                await asyncio.wait_for(self._after(link), 2.0)
            except (TimeoutError, S2SError):
                pass
        link.retired = True
        link.wake.set()
        if link.transport is not None:
            try:
                await asyncio.wait_for(link.transport.close(), 2.0)
            except (TimeoutError, OSError):
                link.transport.abort()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()

    async def _fail(self, error: S2SError) -> None:
        if self._closing:
            return
        if fails_over(error, self._chain):
            self._begin_failover(error)
            return
        self._switch = None
        log.error("session failed: %s", error)
        self._closing = True
        self._failure = error
        if self._link is not None:
            await self._retire(self._link, polite=False)
        self._cancel_tasks()
        self._queue.put_nowait(Stop(error))
        self._closed.set()

    # -- tasks ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], link: Link | None = None) -> None:
        task = self._tasks.spawn(coro, context=self._context)
        if link is not None:
            link.tasks.append(task)

    def _cancel_tasks(self) -> None:
        self._tasks.cancel(spare_current=True)
