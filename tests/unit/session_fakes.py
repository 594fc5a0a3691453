"""In-memory fakes for unit tests of :class:`s2s.Session`: no sockets, no emulator, no clock.

* :class:`MemoryTransport` is two queues. ``inbox`` holds frames "from the provider" for the
  session's read loop; every frame the session sends lands in ``sent`` (and ``outbox``, to wait on).
  The test side can :meth:`~MemoryTransport.feed` frames and :meth:`~MemoryTransport.drop` the
  connection, as a provider or a network would.
* :class:`ScriptedProtocol` is a real sans-I/O :class:`~s2s.ProviderProtocol` over a tiny msgpack
  wire. It records every call the session makes (``calls``), turns the session's input into
  frames (``{"op": ...}``), and turns provider frames (``{"kind": ...}``, built with the
  ``*_frame`` helpers) into events, readiness, a rotation request or a fatal failure. Like the
  three real protocols it queues input until it is ready, replays a continuation's history and
  pending audio first when it gets ready, and refuses input (``SessionClosedError``) once it was
  closed or lost its connection.
* :class:`ScriptedProvider` hands out one protocol per attempt and one transport per successful
  ``connect()``; a test can make the next connects fail, hold ``connect()`` on a gate, or stop the
  next connection from getting ready on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import msgpack

from s2s import (
    S2S,
    Config,
    Continuation,
    Conversation,
    EventType,
    Hooks,
    ProviderProtocol,
    ReconnectPolicy,
    Role,
    Session,
    SessionEvent,
    ToolCall,
    ToolResult,
)
from s2s.conversation import FunctionCall, FunctionOutput, Message
from s2s.engine import Provider
from s2s.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderServerError,
    S2SError,
    SessionClosedError,
    SessionExpiredError,
)
from s2s.transport import Transport, TransportClosed

NAME = "scripted"
#: The fake provider's native rate, in and out. 16-bit mono: 32 bytes per millisecond.
RATE = 16000
#: Bounds every wait in the tests; a healthy test never gets near it.
WAIT_S = 1.0

#: What ``connection_lost`` makes of a close code (anything not listed: a retryable drop).
CLOSE_ERRORS: dict[int, Callable[[str], S2SError]] = {
    4001: lambda reason: AuthenticationError(reason, code="4001", provider=NAME),
    4000: lambda reason: InvalidRequestError(reason, code="4000", provider=NAME),
    4008: lambda reason: SessionExpiredError(reason, code="4008", provider=NAME),
    1011: lambda reason: ProviderServerError(reason, code="1011", provider=NAME),
}


def pack(message: dict[str, Any]) -> bytes:
    return cast(bytes, msgpack.packb(message, use_bin_type=True))


def unpack(frame: str | bytes) -> dict[str, Any]:
    return cast(dict[str, Any], msgpack.unpackb(frame, raw=False))


# -- provider -> session frames ------------------------------------------------------------------


def ready_frame() -> bytes:
    """The provider accepted the setup: input may flow."""
    return pack({"kind": "ready"})


def event_frame(event: SessionEvent) -> bytes:
    """The provider reports something; the protocol emits ``event`` as it is."""
    return pack({"kind": "event", "event": event.to_dict()})


def commit_frame() -> bytes:
    """The provider committed the caller's audio so far (it need not be replayed any more)."""
    return pack({"kind": "commit"})


def rotate_frame(reason: str) -> bytes:
    """The provider asks the client to move to a new connection (a goAway)."""
    return pack({"kind": "rotate", "reason": reason})


def fail_frame(message: str, *, retryable: bool) -> bytes:
    """The provider reports an error the protocol treats as fatal."""
    return pack({"kind": "fail", "message": message, "retryable": retryable})


def deadline_frame() -> bytes:
    """Arms the protocol's timer at a moment already past (its expiry asks for a rotation)."""
    return pack({"kind": "deadline"})


# -- typical provider events ---------------------------------------------------------------------


def tool_call_event(call_id: str, name: str = "lookup", arguments: str = "{}") -> SessionEvent:
    return SessionEvent(EventType.TOOL_CALL, tool_call=ToolCall(call_id, name, arguments))


def audio_event(pcm: bytes, item_id: str = "item-1") -> SessionEvent:
    return SessionEvent(
        EventType.AUDIO_OUTPUT, audio=pcm, sample_rate=RATE, item_id=item_id, response_id="r1"
    )


def turn_end_event(reason: str = "completed") -> SessionEvent:
    return SessionEvent(EventType.TURN_END, reason=reason, response_id="r1")


# -- the transport -------------------------------------------------------------------------------


class MemoryTransport:
    """A :class:`~s2s.transport.Transport` made of two in-memory queues."""

    def __init__(self, number: int, *, auto_ready: bool) -> None:
        self.number = number
        self.auto_ready = auto_ready
        self.inbox: asyncio.Queue[bytes | TransportClosed] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed_by_session = False
        self.aborted = False
        #: Set when the session closes or aborts this transport.
        self.released = asyncio.Event()
        self.ended: TransportClosed | None = None

    def __repr__(self) -> str:
        return f"MemoryTransport(#{self.number})"

    # The session's side.

    async def send(self, data: str | bytes) -> None:
        if self.ended is not None:
            raise TransportClosed(self.ended.code, self.ended.reason)
        message = unpack(data)
        self.sent.append(message)
        self.outbox.put_nowait(message)
        if self.auto_ready and message["op"] == "setup":
            self.feed(ready_frame())

    async def recv(self) -> str | bytes:
        item = await self.inbox.get()
        if isinstance(item, TransportClosed):
            self.inbox.put_nowait(item)  # every later recv() ends too
            raise TransportClosed(item.code, item.reason)
        return item

    async def close(self) -> None:
        self.closed_by_session = True
        self.released.set()
        self._end(TransportClosed(1000, "closed by the client"))

    def abort(self) -> None:
        self.aborted = True
        self.released.set()
        self._end(TransportClosed(None, "aborted by the client"))

    # The provider's (the test's) side.

    def feed(self, *frames: bytes) -> None:
        for frame in frames:
            self.inbox.put_nowait(frame)

    def drop(self, code: int | None = None, reason: str = "connection reset") -> None:
        """The connection ends: frames already fed are still read, then recv() raises."""
        self._end(TransportClosed(code, reason))

    def ops(self, *, skip: tuple[str, ...] = ("setup",)) -> list[dict[str, Any]]:
        """Everything the session sent, minus the protocol's own opening frames."""
        return [m for m in self.sent if m["op"] not in skip]

    async def next_sent(self, op: str) -> dict[str, Any]:
        """Wait for the next frame with ``op`` the session sends (earlier ones are consumed)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                message = await self.outbox.get()
                if message["op"] == op:
                    return message

    def _end(self, closed: TransportClosed) -> None:
        if self.ended is None:
            self.ended = closed
            self.inbox.put_nowait(closed)


def _check_transport(transport: MemoryTransport) -> Transport:
    return transport  # mypy checks that MemoryTransport satisfies the Transport protocol


# -- the protocol --------------------------------------------------------------------------------


class ScriptedProtocol(ProviderProtocol):
    """A provider protocol whose provider is the test."""

    provider = NAME
    input_rate = RATE
    output_rate = RATE

    def __init__(self, config: Config, continuation: Continuation | None, number: int) -> None:
        super().__init__(config)
        self.number = number
        self.started_from = continuation
        #: Every call the session made, in order, without the ``now`` arguments.
        self.calls: list[tuple[Any, ...]] = []
        #: Set when the session reports the end of the connection.
        self.lost = asyncio.Event()
        self.conversation = continuation.conversation.copy() if continuation else Conversation()
        self.pending_audio = bytearray(continuation.pending_audio if continuation else b"")
        self._replay_audio = len(self.pending_audio)
        self._ready = False
        self._closed = False
        self._queued: list[bytes] = []
        self._responding = False
        self._deadline: float | None = None

    def __repr__(self) -> str:
        return f"ScriptedProtocol(#{self.number})"

    # -- lifecycle

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def idle(self) -> bool:
        return not self._responding and not self.conversation.pending_calls()

    @property
    def deadline(self) -> float | None:
        return self._deadline

    def timer_expired(self, now: float) -> None:
        self.calls.append(("timer_expired",))
        self._deadline = None
        self.rotation = "session_limit"

    def connection_made(self, now: float) -> None:
        self.calls.append(("connection_made",))
        self._send(pack({"op": "setup", "resumed": self.started_from is not None}))

    def receive_data(self, data: str | bytes, now: float) -> None:
        message = unpack(data)  # a frame that is not msgpack raises: a protocol failure
        kind = message["kind"]
        if kind == "ready":
            self._become_ready()
        elif kind == "event":
            self._provider_event(SessionEvent.from_dict(message["event"]), now)
        elif kind == "commit":
            self.pending_audio.clear()
        elif kind == "rotate":
            self.rotation = message["reason"]
        elif kind == "fail":
            self.failure = ProviderServerError(
                message["message"], provider=NAME, retryable=message["retryable"]
            )
        elif kind == "deadline":
            self._deadline = now - 0.001
        else:
            raise ValueError(f"unknown frame kind {kind!r}")

    def connection_lost(self, code: int | None, reason: str, now: float) -> S2SError | None:
        self.calls.append(("connection_lost", code))
        was_closing = self._closed
        self._closed = True
        self.lost.set()
        if code in CLOSE_ERRORS:
            return CLOSE_ERRORS[code](reason)
        if code == 1000 or (was_closing and code is None):
            return None  # an orderly close
        return ProviderConnectionError(f"dropped: {reason}", provider=NAME)

    def close(self, now: float) -> None:
        self.calls.append(("close",))
        if not self._closed:
            self._send(pack({"op": "goodbye"}))
        self._closed = True

    def continuation(self, reason: str) -> Continuation:
        self.calls.append(("continuation", reason))
        return Continuation(
            conversation=self.conversation.copy(),
            pending_audio=bytes(self.pending_audio),
            reason=reason,
        )

    # -- application input

    def send_audio(self, pcm: bytes, now: float) -> None:
        self._check_open("send_audio")
        self.calls.append(("audio", pcm))
        self.pending_audio += pcm
        self._send_app({"op": "audio", "pcm": pcm})

    def send_text(self, text: str, now: float) -> None:
        self._check_open("send_text")
        self.calls.append(("text", text))
        self.conversation.append(Message(Role.USER, text))
        self._send_app({"op": "text", "text": text})

    def send_tool_result(self, result: ToolResult, now: float) -> None:
        self._check_open("send_tool_result")
        if result.call_id not in {call.id for call in self.conversation.pending_calls()}:
            raise InvalidInputError(f"no open tool call {result.call_id!r}")
        self.calls.append(("tool_result", result.call_id, result.content))
        self.conversation.append(FunctionOutput(result.call_id, result.content, result.is_error))
        self._send_app({"op": "tool_result", "call_id": result.call_id, "content": result.content})

    def end_turn(self, now: float) -> None:
        self._check_open("end_turn")
        self.calls.append(("end_turn",))
        self._send_app({"op": "end_turn"})

    def interrupt(self, now: float) -> None:
        self._check_open("interrupt")
        self.calls.append(("interrupt",))
        self._send_app({"op": "cancel"})
        if self._responding:
            self._emit(SessionEvent(EventType.INTERRUPTED, reason="client", at=now))

    def report_playback(self, item_id: str, played_ms: int) -> None:
        self.calls.append(("report_playback", item_id, played_ms))

    # -- helpers

    def app_calls(self) -> list[tuple[Any, ...]]:
        """The application input this protocol received, in order."""
        kinds = {"audio", "text", "tool_result", "end_turn", "interrupt"}
        return [call for call in self.calls if call[0] in kinds]

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise SessionClosedError(f"{what}: connection #{self.number} is closed")

    def _send_app(self, message: dict[str, Any]) -> None:
        frame = pack(message)
        if self._ready:
            self._send(frame)
        else:
            self._queued.append(frame)

    def _become_ready(self) -> None:
        if self._ready:
            return
        self._ready = True
        for item in self.conversation:
            if isinstance(item, Message):
                self._send(pack({"op": "replay", "item": ["message", item.role.value, item.text]}))
            elif isinstance(item, FunctionCall):
                self._send(pack({"op": "replay", "item": ["call", item.call_id]}))
            else:
                self._send(pack({"op": "replay", "item": ["output", item.call_id]}))
        if self._replay_audio:
            self._send(pack({"op": "replay_audio", "pcm": bytes(self.pending_audio)}))
        queued, self._queued = self._queued, []
        for frame in queued:
            self._send(frame)

    def _provider_event(self, event: SessionEvent, now: float) -> None:
        if event.type is EventType.RESPONSE_STARTED:
            self._responding = True
        elif event.type is EventType.TURN_END:
            self._responding = False
        elif event.type is EventType.TOOL_CALL and event.tool_call is not None:
            call = event.tool_call
            self.conversation.append(FunctionCall(call.id, call.name, call.arguments, call.id))
        elif event.type is EventType.TOOL_CALL_CANCELLED:
            for call_id in event.call_ids:
                self.conversation.remove(call_id)
        self._emit(event)


# -- the provider --------------------------------------------------------------------------------


class ScriptedProvider(Provider):
    """Builds scripted protocols and memory transports, and lets a test steer ``connect()``."""

    name = NAME
    input_rate = RATE
    output_rate = RATE

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.reconnect = ReconnectPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
        self.connect_timeout = WAIT_S
        self.setup_timeout = WAIT_S
        self.protocols: list[ScriptedProtocol] = []
        self.transports: list[MemoryTransport] = []
        #: Raised by the next ``connect()`` calls, in order.
        self.connect_failures: list[S2SError] = []
        #: When set, ``connect()`` waits for this event before it connects.
        self.gate: asyncio.Event | None = None
        #: Whether new transports answer the setup by themselves.
        self.auto_ready = True
        self.connects = 0
        #: One item per ``connect()`` call, put when the call starts.
        self.connect_started: asyncio.Queue[int] = asyncio.Queue()

    def new_protocol(self, continuation: Continuation | None) -> ScriptedProtocol:
        protocol = ScriptedProtocol(self.config, continuation, len(self.protocols) + 1)
        self.protocols.append(protocol)
        return protocol

    async def connect(self) -> Transport:
        self.connects += 1
        self.connect_started.put_nowait(self.connects)
        if self.gate is not None:
            await self.gate.wait()
        if self.connect_failures:
            raise self.connect_failures.pop(0)
        transport = MemoryTransport(len(self.transports) + 1, auto_ready=self.auto_ready)
        self.transports.append(transport)
        return _check_transport(transport)

    @property
    def protocol(self) -> ScriptedProtocol:
        """The newest protocol."""
        return self.protocols[-1]

    @property
    def transport(self) -> MemoryTransport:
        """The newest transport."""
        return self.transports[-1]

    async def next_connect(self) -> int:
        """Wait until ``connect()`` is called (again); returns its number."""
        async with asyncio.timeout(WAIT_S):
            return await self.connect_started.get()


async def start(
    config: Config | None = None,
    *,
    hooks: Hooks | None = None,
    engine_hooks: Hooks | None = None,
    setup: Callable[[ScriptedProvider], None] | None = None,
) -> tuple[Session, ScriptedProvider]:
    """A started session on a fresh :class:`ScriptedProvider`, through the public engine."""
    provider = ScriptedProvider(config or Config(sample_rate=RATE))
    if setup is not None:
        setup(provider)
    engine = S2S(NAME, lambda _config: provider, provider.config, hooks=engine_hooks)
    session = await engine.start(hooks=hooks)
    while not provider.connect_started.empty():  # the connects of start() are not news
        provider.connect_started.get_nowait()
    return session, provider


class Events:
    """Reads one session's events with a bound on every wait."""

    def __init__(self, session: Session) -> None:
        self._iterator: AsyncIterator[SessionEvent] = session.recv()
        self.seen: list[SessionEvent] = []

    async def next(self) -> SessionEvent:
        async with asyncio.timeout(WAIT_S):
            event = await anext(self._iterator)
        self.seen.append(event)
        return event

    async def until(self, kind: EventType) -> list[SessionEvent]:
        """Events up to and including the next one of ``kind``."""
        out: list[SessionEvent] = []
        while True:
            event = await self.next()
            out.append(event)
            if event.type is kind:
                return out

    async def rest(self) -> list[SessionEvent]:
        """Every remaining event, until recv() ends (its error, if any, propagates)."""
        out: list[SessionEvent] = []
        async with asyncio.timeout(WAIT_S):
            async for event in self._iterator:
                out.append(event)
                self.seen.append(event)
        return out


def other_tasks(baseline: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks still running that were not running at ``baseline`` (nor are the current one)."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and t not in baseline}


async def settle_tasks(baseline: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Wait (bounded) for every task started after ``baseline`` to finish; return those that
    did not."""
    tasks = other_tasks(baseline)
    if not tasks:
        return set()
    _done, pending = await asyncio.wait(tasks, timeout=WAIT_S / 2)
    return pending
