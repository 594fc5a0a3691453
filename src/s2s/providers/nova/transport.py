"""The :class:`~s2s.transport.Transport` over Bedrock's bidirectional stream, via the AWS SDK.

The official ``aws-sdk-bedrock-runtime`` client (pinned: its API changed across 0.x) does the
HTTP/2 connection (the CRT transport; its default aiohttp transport cannot stream both ways),
SigV4 on the request, the chained signature of every event and the event-stream framing. Each
``send`` is one Nova JSON event, each ``recv`` one event back.

Vendor exceptions stop here. What the SDK reports becomes either a frame the sans-I/O protocol
maps to a typed s2s error (see :mod:`.wire`: ``streamAccepted`` once the service answered 200,
``exception`` for a modelled or HTTP error), or :class:`~s2s.transport.TransportClosed` when
the connection itself is gone.

Each stream gets its own HTTP/2 connection, so :meth:`NovaTransport.abort` of one never touches
another; all of them share one CRT event-loop thread and one TLS context per CA file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient  # type: ignore[import-untyped]
from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig  # type: ignore[import-untyped]
from aws_sdk_bedrock_runtime.models import (  # type: ignore[import-untyped]
    BidirectionalInputPayloadPart,
    BidirectionalOutputPayloadPart,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
)
from awscrt import http as crt_http  # type: ignore[import-untyped]
from awscrt import io as crt_io
from awscrt.exceptions import AwsCrtError  # type: ignore[import-untyped]
from smithy_aws_core.config.exceptions import ConfigError
from smithy_aws_core.identity import AWSCredentialsIdentity
from smithy_aws_event_stream.exceptions import UnmodeledEventError
from smithy_core.exceptions import CallError, ModeledError, SmithyError
from smithy_http.aio.crt import AWSCRTHTTPClient, AWSCRTHTTPClientConfig, _AWSCRTEventLoop

from ...errors import ConfigurationError, ProviderConnectionError
from ...transport import TransportClosed
from .credentials import FrozenIdentity
from .settings import PROVIDER, NovaSettings

__all__ = ["NovaTransport", "open_stream"]

_UNKNOWN_ERROR = re.compile(r"status: (?P<status>\d+)(?: - id: (?:\S*#)?(?P<code>\w+))?")
_TLS_ERRORS = ("TLS", "CERT", "X509", "SSL")

_event_loop: _AWSCRTEventLoop | None = None
_tls_contexts: dict[str | None, crt_io.ClientTlsContext] = {}
_closing: set[asyncio.Task[Any]] = set()


class _CRTClient(AWSCRTHTTPClient):
    """The SDK's CRT client, remembering its HTTP/2 streams so they can be wound down.

    CRT writes the request body from a task of its own. When the service answers before the body
    ends (a refused request) or the connection dies, that task fails writing the end of the body;
    nobody would ever read its error. :meth:`wind_down` reads it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crt_streams: list[Any] = []

    async def _await_response(self, stream: Any) -> Any:
        self.crt_streams.append(stream)
        return await super()._await_response(stream)

    async def close(self) -> None:
        """Close the connections without ever cancelling CRT's shutdown futures.

        The base class awaits them through ``asyncio.wrap_future``; a cancelled wait (a timeout,
        a session ending) cancels the future, and CRT's thread then fails setting it.
        """
        if self._closed:
            return
        self._closed = True
        connections = list(self._connections.values())
        self._connections.clear()
        futures = [crt_http.HttpClientConnection.close(c) for c in connections]
        loop = asyncio.get_running_loop()
        all_done = asyncio.Event()

        def check() -> None:
            if all(f.done() for f in futures):
                all_done.set()

        def on_done(_: object) -> None:  # runs on CRT's thread
            with contextlib.suppress(RuntimeError):  # the loop may be gone
                loop.call_soon_threadsafe(check)

        for future in futures:
            future.add_done_callback(on_done)
        check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done.wait(), 2.0)

    def wind_down(self) -> None:
        for stream in self.crt_streams:
            writer = getattr(stream, "_writer", None)
            if isinstance(writer, asyncio.Task):
                writer.add_done_callback(_read_result)


def _read_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _http_client(ca_file: str | None) -> _CRTClient:
    """A CRT HTTP/2 client on the shared event loop, trusting ``ca_file`` if given."""
    global _event_loop
    if _event_loop is None:
        _event_loop = _AWSCRTEventLoop()
    client = _CRTClient(
        eventloop=_event_loop, client_config=AWSCRTHTTPClientConfig(force_http_2=True)
    )
    context = _tls_contexts.get(ca_file)
    if context is None:
        options = crt_io.TlsContextOptions()
        if ca_file is not None:
            options.override_default_trust_store_from_path(None, ca_file)
        context = _tls_contexts[ca_file] = crt_io.ClientTlsContext(options)
    # AWSCRTHTTPClient has no TLS option; its context is the documented override point.
    client._tls_ctx = context
    return client


def _exception_frame(kind: str, message: str, status: int | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"type": kind, "message": message}
    if status is not None:
        body["status"] = status
    body.update(extra)
    return json.dumps({"exception": body})


def _describe(exc: BaseException) -> str:
    """The frame for an exception the SDK raised (from the request or inside the stream)."""
    status = None
    metadata = getattr(exc, "response_metadata", None)
    if metadata is not None:
        status = getattr(metadata, "http_status_code", None)
    if isinstance(exc, ModeledError):
        return _exception_frame(type(exc).__name__, exc.message, status)
    if isinstance(exc, UnmodeledEventError):
        return _exception_frame(exc.code, exc.message)
    if isinstance(exc, CallError):
        match = _UNKNOWN_ERROR.search(exc.message)
        if match is not None:
            code = match["code"] or "UnknownError"
            status = status or int(match["status"])
            return _exception_frame(code, f"HTTP {status} {code} before the stream started", status)
        return _exception_frame("UnknownError", exc.message, status)
    crt = exc if isinstance(exc, AwsCrtError) else exc.__cause__
    name = getattr(crt, "name", "") or type(exc).__name__
    tls = any(part in name for part in _TLS_ERRORS)
    hint = " (is the endpoint's certificate trusted? see extra['ca_file'])" if tls else ""
    return _exception_frame(
        "ConnectionError", f"cannot open the stream: {name}: {exc}{hint}", retryable=not tls
    )


class NovaTransport:
    """One ``InvokeModelWithBidirectionalStream`` call as a frame transport."""

    def __init__(self, stream: Any, http: _CRTClient, expiration: datetime.datetime | None) -> None:
        self._stream = stream
        self._expiration = expiration
        self._http = http
        self._output: Any = None
        self._pending: list[str] = []
        self._ended: str | None = None
        self._output_done = asyncio.Event()
        self._read: asyncio.Task[Any] | None = None

    async def _next(self, read: Callable[[], Awaitable[Any]]) -> Any:
        """Await the stream's current read, starting one if none is under way.

        A cancelled wait leaves the read running, and the next call awaits the same read, so no
        event is skipped. (Cancelling it would also break awscrt 0.32: CRT's thread resolves a
        pending read with ``Future.set_result`` and raises InvalidStateError on a cancelled one.)
        """
        if self._read is None:
            self._read = asyncio.ensure_future(read())
            self._read.add_done_callback(_read_result)
        read_task = self._read
        try:
            return await asyncio.shield(read_task)
        finally:
            if read_task.done():
                self._read = None

    async def send(self, data: str | bytes) -> None:
        if self._ended is not None:
            raise TransportClosed(None, self._ended)
        raw = data.encode("utf-8") if isinstance(data, str) else data
        chunk = InvokeModelWithBidirectionalStreamInputChunk(
            value=BidirectionalInputPayloadPart(bytes_=raw)
        )
        try:
            await self._stream.input_stream.send(chunk)
        except (OSError, SmithyError, AwsCrtError) as exc:
            raise TransportClosed(None, f"sending failed: {exc}") from exc

    def _end(self, reason: str, *, release: bool = False) -> None:
        """Mark the stream over; ``release`` also frees it (nobody else may close it)."""
        first = self._ended is None
        if first:
            self._ended = reason
        self._output_done.set()
        if self._read is not None and not self._read.done():  # ends with the stream
            _closing.add(self._read)
            self._read.add_done_callback(_closing.discard)
        if release and first:
            self._http.wind_down()
            task = asyncio.get_running_loop().create_task(self._shut())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def recv(self) -> str | bytes:
        if self._pending:
            return self._pending.pop(0)
        if self._ended is not None:
            raise TransportClosed(None, self._ended)
        if self._output is None:
            try:
                _, self._output = await self._next(self._stream.await_output)
            except Exception as exc:
                self._end("the request was refused", release=True)
                return _describe(exc)
            accepted: dict[str, Any] = {}
            if self._expiration is not None:
                left = self._expiration - datetime.datetime.now(datetime.UTC)
                accepted["credentialsExpireIn"] = round(left.total_seconds(), 1)
            return json.dumps({"streamAccepted": accepted})
        while True:
            try:
                event = await self._next(self._output.receive)
            except (CallError, UnmodeledEventError) as exc:
                self._end("the stream ended with an exception", release=True)
                return _describe(exc)
            except (OSError, SmithyError, AwsCrtError) as exc:
                self._end(f"connection lost: {exc}", release=True)
                raise TransportClosed(None, self._ended or "") from exc
            if event is None:
                self._end("end of stream", release=True)
                raise TransportClosed(None, "end of stream")
            value = getattr(event, "value", None)
            if isinstance(value, BidirectionalOutputPayloadPart) and value.bytes_ is not None:
                raw: bytes = value.bytes_
                return raw.decode("utf-8")

    async def close(self) -> None:
        """Send the signed empty event and END_STREAM, let the answer end, drop the link."""
        open_ = self._ended is None
        self._http.wind_down()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stream.input_stream.close(), 2.0)
        if open_:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._output_done.wait(), 1.0)
        self._end("closed")
        await self._http.close()

    def abort(self) -> None:
        self._end("aborted", release=True)

    async def _shut(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stream.input_stream.close(), 2.0)
        await self._http.close()


#: Bound on starting a call (the SDK never returns if signing fails before the request is sent).
START_TIMEOUT_S = 10.0


async def open_stream(settings: NovaSettings, identity: AWSCredentialsIdentity) -> NovaTransport:
    """Start the call; the service's answer arrives through :meth:`NovaTransport.recv`."""
    http = _http_client(settings.ca_file)
    try:
        config = await AsyncBedrockRuntimeConfig.resolve(
            endpoint_uri=settings.endpoint,
            region=settings.region,
            aws_credentials_identity_resolver=FrozenIdentity(identity),
            transport=http,
            max_attempts=1,
        )
        client = AsyncBedrockRuntimeClient(config=config)
        stream = await asyncio.wait_for(
            client.invoke_model_with_bidirectional_stream(
                InvokeModelWithBidirectionalStreamOperationInput(model_id=settings.model)
            ),
            START_TIMEOUT_S,
        )
    except ConfigError as exc:  # e.g. an unreadable shared config file
        await http.close()
        raise ConfigurationError(
            f"{PROVIDER}: the AWS SDK configuration is invalid: {exc}", provider=PROVIDER
        ) from exc
    except (TimeoutError, SmithyError, AwsCrtError, OSError) as exc:
        await http.close()
        raise ProviderConnectionError(
            f"{PROVIDER}: cannot start the stream at {settings.endpoint}: {exc!r}",
            provider=PROVIDER,
        ) from exc
    expiration = identity.expiration
    if expiration is not None and expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=datetime.UTC)
    return NovaTransport(stream, http, expiration)
