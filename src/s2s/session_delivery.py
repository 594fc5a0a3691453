"""What a session does with each event before the application gets it: the model's audio
converted to the session's format, hooks run (a raising hook becomes an ERROR event, never a
lost event), counters kept."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from .audio.convert import AudioOut
from .config import Config
from .errors import S2SError
from .events import EventType, Role, SessionEvent
from .hooks import Hooks, run_hook
from .log import logger
from .session_links import SessionStats, Stop

__all__ = ["EventDelivery"]

_now = time.monotonic
log = logger.getChild("session")


class EventDelivery:
    """The delivering half of :class:`~s2s.session.Session` (a mixin)."""

    config: Config
    stats: SessionStats
    _audio_out: AudioOut
    _hooks: Hooks
    _queue: asyncio.Queue[SessionEvent | Stop]
    _last_audio_item: str | None
    _user_text: list[str]
    _assistant_text: list[str]

    # -- delivery ---------------------------------------------------------------------------

    async def _deliver(self, event: SessionEvent) -> None:
        kind = event.type
        convert = self._audio_out
        if kind is EventType.AUDIO_OUTPUT:
            if not convert.passthrough:
                audio = convert.process(event.audio or b"")
                if not audio:
                    return
                event = replace(
                    event,
                    audio=audio,
                    sample_rate=self.config.sample_rate,
                    encoding=self.config.audio_format,
                )
            self._last_audio_item = event.item_id
            self.stats.audio_out_ms += event.duration_ms
        elif kind is EventType.TURN_END and not convert.passthrough:
            tail = convert.flush()
            if tail:
                await self._publish(
                    SessionEvent(
                        type=EventType.AUDIO_OUTPUT,
                        audio=tail,
                        sample_rate=self.config.sample_rate,
                        encoding=self.config.audio_format,
                        response_id=event.response_id,
                        item_id=self._last_audio_item,
                        at=event.at,
                    )
                )
        elif kind is EventType.INTERRUPTED:
            convert.reset()

        hooks = self._hooks
        try:
            if kind is EventType.TRANSCRIPT and event.final and event.text:
                target = self._user_text if event.role is Role.USER else self._assistant_text
                target.append(event.text)
            elif kind is EventType.TURN_END and event.reason != "tool_calls":
                user, assistant = " ".join(self._user_text), " ".join(self._assistant_text)
                self._user_text.clear()
                self._assistant_text.clear()
                if hooks.on_turn is not None:
                    await run_hook(hooks.on_turn, user, assistant)
            elif kind is EventType.INTERRUPTED and hooks.on_interrupt is not None:
                await run_hook(hooks.on_interrupt)
            elif kind is EventType.TOOL_CALL and hooks.on_tool_call is not None:
                await run_hook(hooks.on_tool_call, event.tool_call)
            elif kind is EventType.ERROR and hooks.on_error is not None and event.error:
                replaced = await run_hook(hooks.on_error, event.error)
                if replaced is None:
                    return
                event = replace(event, error=replaced)
        except Exception as exc:
            log.exception("hook failed on %s", kind.value)
            await self._publish(event)
            await self._publish(
                SessionEvent(
                    type=EventType.ERROR,
                    error=S2SError(f"a hook raised while handling {kind.value}: {exc!r}"),
                    at=_now(),
                )
            )
            return
        await self._publish(event)

    async def _publish(self, event: SessionEvent) -> None:
        self.stats.events += 1
        self._queue.put_nowait(event)
