"""How a session gets a ready provider connection: connecting with the provider's reconnect
policy (connect and set-up timeouts, backoff, retryable errors only) and, at start, going on
down ``Config.failover`` past providers that fail for good."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .audio.formats import LinkAudio
from .errors import ProviderConnectionError, S2SError
from .events import SessionEvent
from .failover import AudioCarrier, ProviderChain, carry_over, fails_over
from .log import logger
from .protocol import Continuation
from .session_links import Link, SessionStats, Stop

if TYPE_CHECKING:
    from .engine import Provider

__all__ = ["Connecting"]

_now = time.monotonic
log = logger.getChild("session")


class Connecting:
    """The connecting part of :class:`~s2s.session.Session` (a mixin)."""

    provider: str
    stats: SessionStats
    _provider: Provider
    _chain: ProviderChain
    _link: Link | None
    _closing: bool
    _closed: asyncio.Event
    _link_audio: LinkAudio
    _queue: asyncio.Queue[SessionEvent | Stop]

    if TYPE_CHECKING:

        async def _after(self, link: Link) -> None: ...

        async def _retire(self, link: Link, *, polite: bool) -> None: ...

        async def _read_loop(self, link: Link) -> None: ...

        async def _timer_loop(self, link: Link) -> None: ...

        def _spawn(self, coro: Coroutine[Any, Any, None], link: Link | None = None) -> None: ...

        def _cancel_tasks(self) -> None: ...

        def _update_idle(self, link: Link) -> None: ...

        def _use_provider(self, provider: Provider) -> None: ...

        def _switched_event(
            self,
            first: str,
            error: S2SError,
            gap_ms: float,
            moved: Continuation | None,
            buffered_ms: float,
        ) -> SessionEvent: ...

    # -- start-up ---------------------------------------------------------------------------

    async def _start(self, continuation: Continuation | None = None) -> None:
        """Connect (retrying retryable failures) and wait until the provider is ready; on a
        provider that fails for good, go on down ``Config.failover``."""
        started = _now()
        first = self.provider
        if continuation is not None and continuation.provider:
            resumed_on = self._chain.find(continuation.provider)
            if resumed_on is not None:  # the snapshot was taken after a failover
                self._use_provider(resumed_on)
        failure: S2SError | None = None
        try:
            while True:
                try:
                    self._link = await self._connect(continuation)
                    break
                except S2SError as exc:
                    if not fails_over(exc, self._chain):
                        raise
                    failure = exc
                    old_audio, nxt = self._link_audio, self._chain.remaining()[0]
                    log.warning("%s failed at start (%s); trying %s", self.provider, exc, nxt.name)
                    self._use_provider(nxt)
                    if continuation is not None:
                        carrier = AudioCarrier(old_audio, self._link_audio)
                        continuation = carry_over(continuation, carrier)
        except BaseException:
            self._closing = True
            self._cancel_tasks()
            self._closed.set()
            raise
        self._update_idle(self._link)
        if failure is not None:
            self.stats.failovers += 1
            self._queue.put_nowait(
                self._switched_event(first, failure, (_now() - started) * 1000, continuation, 0.0)
            )
        log.info("session started with %s", self.provider)

    async def _connect(
        self, continuation: Continuation | None, provider: Provider | None = None
    ) -> Link:
        provider = provider or self._provider
        name = provider.name
        policy = provider.reconnect
        last: S2SError | None = None
        for attempt in range(policy.attempts):
            if attempt:
                await asyncio.sleep(policy.delay(attempt - 1))
            link = Link(provider.new_protocol(continuation), provider)
            try:
                link.transport = await asyncio.wait_for(
                    provider.connect(), provider.connect_timeout
                )
            except TimeoutError:
                last = ProviderConnectionError(
                    f"{name}: connecting timed out after {provider.connect_timeout:.0f} s",
                    provider=name,
                )
                continue
            except S2SError as exc:
                if not exc.retryable:
                    raise
                last = exc
                log.warning("connect attempt %d failed: %s", attempt + 1, exc)
                continue
            self._spawn(self._read_loop(link), link)
            self._spawn(self._timer_loop(link), link)
            try:
                link.protocol.connection_made(_now())
                await self._after(link)
                await asyncio.wait_for(link.settled.wait(), provider.setup_timeout)
            except TimeoutError:
                link.error = ProviderConnectionError(
                    f"{name}: no answer to session setup within {provider.setup_timeout:.0f} s",
                    provider=name,
                )
            except BaseException:  # cancelled (the session closed) or a bug: drop the link
                link.retired = True
                link.transport.abort()
                raise
            if link.error is None:
                link.ready_at = _now()
                return link
            await self._retire(link, polite=False)
            if not link.error.retryable:
                raise link.error
            last = link.error
            log.warning("setup attempt %d failed: %s", attempt + 1, link.error)
        assert last is not None
        raise ProviderConnectionError(
            f"{name}: gave up after {policy.attempts} attempts: {last.message}",
            code=last.code,
            provider=name,
        ) from last
