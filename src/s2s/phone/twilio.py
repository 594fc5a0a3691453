"""A Twilio simulator: places an inbound call on a voice webhook and streams it like Twilio.

:meth:`TwilioCall.place` POSTs the signed voice webhook, reads the ``<Connect><Stream>`` TwiML,
opens the stream's WebSocket (signed over the exact ``ws(s)://`` URL, query string dropped, no
subprotocol), sends ``connected`` and ``start`` and then caller ``media`` every 20 ms from a
monotonic clock: the audio given to :meth:`TwilioCall.say`, μ-law silence otherwise.

Server messages are checked strictly; what Twilio would refuse is recorded in
:attr:`TwilioCall.violations` (31950/31951) and the call goes on. Server audio goes into a
:class:`~s2s.phone.playout.Playout`; marks are echoed when the play cursor passes them, and a
``clear`` echoes every pending mark. Everything lands in :attr:`TwilioCall.timeline`.

The call ends when the caller hangs up (``stop``, then close) or when the server closes the
socket; then the TwiML after ``</Connect>`` runs (``<Redirect>``, ``<Dial>``, ``<Hangup/>``,
``<Say>``) and :meth:`TwilioCall.finished` returns the :class:`CallOutcome`. A failure of a
background task is re-raised from :meth:`~TwilioCall.finished` and :meth:`~TwilioCall.wait_for`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Literal

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..audio import check_pcm16, pcm16_to_ulaw, ulaw_to_pcm16
from . import twilio_messages as wire
from .playout import Playout
from .twilio_changes import Changes
from .twilio_errors import CallEndedError, SimulatorTaskError, TwilioError
from .twilio_media import CallerAudio, Delivery
from .twilio_stream import open_stream
from .twilio_timeline import (
    AudioReceived,
    CallOutcome,
    ClearReceived,
    DtmfSent,
    MarkEcho,
    MarkReceived,
    StopSent,
    StreamClosed,
    Timeline,
    Violation,
)
from .twilio_twiml import ConnectStream, Say, parse_connect
from .twilio_webhook import call_params, fetch_twiml, run_after_connect

__all__ = ["TwilioAccount", "TwilioCall"]


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    account_sid: str
    auth_token: str


class TwilioCall:
    """One simulated inbound call over a Twilio Media Stream. Make it with :meth:`place`."""

    def __init__(
        self,
        *,
        account: TwilioAccount,
        call_sid: str,
        voice_url: str,
        from_: str,
        to: str,
        twiml: str,
        connect: ConnectStream,
        http: httpx.AsyncClient,
        delivery: Delivery,
    ) -> None:
        self.account = account
        self.call_sid = call_sid
        self.voice_url = voice_url
        self.from_ = from_
        self.to = to
        #: The voice webhook's answer, and what was read from it.
        self.twiml = twiml
        self.connect = connect
        self.stream_url = connect.url
        self.parameters = dict(connect.parameters)
        self.stream_sid = wire.new_sid("MZ")
        self.timeline = Timeline()
        #: The bot audio as the caller heard it: ``playout.played``.
        self.playout = Playout(8.0)
        self._http = http
        self._caller = CallerAudio(delivery)
        self._ws: ClientConnection | None = None
        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._started = False
        self._closing = False
        self._hanging_up = False
        self._changes = Changes()
        self._wake_marks = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._receiver: asyncio.Task[None] | None = None

    # -- placing the call ------------------------------------------------------------------

    @classmethod
    async def place(
        cls,
        voice_url: str,
        *,
        auth_token: str,
        from_: str = "+15555550100",
        to: str = "+18005550199",
        account_sid: str | None = None,
        call_sid: str | None = None,
        gaps: bool = False,
        bursts: bool = False,
        start_delay: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
    ) -> TwilioCall:
        """Call ``voice_url``; returns once ``start`` was sent and caller media flows.

        ``gaps``: leave out silence frames now and then (timestamps jump), like a carrier with
        silence suppression. ``bursts``: deliver a few frames at once now and then.
        ``start_delay``: seconds between ``connected`` and ``start`` (server messages in that
        window are violations). ``ssl_context``: trust for https/wss (default: system CAs).
        ``connect_timeout``: seconds for each webhook request and for the WebSocket upgrade.
        """
        account = TwilioAccount(account_sid or wire.new_sid("AC"), auth_token)
        sid = call_sid or wire.new_sid("CA")
        http = httpx.AsyncClient(
            timeout=connect_timeout, verify=ssl_context or True, follow_redirects=False
        )
        call: TwilioCall | None = None
        try:
            params = call_params(
                account_sid=account.account_sid, call_sid=sid, from_=from_, to=to, status="ringing"
            )
            twiml = await fetch_twiml(
                http, voice_url, method="POST", params=params, auth_token=auth_token
            )
            call = cls(
                account=account,
                call_sid=sid,
                voice_url=voice_url,
                from_=from_,
                to=to,
                twiml=twiml,
                connect=parse_connect(twiml, voice_url),
                http=http,
                delivery=Delivery(gaps=gaps, bursts=bursts),
            )
            await call._open(ssl_context, connect_timeout, start_delay)
        except BaseException:
            if call is not None:
                await call.aclose()
            else:
                await http.aclose()
            raise
        return call

    async def _open(self, ssl_context: ssl.SSLContext | None, limit: float, delay: float) -> None:
        self._ws = await open_stream(
            self.stream_url,
            auth_token=self.account.auth_token,
            ssl_context=ssl_context,
            open_timeout=limit,
        )
        self._receiver = self._spawn("receiver", self._receive())
        await self._ws.send(wire.connected())
        if delay > 0:
            await asyncio.sleep(delay)
        # From here on the server may know the streamSid: its messages are checked against it.
        self._started = True
        self.timeline.started_at = time.monotonic()
        account, params = self.account.account_sid, self.parameters
        await self._send(wire.start, self.stream_sid, account, self.call_sid, params)
        self._spawn("sender", self._send_media())
        self._spawn("marks", self._echo_marks())
        self._changed()

    # -- background tasks ------------------------------------------------------------------

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(name, coro), name=f"twilio-{name}")
        self._tasks.append(task)
        return task

    async def _guard(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, TwilioError):
                self._changes.fail(exc)
            else:
                failure = SimulatorTaskError(f"the {name} task failed: {exc!r}")
                failure.__cause__ = exc
                self._changes.fail(failure)
            # The simulator ends the stream: the close is ours, no TwiML runs after it.
            self._closing = self._hanging_up = True
            if self._ws is not None:
                await self._ws.close(1011, "simulator failure")

    def _changed(self) -> None:
        self._changes.notify()

    async def _send[**P](
        self, build: Callable[Concatenate[int, P], str], *args: P.args, **kwargs: P.kwargs
    ) -> bool:
        """Send the message ``build(sequenceNumber, ...)``; False once the stream is ending."""
        assert self._ws is not None
        async with self._send_lock:
            if self._closing:
                return False
            text = build(self._seq + 1, *args, **kwargs)
            try:
                await self._ws.send(text)
            except ConnectionClosed:
                return False
            self._seq += 1
            return True

    async def _send_media(self) -> None:
        started = self.timeline.started_at
        assert started is not None
        slot = 0
        chunk = 0
        while not self._closing:
            slot += 1
            delay = started + slot * wire.FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for timestamp, frame, caller_bytes in self._caller.frames(slot):
                if not await self._send(wire.media, self.stream_sid, chunk + 1, timestamp, frame):
                    return
                chunk += 1
                self._caller.sent(caller_bytes)
                self.timeline.frames_sent += 1
                self.timeline.caller_bytes_sent += caller_bytes
            self._changed()

    async def _echo(self, name: str, played: bool) -> None:
        if await self._send(wire.mark_echo, self.stream_sid, name):
            self.timeline.record(MarkEcho(time.monotonic(), name, played))
            self._changed()

    async def _echo_marks(self) -> None:
        while not self._closing:
            self._wake_marks.clear()
            for name in self.playout.advance(time.monotonic()):
                await self._echo(name, True)
            due = self.playout.next_due(time.monotonic())
            wait = None if due is None else max(0.0, due - time.monotonic())
            try:
                async with asyncio.timeout(wait):
                    await self._wake_marks.wait()
            except TimeoutError:
                pass

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                await self._on_frame(frame)
        except ConnectionClosed:
            pass
        await self._on_closed()

    async def _on_frame(self, frame: str | bytes) -> None:
        now = time.monotonic()
        try:
            message = wire.parse_server_message(frame, self.stream_sid if self._started else None)
        except wire.MessageRejected as exc:
            self.timeline.record(Violation(now, exc.code, exc.reason, wire.excerpt(frame)))
            self._changed()
            return
        match message:
            case wire.ServerMedia(audio):
                self.playout.push_audio(audio, now)
                self.timeline.record(AudioReceived(now, audio))
            case wire.ServerMark(name):
                self.timeline.record(MarkReceived(now, name))
                for due in self.playout.push_mark(name, now):
                    await self._echo(due, True)
            case wire.ServerClear():
                cleared = self.playout.clear(now)
                for name in cleared.passed_marks:
                    await self._echo(name, True)
                self.timeline.record(
                    ClearReceived(now, cleared.discarded_ms, cleared.pending_marks)
                )
                for name in cleared.pending_marks:
                    await self._echo(name, False)
        self._wake_marks.set()
        self._changed()

    async def _on_closed(self) -> None:
        assert self._ws is not None
        now = time.monotonic()
        self._closing = True
        self._wake_marks.set()
        self.playout.advance(now)
        code, reason = self._ws.close_code, self._ws.close_reason or ""
        by: Literal["caller", "server"] = "caller" if self._hanging_up else "server"
        self.timeline.record(StreamClosed(now, by, code, reason))
        if by == "server" and code in (None, 1006):
            reason = "the server dropped the socket without a close handshake"
            self.timeline.record(Violation(now, 31903, reason, ""))
        self._changed()
        if self._changes.failure is not None:
            return  # the simulator failed: finished() raises that failure
        said = tuple(verb.text for verb in self.connect.before if isinstance(verb, Say))
        if by == "caller":
            outcome = CallOutcome("caller", None, True, said, code)
        else:
            params = call_params(
                account_sid=self.account.account_sid,
                call_sid=self.call_sid,
                from_=self.from_,
                to=self.to,
                status="in-progress",
            )
            outcome = await run_after_connect(
                self._http,
                self.connect.after,
                params=params,
                auth_token=self.account.auth_token,
                said=said,
                close_code=code,
            )
        self.timeline.outcome = outcome
        self._changed()

    # -- driving the call ------------------------------------------------------------------

    @property
    def violations(self) -> list[Violation]:
        return self.timeline.violations

    def say_nowait(self, ulaw: bytes) -> None:
        """Queue caller audio (μ-law 8 kHz); it replaces silence in the next frames."""
        if self._closing:
            raise CallEndedError("the call has ended: no more caller audio can be sent")
        self._caller.push(ulaw)

    async def say(self, ulaw: bytes) -> None:
        """Queue caller audio and return once all of it was sent, at real time."""
        self.say_nowait(ulaw)
        target = self._caller.queued
        await self._until(lambda: self._caller.sent_total >= target, None, "caller audio sent")

    async def say_pcm16(self, pcm: bytes) -> None:
        """:meth:`say` for 8 kHz PCM16 (encoded with :func:`s2s.audio.pcm16_to_ulaw`)."""
        await self.say(pcm16_to_ulaw(check_pcm16(pcm, what="caller audio")))

    def heard_pcm16(self) -> bytes:
        """The bot audio the caller heard so far (``playout.played``), as 8 kHz PCM16."""
        return ulaw_to_pcm16(bytes(self.playout.played))

    async def press(self, digit: str) -> None:
        """Send a ``dtmf`` message for ``digit`` (0-9, * or #) between media frames."""
        if digit not in wire.DTMF_DIGITS:
            raise ValueError(f"DTMF digit must be one of 0-9, * or #, got {digit!r}")
        if not await self._send(wire.dtmf, self.stream_sid, digit):
            raise CallEndedError(f"the call has ended: DTMF {digit!r} was not sent")
        self.timeline.record(DtmfSent(time.monotonic(), digit))
        self._changed()

    async def hang_up(self) -> None:
        """The caller hangs up: send ``stop``, close the socket, wait for the call to end.

        Twilio does the same when the call is ended over REST (``Status=completed``).
        """
        if self._ws is None or self._closing:
            return
        account, call = self.account.account_sid, self.call_sid
        self._hanging_up = True
        if await self._send(wire.stop, self.stream_sid, account, call):
            self.timeline.record(StopSent(time.monotonic()))
            self._changed()
        self._closing = True  # no await since the stop went out: nothing follows it
        await self._ws.close(1000)
        if self._receiver is not None:
            await asyncio.wait({self._receiver})

    # The tests and the CLI drive these with an explicit timeout (the brief's API).
    async def wait_for(
        self,
        predicate: Callable[[Timeline], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(timeline)`` holds; re-checked on every timeline change.

        Raises TimeoutError after ``timeout`` seconds, :class:`CallEndedError` if the call ended
        without it, and the failure of a background task if one failed.
        """
        await self._until(lambda: predicate(self.timeline), timeout, "the condition")

    async def finished(self, timeout: float) -> CallOutcome:  # noqa: ASYNC109
        """Wait until the stream ended and the TwiML after ``</Connect>`` ran."""
        await self._until(lambda: self.timeline.outcome is not None, timeout, "the end of the call")
        assert self.timeline.outcome is not None
        return self.timeline.outcome

    async def _until(self, check: Callable[[], bool], limit: float | None, what: str) -> None:
        def over() -> bool:
            receiver = self._receiver
            return self.timeline.outcome is not None or (receiver is not None and receiver.done())

        try:
            await self._changes.until(check, limit=limit, what=what, over=over)
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc} (call {self.call_sid}: {len(self.timeline.entries)} timeline entries,"
                f" closed={self.timeline.closed})"
            ) from None

    # -- teardown --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Hang up if the call is live, then stop every background task and close clients."""
        try:
            if self._started and not self._closing:
                async with asyncio.timeout(5.0):
                    await self.hang_up()
        except (TimeoutError, OSError, ConnectionClosed):
            pass
        finally:
            self._closing = True
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._ws is not None:
                await self._ws.close()
            await self._http.aclose()

    async def __aenter__(self) -> TwilioCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
