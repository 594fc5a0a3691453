"""One caller's stream socket and the Server-Sent Events feed (for any ingress replica).

:class:`StreamRelay` runs both directions of ``WS /v1/sessions/{id}/stream``: events from Redis
(replay log, then live pub/sub) out to the client, and the client's audio and control messages
in to the session's actor over the router's media channel. A failure in either direction is
logged with the session id and closes the socket with a code that says what happened.

Input positions: every binary frame and every text message other than ``ping`` a client sends
takes the next *input position* of the call (1, 2, ...). The socket's first message,
``{"type": "stream_opened", "input_position": N, "last_seq": L}``, gives the highest position the
call has saved (the actor's state, with the audio the provider has not committed yet), so the
client's next message is N + 1: a client that reconnects resends what it sent after N (the
service drops positions the model already has, so nothing is applied twice), and a client that
does not care simply sends new input. ``{"type": "input_ack", "input_position": N}`` follows at
most every :data:`INPUT_ACK_S` while N advances; a client may forget what it sent up to N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from s2s.log import logger
from s2s.service.config import ServiceConfig
from s2s.service.envelope import Envelope
from s2s.service.metrics import Metrics
from s2s.service.state import ENDED
from s2s.service.subscribe import SubscriptionHub

from .api import CONTROL, PingMessage
from .errors import ApiError
from .outbound import send_events
from .router import SessionRouter
from .web import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    CLOSE_UNAVAILABLE,
    audio_format,
    client_error,
    media_input,
    parse,
)

__all__ = ["StreamRelay"]

log = logger.getChild("ingress")

#: The most often an ``input_ack`` goes to a client.
INPUT_ACK_S = 1.0


class StreamRelay:
    def __init__(
        self,
        config: ServiceConfig,
        router: SessionRouter,
        hub: SubscriptionHub,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.router = router
        self.hub = hub
        self.metrics = metrics
        self._open: set[WebSocket] = set()

    @property
    def open_sockets(self) -> int:
        return len(self._open)

    async def close_all(self, code: int, reason: str) -> int:
        """Close every open stream socket (the replica is stopping); returns how many."""
        sockets = list(self._open)
        for websocket in sockets:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await websocket.close(code, reason)
        return len(sockets)

    async def run(
        self, websocket: WebSocket, session_id: str, meta: dict[str, Any], last_seq: int
    ) -> None:
        """Serve an accepted socket until the call ends or either side goes away."""
        self._open.add(websocket)
        try:
            await self._run(websocket, session_id, meta, last_seq)
        finally:
            self._open.discard(websocket)

    async def _run(
        self, websocket: WebSocket, session_id: str, meta: dict[str, Any], last_seq: int
    ) -> None:
        ended = meta.get("status") in ENDED
        position = 0
        if not ended:
            try:
                position = await self.router.input_position(session_id, meta)
            except ApiError as exc:
                await self._failed(websocket, session_id, exc)
                return
        opened = {"type": "stream_opened", "input_position": position, "last_seq": last_seq}
        await websocket.send_text(json.dumps(opened))
        outbound = asyncio.create_task(self._relay(websocket, session_id, last_seq))
        inbound = (
            None
            if ended
            else asyncio.create_task(self._receive(websocket, session_id, meta, position))
        )
        tasks = [t for t in (outbound, inbound) if t is not None]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    await self._failed(websocket, session_id, task.exception())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _failed(
        self, websocket: WebSocket, session_id: str, exc: BaseException | None
    ) -> None:
        if isinstance(exc, WebSocketDisconnect):
            return
        if isinstance(exc, ApiError):
            log.warning("stream of %s: %s", session_id, exc.message)
            code, reason = CLOSE_UNAVAILABLE, exc.message
        else:
            log.error("stream of %s failed: %r", session_id, exc)
            code, reason = CLOSE_INTERNAL, "internal error"
        with contextlib.suppress(Exception):
            await websocket.close(code, reason[:120])

    async def _relay(self, websocket: WebSocket, session_id: str, last_seq: int) -> None:
        serve = self.config.serve
        ended = await send_events(
            websocket,
            self.hub,
            session_id,
            last_seq,
            max_bytes=serve.max_outbound_bytes,
            stall_s=serve.max_send_stall_s,
            sent=self._observe,
        )
        if ended:
            await self.router.forget(session_id)
            await websocket.close(CLOSE_NORMAL, "session closed")

    def _observe(self, envelope: Envelope) -> None:
        if envelope.ts:
            latency = max(0.0, time.time() - envelope.ts)
            self.metrics.observe("s2s_added_latency_seconds", latency, direction="out")

    async def _receive(
        self, websocket: WebSocket, session_id: str, meta: dict[str, Any], position: int
    ) -> None:
        audio_limit = self.config.serve.max_frame_bytes
        text_limit = self.config.serve.max_control_bytes
        pcm16 = audio_format(meta) == "pcm16"  # mu-law is one byte a sample: any length
        acked, ack_due = position, time.monotonic() + INPUT_ACK_S
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if time.monotonic() >= ack_due:
                ack_due = time.monotonic() + INPUT_ACK_S
                channel_position = self.router.acked_position(session_id)
                if channel_position > acked:
                    acked = channel_position
                    ack = {"type": "input_ack", "input_position": acked}
                    await websocket.send_text(json.dumps(ack))
            data = message.get("bytes")
            if data is not None:
                position += 1
                if len(data) > audio_limit:
                    await websocket.close(
                        CLOSE_TOO_BIG,
                        f"audio frame of {len(data)} bytes is over the {audio_limit}-byte limit",
                    )
                    return
                if pcm16 and len(data) % 2:
                    await client_error(
                        websocket,
                        "invalid_audio",
                        f"audio frame has an odd number of bytes ({len(data)}); send PCM16",
                    )
                    continue
                if data:
                    await self.router.send(
                        session_id, meta, "audio", data, time.time(), position=position
                    )
                continue
            text = message.get("text")
            if text is not None:
                if len(text) > text_limit:
                    await websocket.close(
                        CLOSE_TOO_BIG, f"text frame over the {text_limit}-byte limit"
                    )
                    return
                position = await self._control(websocket, session_id, meta, text, position)

    async def _control(
        self,
        websocket: WebSocket,
        session_id: str,
        meta: dict[str, Any],
        text: str,
        position: int,
    ) -> int:
        """Handle one text message; returns the input position after it."""
        try:
            message = parse(CONTROL, text)
        except ApiError as error:
            await client_error(websocket, "invalid_message", error.message)
            return position + 1
        match message:
            case PingMessage():
                await websocket.send_text(json.dumps({"type": "pong"}))
                return position
            case _:
                kind, payload = media_input(message)
                await self.router.send(session_id, meta, kind, payload, position=position + 1)
                return position + 1

    async def sse(self, session_id: str, after: int, audio: bool) -> AsyncIterator[str]:
        keepalive = self.config.serve.sse_keepalive_s
        async with self.hub.subscribe(session_id, after) as envelopes:
            iterator = envelopes.__aiter__()
            yield ": connected\n\n"
            while True:
                # Wait without cancelling the read: a cancelled __anext__ would end the stream.
                pending = asyncio.ensure_future(iterator.__anext__())
                while not (await asyncio.wait({pending}, timeout=keepalive))[0]:
                    yield ": keep-alive\n\n"
                try:
                    envelope: Envelope = pending.result()
                except StopAsyncIteration:
                    return
                data = json.dumps(envelope.to_json(include_audio=audio))
                yield f"id: {envelope.seq}\nevent: {envelope.type}\ndata: {data}\n\n"
                if envelope.type == "session_closed":
                    return
