"""The phone benchmark's callers: lean Twilio Media Streams clients on the shared pacer.

:func:`twilio_caller` places one inbound call the way Twilio does: the voice webhook POST signed
with the auth token (``X-Twilio-Signature``, Twilio's own ``RequestValidator``), the TwiML's
``<Connect><Stream>``, the stream's WebSocket signed over its ``ws://`` URL, ``connected`` and
``start`` with the TwiML's ``<Parameter>``s, then one ``media`` (160 bytes of μ-law) per
:class:`~benchmarks.load.Pacer` tick, and ``stop`` at the end. Bot audio is played on a
real-time clock (:class:`~s2s.phone.playout.Playout`) and each ``mark`` is echoed once the audio
before it has played (or at once on ``clear``), on the next tick: no wakeups of its own while frames
flow, so N calls cost the load generator one wakeup per 20 ms, like the other callers.

The wire messages and the webhook, TwiML and stream helpers are :mod:`s2s.phone`'s (the Twilio
simulator's), so the calls are what :class:`s2s.phone.TwilioCall` would send. The simulator
itself runs a clock, a mark task and a timeline per call, and stamps no frame; this caller
stamps every frame it sends and every ``media`` it receives, for the latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from s2s.phone import twilio_messages as wire
from s2s.phone.playout import Playout
from s2s.phone.twilio_errors import TwilioError
from s2s.phone.twilio_stream import open_stream
from s2s.phone.twilio_twiml import parse_connect
from s2s.phone.twilio_webhook import call_params, fetch_twiml

from .load import Caller, Pacer

#: Waits until caller ``index``'s session is up; False if it never came.
Ready = Callable[[int], Awaitable[bool]]
#: Seconds after the last frame to keep listening (the last answers still arriving).
TAIL_S = 1.5


@dataclass
class PhoneCaller(Caller):
    """A caller's stamps, and what the stream's server sent it."""

    segments: list[tuple[float, bytes]] = field(default_factory=list)
    """(monotonic time received, μ-law) of every ``media`` message."""
    marks: int = 0
    """Marks the server sent."""
    echoes: int = 0
    """Marks echoed back: played out, or discarded by a ``clear``."""
    clears: int = 0


class _Stream:
    """One call's Media Stream: media per pacer tick, bot audio played out, marks echoed."""

    def __init__(self, ws: ClientConnection, caller: PhoneCaller, stream_sid: str) -> None:
        self.ws = ws
        self.caller = caller
        self.sid = stream_sid
        self.seq = 0  # sequenceNumber of the last message sent (start is 1)
        self.chunk = 0
        self.playout = Playout(8.0)
        self.due: list[str] = []  # marks to echo on the next tick

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def send(self, frame: bytes) -> None:
        """One pacer tick: the caller's next 20 ms, then the echoes of marks that fell due."""
        self.chunk += 1
        message = wire.media(self.next_seq(), self.sid, self.chunk, (self.chunk - 1) * 20, frame)
        await self.ws.send(message)
        await self.echo_due()

    async def echo_due(self) -> None:
        """Echo the marks whose audio has played out (or that a ``clear`` discarded)."""
        due, self.due = self.due + self.playout.advance(time.monotonic()), []
        for name in due:
            await self.ws.send(wire.mark_echo(self.next_seq(), self.sid, name))
            self.caller.echoes += 1

    async def linger(self, seconds: float) -> None:
        """After the last frame: keep playing and echoing (every 100 ms) for ``seconds``."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(0.1, left))
            await self.echo_due()

    def received(self, frame: str | bytes) -> None:
        now = time.monotonic()
        try:
            message = wire.parse_server_message(frame, self.sid)
        except wire.MessageRejected as exc:
            self.caller.errors.append(f"stream: {exc}")
            return
        match message:
            case wire.ServerMedia(audio):
                self.caller.segments.append((now, audio))
                self.playout.push_audio(audio, now)
            case wire.ServerMark(name):
                self.caller.marks += 1
                self.due += self.playout.push_mark(name, now)
            case wire.ServerClear():
                self.caller.clears += 1
                cleared = self.playout.clear(now)
                self.due += [*cleared.passed_marks, *cleared.pending_marks]

    async def listen(self) -> None:
        try:
            async for frame in self.ws:
                self.received(frame)
        except ConnectionClosed as exc:
            self.caller.errors.append(f"stream closed: {exc}")


async def twilio_caller(
    voice_url: str, auth_token: str, ready: Ready, caller: Caller, pacer: Pacer
) -> None:
    """One call: webhook, stream, ``start``; frames from the pacer once the session is up
    (``ready``); ``stop`` and close after the pacer's last frame and :data:`TAIL_S`."""
    assert isinstance(caller, PhoneCaller), "phone runs make PhoneCaller callers"
    account, call_sid = wire.new_sid("AC"), wire.new_sid("CA")
    params = call_params(
        account_sid=account,
        call_sid=call_sid,
        from_=f"+1555000{caller.index:04d}",
        to="+18005550199",
        status="ringing",
    )
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            twiml = await fetch_twiml(
                http, voice_url, method="POST", params=params, auth_token=auth_token
            )
        connect = parse_connect(twiml, voice_url)
        ws = await open_stream(
            connect.url, auth_token=auth_token, ssl_context=None, open_timeout=60
        )
    except (TwilioError, OSError) as exc:
        caller.errors.append(f"call: {exc}")
        pacer.give_up()
        return
    stream = _Stream(ws, caller, wire.new_sid("MZ"))
    async with ws:
        listener = asyncio.create_task(stream.listen())
        await ws.send(wire.connected())
        await ws.send(
            wire.start(stream.next_seq(), stream.sid, account, call_sid, connect.parameters)
        )
        if not await ready(caller.index):
            caller.errors.append("the call's session never reached the provider")
            pacer.give_up()
        else:
            pacer.join(caller, stream.send)
            await pacer.done.wait()
        with contextlib.suppress(ConnectionClosed):  # the server may have ended the call
            await stream.linger(TAIL_S)
            await ws.send(wire.stop(stream.next_seq(), stream.sid, account, call_sid))
        await ws.close()
        await listener


def _locate(items: list[bytes], chunk: bytes, item: int, offset: int) -> tuple[int, int] | None:
    """Where ``chunk`` of bot audio came from: (item, offset). Expected where the last one
    ended, or at the start of a later item (the one before was cut by a barge-in); failing
    that, anywhere further on (audio dropped in between)."""
    ahead = range(item + 1, min(len(items), item + 9))
    if item < len(items) and items[item][offset : offset + len(chunk)] == chunk:
        return item, offset
    for later in ahead:
        if items[later].startswith(chunk):
            return later, 0
    for index, start in ((item, offset), *((later, 0) for later in ahead)):
        if index < len(items) and (found := items[index].find(chunk, start)) >= 0:
            return index, found
    return None


def out_latencies(
    segments: list[tuple[float, bytes]],
    items: list[tuple[list[float], list[bytes]]],
    window_start: float,
) -> tuple[list[float], int]:
    """Each bot-audio delta's latency: the emulator's send stamp to the ``media`` that carried
    its last byte. ``items``: the session's items in order, each its delta stamps and payloads.
    The pacer re-chunks audio (100 ms segments, never across items), so segments are placed
    by their bytes' offset within their item. Returns (latencies, segments not found)."""
    audio = [b"".join(payloads) for _, payloads in items]
    ends: list[list[int]] = []
    for _, payloads in items:
        total, item_ends = 0, []
        for payload in payloads:
            total += len(payload)
            item_ends.append(total)
        ends.append(item_ends)
    out: list[float] = []
    unmatched = item = offset = next_delta = 0
    for at, chunk in segments:
        found = _locate(audio, chunk, item, offset)
        if found is None:
            unmatched += 1
            continue
        if found != (item, offset):  # a jump: deltas begun before it were never all received
            item, offset = found
            starts = [0, *ends[item]]
            next_delta = 0
            while next_delta < len(ends[item]) and starts[next_delta] < offset:
                next_delta += 1
        offset += len(chunk)
        stamps, item_ends = items[item][0], ends[item]
        while next_delta < len(item_ends) and item_ends[next_delta] <= offset:
            if next_delta < len(stamps) and stamps[next_delta] >= window_start:
                out.append(at - stamps[next_delta])
            next_delta += 1
    return out, unmatched
