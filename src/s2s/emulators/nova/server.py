"""The Nova Sonic emulator server: Bedrock Runtime's bidirectional stream over HTTP/2 and TLS.

::

    async with NovaEmulator() as emulator:       # TLS on 127.0.0.1, a generated CA
        settings = {"base_url": emulator.url, "ca_file": str(emulator.ca_file),
                    "aws_access_key_id": ..., "aws_secret_access_key": ...}

It serves ``POST /model/{modelId}/invoke-with-bidirectional-stream`` exactly as AWS does:
HTTP/2 only (ALPN ``h2``; several streams may share one connection), SigV4 on the request
(service ``bedrock``) checked against the configured credentials, then a full-duplex
``application/vnd.amazon.eventstream`` body in both directions. Each client message must be a
correctly chained, signed envelope around an inner ``chunk`` event whose payload is
``{"bytes": "<base64 JSON event>"}``; the answer is unsigned ``chunk`` events, and in-stream
errors are ``:message-type exception`` messages. A refused request gets an HTTP error with
``x-amzn-errortype`` and a JSON ``{"message"}`` body before any stream starts, which the SDK
raises as its typed exception.

Models: ``amazon.nova-2-5-sonic`` and ``amazon.nova-2-sonic-v1:0`` are served; the retired
``amazon.nova-sonic-v1:0`` is refused as Bedrock refuses a model past its end of life, any other
id as Bedrock refuses an unknown one.

Fault injection: :meth:`NovaEmulator.drop_connections` (TCP reset), :meth:`inject_exception`
(an in-stream exception on every live stream), :meth:`refuse_next` (HTTP errors for the next
requests: throttling, an exhausted quota, ...) and ``options.event_delay_s``. Both take
production's wording for a type when no message is given (:data:`MESSAGES`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from ...log import logger
from ...providers.nova import wire
from ..base import Emulator, apply_overrides
from .eventstream import EventStreamError, MessageDecoder, decode, encode
from .faults import EOL_REFUSAL, MESSAGES, STATUS, STREAM_EXCEPTIONS, message_for
from .session import EmulatedStream, NovaEmulatorOptions, StreamFailure
from .sigv4 import (
    DEFAULT_CREDENTIALS,
    STREAMING_PAYLOAD,
    ChunkVerifier,
    Credentials,
    SignatureError,
    SignedRequest,
    verify_request,
)

__all__ = ["MESSAGES", "NovaEmulator"]

log = logger.getChild("emulator.nova")

EVENT_STREAM = "application/vnd.amazon.eventstream"
_PATH_PREFIX = "/model/"
_PATH_SUFFIX = "/invoke-with-bidirectional-stream"
#: h2 events after which a sender blocked on flow control should look again.
_WAKE_EVENTS = (
    h2.events.WindowUpdated,
    h2.events.RemoteSettingsChanged,
    h2.events.ConnectionTerminated,
)
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"


@dataclass(slots=True)
class _Refusal:
    error_type: str
    message: str
    status: int


class _Refused(Exception):
    def __init__(self, error_type: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.refusal = _Refusal(error_type, message, status or STATUS.get(error_type, 400))


@dataclass(eq=False, slots=True)
class _Stream:
    """One accepted request: its decoder, signature chain and emulated session."""

    id: int
    connection: _Connection
    verifier: ChunkVerifier
    session: EmulatedStream
    decoder: MessageDecoder = field(default_factory=MessageDecoder)
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    finished: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class NovaEmulator(Emulator):
    """A protocol-faithful Bedrock ``InvokeModelWithBidirectionalStream`` server on loopback."""

    label = "Nova"
    tls = True
    alpn = ("h2",)

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        credentials: Credentials | Iterable[Credentials] | None = None,
        region: str = "us-east-1",
        options: NovaEmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(host=host, port=port, certfile=certfile, keyfile=keyfile)
        self.region = region
        if credentials is None:
            credentials = DEFAULT_CREDENTIALS
        if isinstance(credentials, Credentials):
            credentials = [credentials]
        self.credentials = {c.access_key_id: c for c in credentials}
        self.options = options or NovaEmulatorOptions()
        apply_overrides(self.options, overrides)
        #: Every stream served (live and ended), oldest first.
        self.streams: list[EmulatedStream] = []
        #: How each ended stream ended: "client", "dropped" or the exception type.
        self.endings: list[str] = []
        #: Requests refused before a stream started: (status, error type).
        self.refusals: list[tuple[int, str]] = []
        #: TLS connections accepted, and requests received.
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._live: dict[EmulatedStream, _Stream] = {}
        self._connections: set[_Connection] = set()
        self._refuse: list[_Refusal] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def _listen(self, ssl_context: ssl.SSLContext | None) -> int:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=ssl_context
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.abort()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """The endpoint (``Config.extra["base_url"]``); ``localhost`` matches the certificate."""
        return f"https://localhost:{self.port}"

    @property
    def live_streams(self) -> list[EmulatedStream]:
        return list(self._live)

    # -- faults --------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Reset every TCP connection at once (no GOAWAY, no stream end)."""
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    async def inject_exception(self, kind: str, message: str | None = None) -> int:
        """End every live stream with an in-stream exception (``throttlingException``, ...).

        A member of the stream's error union goes out as ``:message-type exception``; any other
        type (``serviceQuotaExceededException``, ``modelNotReadyException``) as an unmodelled
        ``:message-type error``, the only way the service can send it to a modelled client.
        """
        text = message_for(kind[:1].upper() + kind[1:], message)
        streams = list(self._live.values())
        for stream in streams:
            await stream.connection.fail(stream, StreamFailure(kind, text))
        return len(streams)

    def refuse_next(
        self,
        count: int = 1,
        *,
        error_type: str = "ThrottlingException",
        message: str | None = None,
        status: int | None = None,
    ) -> None:
        """Answer the next ``count`` requests with an HTTP error instead of a stream
        (``ServiceQuotaExceededException`` for an exhausted quota, ...)."""
        text = message_for(error_type, message)
        refusal = _Refusal(error_type, text, status or STATUS.get(error_type, 400))
        self._refuse.extend([refusal] * count)

    # -- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
        if protocol != "h2":
            log.warning("refusing a connection that did not negotiate h2 (got %r)", protocol)
            writer.close()
            return
        self.connections += 1
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            for stream in list(connection.streams.values()):
                self._finish(stream, "dropped")

    def _check_request(self, headers: dict[str, str]) -> tuple[str, SignedRequest]:
        """The model id of an acceptable request (raises :class:`_Refused`)."""
        path, _, query = headers.get(":path", "").partition("?")
        if (
            headers.get(":method") != "POST"
            or not path.startswith(_PATH_PREFIX)
            or not path.endswith(_PATH_SUFFIX)
        ):
            raise _Refused(
                "UnknownOperationException",
                f"No operation for {headers.get(':method')} {path}",
            )
        try:
            signed = verify_request(
                "POST", path, query, headers, self.credentials, region=self.region
            )
        except SignatureError as exc:
            raise _Refused(exc.error_type, exc.message) from exc
        if headers.get("content-type") != EVENT_STREAM:
            raise _Refused(
                "ValidationException",
                f"Content-Type must be {EVENT_STREAM}, got {headers.get('content-type')!r}",
            )
        if headers.get("x-amz-content-sha256") != STREAMING_PAYLOAD:
            raise _Refused(
                "ValidationException",
                f"x-amz-content-sha256 must be {STREAMING_PAYLOAD} for an event stream",
            )
        model = unquote(path[len(_PATH_PREFIX) : -len(_PATH_SUFFIX)])
        if model in wire.RETIRED_MODELS:
            raise _Refused(*EOL_REFUSAL)
        if model not in wire.MODELS:
            raise _Refused("ValidationException", "The provided model identifier is invalid.")
        if self._refuse:
            refusal = self._refuse.pop(0)
            raise _Refused(refusal.error_type, refusal.message, refusal.status)
        return model, signed

    def _finish(self, stream: _Stream, how: str) -> None:
        if stream.finished:
            return
        stream.finished = True
        stream.session.shutdown()
        for task in stream.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._live.pop(stream.session, None)
        self.endings.append(how)


class _Connection:
    """One HTTP/2 connection (it may carry several streams)."""

    def __init__(
        self, emulator: NovaEmulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.emulator = emulator
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.streams: dict[int, _Stream] = {}
        self._window = asyncio.Event()

    def abort(self) -> None:
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    log.warning("HTTP/2 protocol error: %s", exc)
                    self.flush()
                    break
                for event in events:
                    await self._on_event(event)
                self.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self._window.set()
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            await self._request(event.stream_id, event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None and event.data:
                stream.inbox.put_nowait(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.inbox.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self.emulator._finish(stream, "reset")
        elif isinstance(event, _WAKE_EVENTS):
            self._window.set()

    async def _request(self, stream_id: int, raw: Any) -> None:
        emulator = self.emulator
        emulator.requests += 1
        headers: dict[str, str] = {}
        for name, value in raw:
            key = name.decode() if isinstance(name, bytes) else str(name)
            headers[key.lower()] = value.decode() if isinstance(value, bytes) else str(value)
        try:
            model, signed = emulator._check_request(headers)
        except _Refused as refused:
            await self._refuse(stream_id, refused.refusal)
            return
        request_id = str(uuid.uuid4())
        self.h2.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", EVENT_STREAM),
                ("x-amzn-requestid", request_id),
            ],
        )
        self.flush()

        async def send(event: dict[str, Any]) -> None:
            payload = json.dumps(
                {"bytes": base64.b64encode(json.dumps(event).encode()).decode("ascii")}
            ).encode()
            message = encode(
                {
                    ":message-type": "event",
                    ":event-type": "chunk",
                    ":content-type": "application/json",
                },
                payload,
            )
            await self._send(stream, message)

        session = EmulatedStream(send, emulator.options, model)
        session.request_id = request_id
        stream = _Stream(stream_id, self, ChunkVerifier(signed), session)
        self.streams[stream_id] = stream
        emulator.streams.append(session)
        emulator._live[session] = stream
        stream.tasks.append(asyncio.ensure_future(self._consume(stream)))
        stream.tasks.append(asyncio.ensure_future(self._limits(stream)))

    async def _refuse(self, stream_id: int, refusal: _Refusal) -> None:
        self.emulator.refusals.append((refusal.status, refusal.error_type))
        body = json.dumps({"message": refusal.message}).encode()
        self.h2.send_headers(
            stream_id,
            [
                (":status", str(refusal.status)),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("x-amzn-requestid", str(uuid.uuid4())),
                ("x-amzn-errortype", f"{refusal.error_type}:{_ERROR_NAMESPACE}"),
            ],
        )
        self.h2.send_data(stream_id, body, end_stream=True)
        self.flush()

    async def _send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        while data:
            try:
                window = self.h2.local_flow_control_window(stream_id)
            except h2.exceptions.StreamClosedError:
                return
            if self.writer.is_closing():
                return
            if window <= 0:
                self._window.clear()
                await self._window.wait()
                continue
            size = min(window, self.h2.max_outbound_frame_size, len(data))
            self.h2.send_data(stream_id, data[:size])
            data = data[size:]
            self.flush()
        if end:
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.h2.end_stream(stream_id)
                self.flush()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _send(self, stream: _Stream, message: bytes, *, end: bool = False) -> None:
        if stream.finished:
            return
        async with stream.send_lock:
            await self._send_data(stream.id, message, end=end)

    async def fail(self, stream: _Stream, failure: StreamFailure) -> None:
        """End ``stream`` with an in-stream exception (or unmodelled error) message."""
        if stream.finished:
            return
        if failure.kind not in STREAM_EXCEPTIONS:  # an unmodelled error
            message = encode(
                {
                    ":message-type": "error",
                    ":error-code": failure.kind[:1].upper() + failure.kind[1:],
                    ":error-message": failure.message,
                }
            )
        else:
            message = encode(
                {
                    ":message-type": "exception",
                    ":exception-type": failure.kind,
                    ":content-type": "application/json",
                },
                json.dumps({"message": failure.message}).encode(),
            )
        log.info("stream %d ends with %s: %s", stream.id, failure.kind, failure.message)
        stream.session.closed = True
        async with stream.send_lock:
            await self._send_data(stream.id, message, end=True)
        self.emulator._finish(stream, failure.kind)

    async def _finish_ok(self, stream: _Stream) -> None:
        async with stream.send_lock:
            await self._send_data(stream.id, b"", end=True)
        self.emulator._finish(stream, "client")

    async def _limits(self, stream: _Stream) -> None:
        failure = await stream.session.run_limits()
        await self.fail(stream, failure)

    async def _consume(self, stream: _Stream) -> None:
        try:
            while True:
                data = await stream.inbox.get()
                if data is None:
                    await self._finish_ok(stream)
                    return
                if stream.finished:
                    continue
                for envelope in stream.decoder.feed(data):
                    inner = stream.verifier.verify(envelope)
                    if not inner:
                        continue  # the signed empty frame: end of input follows
                    await stream.session.handle(_chunk_event(inner, stream.session))
        except StreamFailure as failure:
            await self.fail(stream, failure)
        except SignatureError as exc:
            await self.fail(stream, StreamFailure(exc.error_type, exc.message))
        except EventStreamError as exc:
            await self.fail(
                stream,
                StreamFailure("validationException", f"Invalid event stream message: {exc}"),
            )


def _chunk_event(inner: bytes, session: EmulatedStream) -> object:
    """The JSON event inside a signed envelope's inner ``chunk`` message."""
    try:
        message = decode(inner)
    except EventStreamError as exc:
        raise StreamFailure(
            "validationException", f"Invalid event stream message inside the envelope: {exc}"
        ) from exc
    headers = message.headers
    if headers.get(":message-type") != "event" or headers.get(":event-type") != "chunk":
        raise StreamFailure(
            "validationException",
            "Each input message must be an event of type 'chunk', got "
            f"{headers.get(':message-type')!r}/{headers.get(':event-type')!r}",
        )
    try:
        payload = json.loads(message.payload)
        raw = base64.b64decode(payload["bytes"], validate=True)
        return json.loads(raw)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise StreamFailure(
            "validationException",
            'The chunk payload must be {"bytes": "<base64 of a JSON event>"}: ' + str(exc),
        ) from exc
