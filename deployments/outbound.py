"""Events out to one stream socket, within an outbound budget.

A client that stops reading (a stalled network, a frozen process) must not make the replica hold
its events without bound. Two limits, whichever trips first:

* the subscription holds at most ``max_bytes`` of live events for the socket (audio counted by
  its bytes; see :func:`~s2s.service.subscribe.queued_size`): events pile up there when writes to
  the client are slower than the call produces them;
* one write to the client may take at most ``stall_s`` (a transport that pushes back, such as a
  replica serving the socket itself, blocks the write once the kernel's buffers are full).

Past either, the subscription ends (the replica stops holding events for the socket) and the
socket is closed with :data:`CLOSE_TOO_SLOW` (4408); the close frame waits behind what the
transport already holds, and if the client does not read it within ``stall_s`` either, the
connection is simply dropped (the client sees 1006). Nothing is lost: every event is in the
session's replay log, and the client reconnects with ``last_seq`` to continue.

Behind Serve's Python proxy (``serve.ingress: proxy``) a replica's writes never block: Serve's
send queue takes them without pushing back and holds what the client has not read, so neither
limit can trip there (a known limit of that path, see ``docs/reliability.md``). A replica that
serves the socket itself (``haproxy``, the default, and ``direct``) pushes back, and the budget
holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from fastapi import WebSocket

from s2s.log import logger
from s2s.service.envelope import Envelope
from s2s.service.subscribe import SubscriberTooSlow, SubscriptionHub

from .api import audio_frame
from .web import CLOSE_TOO_SLOW

__all__ = ["TOO_SLOW_REASON", "send_events"]

log = logger.getChild("ingress")

TOO_SLOW_REASON = "client too slow: reconnect and resume with last_seq"


async def send_events(
    websocket: WebSocket,
    hub: SubscriptionHub,
    session_id: str,
    last_seq: int,
    *,
    max_bytes: int,
    stall_s: float,
    sent: Callable[[Envelope], None] = lambda envelope: None,
) -> bool:
    """Send the session's events after ``last_seq`` until ``session_closed`` (then True), or
    until the client falls behind the budget (the socket is closed with 4408, then False).
    ``sent`` is called after each event the client's transport took."""
    try:
        async with hub.subscribe(
            session_id, last_seq, max_queued_bytes=max_bytes, on_overflow="raise"
        ) as envelopes:
            async for envelope in envelopes:
                async with asyncio.timeout(stall_s):
                    await _send(websocket, envelope)
                sent(envelope)
                if envelope.type == "session_closed":
                    return True
    except (SubscriberTooSlow, TimeoutError) as exc:
        why = (
            f"one write took over {stall_s:g} s"
            if isinstance(exc, TimeoutError)
            else f"over {max_bytes} bytes of events waiting"
        )
        log.warning("stream of %s: client too slow (%s); closing with 4408", session_id, why)
        with contextlib.suppress(Exception):  # the close frame waits behind what is buffered
            async with asyncio.timeout(stall_s):
                await websocket.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
        return False
    return True


async def _send(websocket: WebSocket, envelope: Envelope) -> None:
    if envelope.type == "audio_output" and envelope.audio is not None:
        frame = audio_frame(envelope.seq, envelope.data.get("item_id"), envelope.audio)
        await websocket.send_bytes(frame)
    else:
        await websocket.send_text(json.dumps(envelope.to_json(include_audio=False)))
