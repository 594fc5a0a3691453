"""Application callbacks on session milestones, and their composition.

Hooks run inside the session's event pump, in event order, before the event reaches ``recv()``.
Each may be a plain function or a coroutine function. Keep them quick: a slow hook delays every
later event of the call.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .config import ToolCall
from .errors import S2SError

__all__ = ["Hooks", "compose_hooks"]

OnTurn = Callable[[str, str], Awaitable[None] | None]
OnInterrupt = Callable[[], Awaitable[None] | None]
OnToolCall = Callable[[ToolCall], Awaitable[None] | None]
OnError = Callable[[S2SError], Awaitable[S2SError | None] | S2SError | None]


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks for the moments an application usually cares about.

    Attributes:
        on_turn: ``(user_text, assistant_text)`` when the model finishes answering a turn.
        on_interrupt: the model's answer was cut (caller barge-in or ``interrupt()``).
        on_tool_call: the model asked for a tool (the TOOL_CALL event still follows).
        on_error: a non-fatal error. Return the error (or another) to deliver it as an ERROR
            event; return ``None`` to suppress it.
    """

    on_turn: OnTurn | None = None
    on_interrupt: OnInterrupt | None = None
    on_tool_call: OnToolCall | None = None
    on_error: OnError | None = None


async def _call[T](fn: Callable[..., Awaitable[T] | T], *args: object) -> T:
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


def compose_hooks(*hooks: Hooks | None) -> Hooks:
    """Merge several :class:`Hooks` into one; every hook of every kind runs, in order.

    For ``on_error`` each hook receives the error as returned by the hook before it (a hook may
    replace it with a more specific one). If any hook returns ``None`` the composed hook returns
    ``None``: the error is suppressed, though the later hooks still see it.
    """
    present = [h for h in hooks if h is not None]

    turns = [h.on_turn for h in present if h.on_turn is not None]
    interrupts = [h.on_interrupt for h in present if h.on_interrupt is not None]
    tool_calls = [h.on_tool_call for h in present if h.on_tool_call is not None]
    errors = [h.on_error for h in present if h.on_error is not None]

    async def on_turn(user_text: str, assistant_text: str) -> None:
        for fn in turns:
            await _call(fn, user_text, assistant_text)

    async def on_interrupt() -> None:
        for fn in interrupts:
            await _call(fn)

    async def on_tool_call(call: ToolCall) -> None:
        for fn in tool_calls:
            await _call(fn, call)

    async def on_error(error: S2SError) -> S2SError | None:
        current = error
        suppressed = False
        for fn in errors:
            result = await _call(fn, current)
            if result is None:
                suppressed = True
            else:
                current = result
        return None if suppressed else current

    return Hooks(
        on_turn=on_turn if turns else None,
        on_interrupt=on_interrupt if interrupts else None,
        on_tool_call=on_tool_call if tool_calls else None,
        on_error=on_error if errors else None,
    )


async def run_hook[T](fn: Callable[..., Awaitable[T] | T], *args: object) -> T:
    """Call a hook that may be sync or async (used by the session runtime)."""
    return await _call(fn, *args)
