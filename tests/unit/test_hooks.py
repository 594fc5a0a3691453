import s2s
from s2s import Hooks, ToolCall, compose_hooks


async def test_all_hooks_run_in_order_sync_and_async():
    calls: list[str] = []

    async def turn_a(user: str, assistant: str) -> None:
        calls.append(f"a:{user}/{assistant}")

    def turn_b(user: str, assistant: str) -> None:
        calls.append(f"b:{user}/{assistant}")

    hooks = compose_hooks(
        Hooks(on_turn=turn_a, on_tool_call=lambda c: calls.append(f"tool-a:{c.name}")),
        None,
        Hooks(on_turn=turn_b, on_interrupt=lambda: calls.append("interrupt-b")),
    )
    assert hooks.on_turn is not None and hooks.on_tool_call and hooks.on_interrupt
    await hooks.on_turn("hi", "hello")
    await hooks.on_tool_call(ToolCall("c", "lookup", "{}"))
    await hooks.on_interrupt()
    assert calls == ["a:hi/hello", "b:hi/hello", "tool-a:lookup", "interrupt-b"]


async def test_on_error_none_suppresses_but_later_hooks_still_see_it():
    seen: list[str] = []
    original = s2s.ProviderError("boom", code="x")

    def suppress(err):
        seen.append(f"suppress:{err.code}")

    def observe(err):
        seen.append(f"observe:{err.code}")
        return err

    hooks = compose_hooks(Hooks(on_error=suppress), Hooks(on_error=observe))
    assert await hooks.on_error(original) is None
    assert seen == ["suppress:x", "observe:x"]


async def test_on_error_may_replace_the_error():
    specific = s2s.RateLimitError("slow down")
    hooks = compose_hooks(Hooks(on_error=lambda e: specific), Hooks(on_error=lambda e: e))
    assert await hooks.on_error(s2s.ProviderError("x")) is specific


def test_composing_nothing_gives_empty_hooks():
    assert compose_hooks() == Hooks()
