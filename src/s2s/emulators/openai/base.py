"""State shared by the parts of :class:`~.session.EmulatedSession`, and what each part needs.

The session class is assembled from sibling modules, one concern each: :mod:`.input_audio` (the
input audio buffer, server VAD / turn detection, commits and input transcription),
:mod:`.conversation` (``conversation.item.*`` edits), :mod:`.responses` (response lifecycle:
create, cancel, barge-in, what to answer, ``response.done``), :mod:`.tool_calls` (emitting a
function call), :mod:`.output` (streaming an assistant message as text or audio) and
:mod:`.session` (the connection: start, dispatch, ``session.update``, close, time limit).
:class:`SessionBase` declares the state they share (set in
:meth:`EmulatedSession.__init__ <.session.EmulatedSession>`), the primitives every part uses,
and, as abstract methods, what one part calls in another.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...tasks import TaskSet
from .. import behavior
from ..vad import EnergyVad
from . import events as ev
from .items import _Item
from .options import EmulatorOptions

if TYPE_CHECKING:
    from .responses import _Response

__all__ = ["Close", "Send", "SessionBase"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class SessionBase(ABC):
    """The server state the parts of an emulated OpenAI Realtime session share."""

    _send_raw: Send
    _close: Close
    options: EmulatorOptions
    ids: ev.Ids
    model: str
    started: float
    session: dict[str, Any]
    conversation_id: str
    items: list[_Item]
    received: Counter[str]
    audio_received_ms: float
    closed: bool
    _buffer: bytearray
    _buffer_rate: int
    _vad: EnergyVad | None
    _speech_item: str | None
    _response: _Response | None
    _tasks: TaskSet
    frames_in: list[str | bytes]
    frames_out: list[dict[str, Any]]
    first_audio: bytes
    append_times: list[float]
    delta_times: dict[str, list[float]]

    # -- plumbing ------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.options.event_delay_s:
            await asyncio.sleep(self.options.event_delay_s)
        if self.options.record:
            self.frames_out.append(event)
        await self._send_raw(event)

    async def error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        await self.send(
            ev.error(self.ids, code, message, type=type, param=param, event_id=event_id)
        )

    def _format(self, direction: str) -> str:
        fmt = self.session["audio"][direction].get("format") or {}
        return str(fmt.get("type") or "audio/pcm")

    # -- implemented by the other parts ----------------------------------------------------------

    @abstractmethod
    async def _cancel(self, response: _Response, reason: str) -> None:
        """:mod:`.responses`: cancel ``response`` and wait for it to finish."""

    @abstractmethod
    async def _start_response(self, modalities: list[str] | None = None) -> None:
        """:mod:`.responses`: start generating a response."""

    @abstractmethod
    async def _emit_call(
        self, response: _Response, index: int, request: behavior.ToolRequest
    ) -> dict[str, Any]:
        """:mod:`.tool_calls`: emit one function call item; returns its wire shape."""

    @abstractmethod
    async def _emit_messages(
        self, response: _Response, parts: list[tuple[str, str | None]], modalities: list[str]
    ) -> list[_Item]:
        """:mod:`.output`: stream assistant message items, one per ``(text, phase)``."""
