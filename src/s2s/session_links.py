"""The pieces a :class:`~s2s.session.Session` is built from: its provider connections
(:class:`Link`), the input it holds while a call moves (:class:`Switch`), its counters and the
one place application input reaches a protocol (:func:`dispatch`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import S2SError
from .protocol import ProviderProtocol
from .transport import Transport

if TYPE_CHECKING:
    from .engine import Provider

__all__ = ["Link", "SessionStats", "Stop", "Switch", "dispatch"]

_now = time.monotonic


@dataclass(slots=True)
class Stop:
    """The end of a session's event stream (with the error that ended it, if any)."""

    error: S2SError | None


@dataclass(eq=False, slots=True)
class Link:
    """One provider connection."""

    protocol: ProviderProtocol
    provider: Provider
    transport: Transport | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    error: S2SError | None = None
    retired: bool = False
    deadline: float | None = None
    #: The provider sent something real (audio, a transcript, a tool call) on this link.
    active: bool = False
    ready_at: float = 0.0


@dataclass(slots=True)
class Switch:
    """Application input held while the call moves to a new connection."""

    started: float
    ops: list[tuple[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0
    #: Moving to another provider (a connection to the same one must not be committed).
    failover: bool = False


@dataclass(slots=True)
class SessionStats:
    """Counters for one session (cheap; read them for metrics)."""

    audio_in_ms: float = 0.0
    audio_out_ms: float = 0.0
    events: int = 0
    resumptions: int = 0
    failovers: int = 0
    last_gap_ms: float = 0.0


def dispatch(protocol: ProviderProtocol, op: str, value: Any) -> None:
    """Hand one application input (an op a :class:`Switch` may hold) to ``protocol``."""
    now = _now()
    if op == "audio":
        protocol.send_audio(value, now)
    elif op == "text":
        protocol.send_text(value, now)
    elif op == "tool_result":
        protocol.send_tool_result(value, now)
    elif op == "end_turn":
        protocol.end_turn(now)
    elif op == "interrupt":
        protocol.interrupt(now)
    else:  # pragma: no cover - internal
        raise AssertionError(op)
