"""How a session moves a call: to a new connection of the same provider (a time limit, a
``goAway``, a dropped socket) or to the next provider of ``Config.failover`` (a failure retrying
will not fix). Either way the application's input is held in order meanwhile and replayed into
the new connection, and the application sees one event with the measured gap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .audio.formats import LinkAudio
from .errors import InvalidInputError, ProviderError, S2SError
from .events import EventType, SessionEvent
from .failover import AudioCarrier, ProviderChain, carry_over
from .log import logger
from .protocol import Continuation
from .session_links import Link, SessionStats, Switch, dispatch

if TYPE_CHECKING:
    from .engine import Provider

__all__ = ["CallMoves"]

_now = time.monotonic
log = logger.getChild("session")


class CallMoves:
    """The connection-moving half of :class:`~s2s.session.Session` (a mixin: it uses the
    session's links, buffers and delivery)."""

    provider: str
    stats: SessionStats
    _provider: Provider
    _chain: ProviderChain
    _link: Link | None
    _switch: Switch | None
    _closing: bool
    _barren: int
    _link_audio: LinkAudio
    _deliver_lock: asyncio.Lock

    if TYPE_CHECKING:

        @property
        def closed(self) -> bool: ...

        async def _connect(
            self, continuation: Continuation | None, provider: Provider | None = None
        ) -> Link: ...

        async def _after(self, link: Link) -> None: ...

        async def _retire(self, link: Link, *, polite: bool) -> None: ...

        async def _fail(self, error: S2SError) -> None: ...

        async def _deliver(self, event: SessionEvent) -> None: ...

        def _spawn(self, coro: Coroutine[Any, Any, None], link: Link | None = None) -> None: ...

        def _use_provider(self, provider: Provider) -> None: ...

        def _link_audio_for(self, provider: Provider) -> LinkAudio: ...

    # -- continuing on a new connection -----------------------------------------------------

    def _begin_switch(self, old: Link, reason: str, *, lost: bool) -> None:
        """Start moving the call off ``old``: from now on :meth:`_apply` holds the input."""
        if lost:  # retired now, even mid-switch; waking its timer ends it (its read loop ends)
            old.retired = True
            old.wake.set()
        if self._switch is not None or self._closing:
            return
        switch = self._switch = Switch(started=_now())
        self._spawn(self._continue(old, switch, reason, lost=lost))

    async def _continue(self, old: Link, switch: Switch, reason: str, *, lost: bool) -> None:
        started = switch.started
        carry = old.protocol.continuation(reason)
        log.info(
            "continuing the call on a new connection (%s; %d history items, %d ms pending audio)",
            reason,
            len(carry.conversation),
            round(self._link_audio.input_ms(len(carry.pending_audio))),
        )
        if self._barren:  # the last connection died before doing anything: back off first
            await asyncio.sleep(self._provider.reconnect.delay(self._barren - 1))
        try:
            link = await self._connect(carry)
        except S2SError as exc:
            if switch.failover:  # the provider failed for good meanwhile; failover goes on
                return
            if lost or not exc.retryable:
                await self._fail(exc)
                return
            # Some providers refuse a second connection while the first is open (Gemini has been
            # reported to refuse a resumption with 1011 then). Close the old one and retry once.
            log.warning("no new connection while the old one is open (%s); closing it first", exc)
            carry = old.protocol.continuation(reason)
            await self._retire(old, polite=True)
            lost = True
            try:
                link = await self._connect(carry)
            except S2SError as retry_exc:
                if not switch.failover:
                    await self._fail(retry_exc)
                return
        if self.closed or switch.failover:  # closed, or moving to another provider, meanwhile
            await self._retire(link, polite=True)
            return
        self._switch = None
        self._link = link
        buffered_ms = self._link_audio.input_ms(switch.audio_bytes)
        refused: list[InvalidInputError] = []
        for op, value in switch.ops:
            try:
                dispatch(link.protocol, op, value)
            except InvalidInputError as exc:  # accepted into the buffer, refused by the provider
                refused.append(exc)
        gap_ms = (_now() - started) * 1000
        self.stats.resumptions += 1
        self.stats.last_gap_ms = gap_ms
        resumed = SessionEvent(
            type=EventType.SESSION_RESUMED,
            reason=reason,
            at=_now(),
            data={
                "gap_ms": round(gap_ms, 1),
                "history_items": len(carry.conversation),
                "replayed_audio_ms": round(self._link_audio.input_ms(len(carry.pending_audio)), 1),
                "buffered_audio_ms": round(buffered_ms, 1),
            },
        )
        async with self._deliver_lock:
            await self._deliver(resumed)
            for refusal in refused:
                log.warning("input buffered during the switch was refused: %s", refusal)
                await self._deliver(SessionEvent(type=EventType.ERROR, error=refusal, at=_now()))
        await self._after(link)
        if not lost:
            await self._retire(old, polite=True)

    # -- moving to the next provider -------------------------------------------------------

    def _begin_failover(self, error: S2SError) -> None:
        """The current provider failed for good: hold the input and move to the next one."""
        switch = self._switch
        if switch is not None and switch.failover:
            return  # already moving
        if switch is None:
            switch = self._switch = Switch(started=_now())
        switch.failover = True
        old = self._link
        carry = old.protocol.continuation("failover") if old is not None else Continuation()
        log.warning(
            "%s failed for good (%s); moving the call to %s (%d history items, %d ms pending "
            "audio)",
            self.provider,
            error,
            self._chain.remaining()[0].name,
            len(carry.conversation),
            round(self._link_audio.input_ms(len(carry.pending_audio))),
        )
        if old is not None:
            old.retired = True  # input is held from now on; its read loop and timer end
            old.wake.set()
            self._spawn(self._retire(old, polite=False))
        self._spawn(self._fail_over(switch, carry, error))

    async def _fail_over(self, switch: Switch, carry: Continuation, error: S2SError) -> None:
        old_audio, first = self._link_audio, self.provider
        last = error
        for provider in self._chain.remaining():
            carrier = AudioCarrier(old_audio, self._link_audio_for(provider))
            moved = carry_over(carry, carrier)
            try:
                link = await self._connect(moved, provider)
            except ProviderError as exc:
                log.warning("failover to %s failed: %s", provider.name, exc)
                last = exc
                continue
            if self._closing:
                await self._retire(link, polite=True)
                return
            self._use_provider(provider)
            self._switch = None
            self._link = link
            self._barren = 0
            refused: list[InvalidInputError] = []
            held = [
                (op, carrier.convert(value) if op == "audio" else value) for op, value in switch.ops
            ]
            held.append(("audio", carrier.flush()))
            for op, value in held:
                if op == "audio" and not value:
                    continue
                try:
                    dispatch(link.protocol, op, value)
                except InvalidInputError as exc:  # accepted into the buffer, refused now
                    refused.append(exc)
            gap_ms = (_now() - switch.started) * 1000
            self.stats.failovers += 1
            self.stats.last_gap_ms = gap_ms
            buffered_ms = old_audio.input_ms(switch.audio_bytes)
            switched = self._switched_event(first, error, gap_ms, moved, buffered_ms)
            async with self._deliver_lock:
                await self._deliver(switched)
                for refusal in refused:
                    log.warning("input held during the failover was refused: %s", refusal)
                    await self._deliver(
                        SessionEvent(type=EventType.ERROR, error=refusal, at=_now())
                    )
            await self._after(link)
            return
        self._chain.move_to(self._chain.remaining()[-1])  # none left: the next failure ends it
        await self._fail(last)

    def _switched_event(
        self,
        first: str,
        error: S2SError,
        gap_ms: float,
        moved: Continuation | None,
        buffered_ms: float,
    ) -> SessionEvent:
        conversation = moved.conversation if moved is not None else None
        return SessionEvent(
            type=EventType.PROVIDER_SWITCHED,
            reason=error.code or type(error).__name__,
            at=_now(),
            data={
                "from": first,
                "to": self.provider,
                "gap_ms": round(gap_ms, 1),
                "history_items": len(conversation) if conversation is not None else 0,
                "pending_tool_calls": (
                    len(conversation.pending_calls()) if conversation is not None else 0
                ),
                "buffered_audio_ms": round(buffered_ms, 1),
                "error": error.to_dict(),
            },
        )
