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


def _raise_any(errors: list[Exception]) -> None:
    """Raise what the hooks of one kind raised: the one error, or an ExceptionGroup of several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"{len(errors)} hooks raised", errors)


def compose_hooks(*hooks: Hooks | None) -> Hooks:
    """Merge several :class:`Hooks` into one; every hook of every kind runs, in order.

    A hook that raises does not stop the later hooks of its kind: once they all ran, the composed
    hook raises that error (an :class:`ExceptionGroup` if several raised), which the session
    reports as it does for a single hook.

    For ``on_error`` each hook receives the error as returned by the hook before it (a hook may
    replace it with a more specific one; one that raises leaves it as it was). If any hook returns
    ``None`` the composed hook returns ``None``: the error is suppressed, though the later hooks
    still see it.
    """
    present = [h for h in hooks if h is not None]

    turns = [h.on_turn for h in present if h.on_turn is not None]
    interrupts = [h.on_interrupt for h in present if h.on_interrupt is not None]
    tool_calls = [h.on_tool_call for h in present if h.on_tool_call is not None]
    errors = [h.on_error for h in present if h.on_error is not None]

    async def run_all(fns: list[Callable[..., Awaitable[None] | None]], *args: object) -> None:
        raised: list[Exception] = []
        for fn in fns:
            try:
                await _call(fn, *args)
            except Exception as exc:
                raised.append(exc)
        _raise_any(raised)

    async def on_turn(user_text: str, assistant_text: str) -> None:
        await run_all(turns, user_text, assistant_text)

    async def on_interrupt() -> None:
        await run_all(interrupts)

    async def on_tool_call(call: ToolCall) -> None:
        await run_all(tool_calls, call)

    async def on_error(error: S2SError) -> S2SError | None:
        current = error
        suppressed = False
        raised: list[Exception] = []
        for fn in errors:
            try:
                result = await _call(fn, current)
            except Exception as exc:
                raised.append(exc)
                continue
            if result is None:
                suppressed = True
            else:
                current = result
        _raise_any(raised)
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
