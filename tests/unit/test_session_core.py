"""Session over an in-memory transport and a scripted protocol (see ``session_fakes``).

Everything here synchronises on events (a frame sent, an event received, a connect() call, a
task finishing), never on wall-clock sleeps; every wait is bounded by ``WAIT_S``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from s2s import (
    S2S,
    Config,
    EventType,
    Hooks,
    Role,
    SessionEvent,
    ToolCall,
    ToolResult,
    Usage,
)
from s2s.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderServerError,
    RateLimitError,
    S2SError,
    SessionClosedError,
)
from s2s.session import MAX_SWITCH_BUFFER_MS

from .session_fakes import (
    NAME,
    RATE,
    WAIT_S,
    Events,
    ScriptedProvider,
    audio_event,
    commit_frame,
    deadline_frame,
    event_frame,
    fail_frame,
    other_tasks,
    ready_frame,
    rotate_frame,
    settle_tasks,
    start,
    tool_call_event,
    turn_end_event,
)

pytestmark = pytest.mark.timeout(10)


def pcm(ms: int, fill: int, *, rate: int = RATE) -> bytes:
    """``ms`` of PCM16 whose every sample is ``fill`` (so chunks are told apart on the wire)."""
    return fill.to_bytes(2, "little", signed=True) * (rate * ms // 1000)


async def bounded[T](awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(WAIT_S):
        return await awaitable


async def begin_reconnect(provider: ScriptedProvider, *, code: int | None = None) -> None:
    """Drop the current connection and return once the session is connecting a new one.

    The new connection does not get ready until the test feeds it ``ready_frame()``, so the
    session stays in its switch (buffering input) until then.
    """
    provider.auto_ready = False
    provider.transport.drop(code)
    await provider.next_connect()


APP_OPS = ("audio", "text", "tool_result", "end_turn", "cancel")


def app_ops(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["op"] in APP_OPS]


# -- input and events ----------------------------------------------------------------------------


async def test_input_reaches_the_protocol_and_the_wire_in_order() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        provider.transport.feed(event_frame(tool_call_event("call-1")))
        await events.until(EventType.TOOL_CALL)
        a1, a2 = pcm(20, 1), pcm(40, 2)

        await session.send_audio(a1)
        await session.send_text("hello")
        await session.send_tool_result(ToolResult("call-1", '{"ok": true}'))
        await session.send_audio(a2)
        await session.end_turn()

        assert provider.protocol.app_calls() == [
            ("audio", a1),
            ("text", "hello"),
            ("tool_result", "call-1", '{"ok": true}'),
            ("audio", a2),
            ("end_turn",),
        ]
        # Each send_* has put its frame on the wire by the time it returns.
        assert app_ops(provider.transport.sent) == [
            {"op": "audio", "pcm": a1},
            {"op": "text", "text": "hello"},
            {"op": "tool_result", "call_id": "call-1", "content": '{"ok": true}'},
            {"op": "audio", "pcm": a2},
            {"op": "end_turn"},
        ]
        assert session.stats.audio_in_ms == pytest.approx(60.0)


async def test_bad_input_is_refused_and_leaves_the_session_unchanged() -> None:
    session, provider = await start()
    async with session:
        with pytest.raises(InvalidInputError):
            await session.send_audio(b"\x00\x01\x02")  # odd length: not PCM16
        with pytest.raises(InvalidInputError):
            await session.send_audio(pcm(10, 1), sample_rate=4000)
        with pytest.raises(InvalidInputError):
            await session.send_text("   ")
        with pytest.raises(InvalidInputError):
            await session.send_tool_result("not a result")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="no open tool call"):
            await session.send_tool_result(ToolResult("never-called", "x"))  # protocol refuses
        await session.send_audio(b"")  # nothing to send: not an error, nothing sent
        assert provider.protocol.app_calls() == []
        assert provider.transport.ops() == []
        assert not session.closed
        await session.send_text("still fine")
        assert provider.protocol.app_calls() == [("text", "still fine")]


async def test_events_come_out_of_recv_in_order_and_typed() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        audio = pcm(20, 3)
        script = [
            SessionEvent(EventType.RESPONSE_STARTED, response_id="r1"),
            SessionEvent(EventType.TRANSCRIPT, text="hi there", role=Role.USER, final=True),
            audio_event(audio, item_id="item-9"),
            SessionEvent(EventType.TEXT_OUTPUT, text="hello", final=True, response_id="r1"),
            tool_call_event("c1", "lookup", '{"id": 7}'),
            SessionEvent(EventType.USAGE, usage=Usage(input_tokens=3, output_tokens=5)),
            SessionEvent(EventType.ERROR, error=RateLimitError("slow down", code="rl")),
            turn_end_event("tool_calls"),
        ]
        provider.transport.feed(*[event_frame(e) for e in script])
        got = await events.until(EventType.TURN_END)

        assert [e.type for e in got] == [e.type for e in script]
        assert all(isinstance(e, SessionEvent) for e in got)
        assert got[1].role is Role.USER and got[1].text == "hi there" and got[1].final
        assert got[2].audio == audio and got[2].sample_rate == RATE
        assert got[2].item_id == "item-9" and got[2].duration_ms == pytest.approx(20.0)
        assert got[4].tool_call == ToolCall("c1", "lookup", '{"id": 7}')
        assert got[4].tool_call.args == {"id": 7}
        assert got[5].usage == Usage(input_tokens=3, output_tokens=5)
        assert isinstance(got[6].error, RateLimitError) and got[6].error.code == "rl"
        assert got[7].reason == "tool_calls"
        assert session.stats.events == len(script)
        assert session.stats.audio_out_ms == pytest.approx(20.0)
        assert not session.closed  # a non-fatal ERROR event does not end the call


async def test_audio_is_resampled_between_the_application_and_the_provider_rate() -> None:
    app_rate = 8000
    session, provider = await start(Config(sample_rate=app_rate))
    async with session:
        events = Events(session)
        for i in range(10):  # 100 ms of caller audio in 10 ms chunks at the app's rate
            await session.send_audio(pcm(10, 100 + i, rate=app_rate))
        sent = b"".join(c[1] for c in provider.protocol.app_calls() if c[0] == "audio")
        assert 0 < len(sent) / 2 / RATE * 1000 < 100.0  # the streaming filter holds some back
        # A chunk at another rate (here the provider's own) flushes what the filter held first.
        native = pcm(10, 500)
        await session.send_audio(native, sample_rate=RATE)
        calls = [c[1] for c in provider.protocol.app_calls() if c[0] == "audio"]
        assert calls[-1].endswith(native)
        assert sum(len(c) for c in calls) / 2 / RATE * 1000 == pytest.approx(110.0, abs=0.5)
        assert session.stats.audio_in_ms == pytest.approx(110.0)

        provider.transport.feed(
            event_frame(audio_event(pcm(100, 1000))), event_frame(turn_end_event())
        )
        got = await events.until(EventType.TURN_END)
        audio = [e for e in got if e.type is EventType.AUDIO_OUTPUT]
        assert audio and all(e.sample_rate == app_rate for e in audio)
        assert got[-2].type is EventType.AUDIO_OUTPUT  # the filter's tail, flushed at TURN_END
        assert sum(e.duration_ms for e in audio) == pytest.approx(100.0, abs=1.0)


async def test_idle_follows_the_protocol() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        idle_at_start = session.idle
        provider.transport.feed(event_frame(SessionEvent(EventType.RESPONSE_STARTED)))
        await events.until(EventType.RESPONSE_STARTED)
        assert idle_at_start and not session.idle
        waiter = asyncio.ensure_future(session.wait_idle())
        provider.transport.feed(event_frame(turn_end_event()))
        await events.until(EventType.TURN_END)
        await bounded(waiter)
        assert session.idle


# -- interrupt and playback reports --------------------------------------------------------------


async def test_interrupt_reaches_the_protocol_and_the_interrupted_event_runs_its_hook() -> None:
    interrupts: list[str] = []
    session, provider = await start(hooks=Hooks(on_interrupt=lambda: interrupts.append("x")))
    async with session:
        events = Events(session)
        provider.transport.feed(event_frame(SessionEvent(EventType.RESPONSE_STARTED)))
        await events.until(EventType.RESPONSE_STARTED)

        await session.interrupt()

        assert provider.protocol.app_calls() == [("interrupt",)]
        assert app_ops(provider.transport.sent) == [{"op": "cancel"}]
        interrupted = await events.next()
        assert interrupted.type is EventType.INTERRUPTED and interrupted.reason == "client"
        assert interrupts == ["x"]


async def test_playback_reports_go_to_the_current_protocol_and_bad_ones_are_refused() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        session.report_playback("item-1", 120.9)
        for item_id, played in [("", 10), (None, 10), ("item-1", -1), ("item-1", True)]:
            with pytest.raises(InvalidInputError):
                session.report_playback(item_id, played)  # type: ignore[arg-type]
        assert [c for c in provider.protocol.calls if c[0] == "report_playback"] == [
            ("report_playback", "item-1", 120)
        ]

        provider.transport.drop()
        await events.until(EventType.SESSION_RESUMED)
        session.report_playback("item-2", 40)
        assert provider.protocols[1].calls[-1] == ("report_playback", "item-2", 40)
        assert provider.protocols[0].calls.count(("report_playback", "item-2", 40)) == 0


# -- the switch buffer and replay ----------------------------------------------------------------


async def test_input_during_a_reconnect_is_buffered_then_delivered_once_in_order() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old, old_protocol = provider.transport, provider.protocol
        old.feed(event_frame(tool_call_event("call-1")))
        await events.until(EventType.TOOL_CALL)

        await begin_reconnect(provider)
        new, new_protocol = provider.transport, provider.protocol
        assert new is not old and new_protocol is not old_protocol
        chunks = [pcm(20, fill) for fill in (11, 12, 13)]
        await session.send_audio(chunks[0])
        await session.send_text("said while reconnecting")
        await session.send_audio(chunks[1])
        await session.send_tool_result(ToolResult("call-1", "42"))
        await session.send_audio(chunks[2])
        await session.end_turn()

        # Held: nothing reached the dead connection nor the one still setting up.
        assert old_protocol.app_calls() == [] and app_ops(old.sent) == []
        assert new_protocol.app_calls() == [] and app_ops(new.sent) == []
        assert not session.closed

        new.feed(ready_frame())
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        await session.send_text("said afterwards")

        expected = [
            ("audio", chunks[0]),
            ("text", "said while reconnecting"),
            ("audio", chunks[1]),
            ("tool_result", "call-1", "42"),
            ("audio", chunks[2]),
            ("end_turn",),
            ("text", "said afterwards"),
        ]
        assert new_protocol.app_calls() == expected
        assert app_ops(new.sent) == [
            {"op": "audio", "pcm": chunks[0]},
            {"op": "text", "text": "said while reconnecting"},
            {"op": "audio", "pcm": chunks[1]},
            {"op": "tool_result", "call_id": "call-1", "content": "42"},
            {"op": "audio", "pcm": chunks[2]},
            {"op": "end_turn"},
            {"op": "text", "text": "said afterwards"},
        ]
        assert app_ops(old.sent) == []  # nothing duplicated onto the old connection
        assert resumed.reason == "connection_lost"
        assert resumed.data["buffered_audio_ms"] == pytest.approx(60.0)
        assert resumed.data["history_items"] == 1  # the tool call carried over
        assert session.stats.resumptions == 1 and provider.connects == 2


async def test_resumption_replays_history_then_unheard_audio_then_buffered_then_new_input() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old, old_protocol = provider.transport, provider.protocol
        committed, unheard = pcm(20, 1), pcm(20, 2)
        await session.send_text("first question")
        await session.send_audio(committed)
        old.feed(commit_frame(), event_frame(SessionEvent(EventType.SPEECH_STOPPED)))
        await events.until(EventType.SPEECH_STOPPED)  # the provider has committed `committed`
        await session.send_audio(unheard)

        provider.auto_ready = False
        old.feed(rotate_frame("go_away"))
        await provider.next_connect()
        buffered = pcm(20, 3)
        await session.send_audio(buffered)
        await session.send_text("while switching")
        # During a rotation the old connection is still up and its events still arrive.
        old.feed(event_frame(SessionEvent(EventType.TRANSCRIPT, text="late", role=Role.ASSISTANT)))
        assert (await events.next()).text == "late"

        new = provider.transport
        new.feed(ready_frame())
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        later = pcm(20, 4)
        await session.send_audio(later)

        assert new.ops() == [
            {"op": "replay", "item": ["message", "user", "first question"]},
            {"op": "replay_audio", "pcm": unheard},
            {"op": "audio", "pcm": buffered},
            {"op": "text", "text": "while switching"},
            {"op": "audio", "pcm": later},
        ]
        assert new.sent[0] == {"op": "setup", "resumed": True}
        # The old connection got nothing after the switch began, then a goodbye, then a close.
        await bounded(old.released.wait())
        assert old.ops() == [
            {"op": "text", "text": "first question"},
            {"op": "audio", "pcm": committed},
            {"op": "audio", "pcm": unheard},
            {"op": "goodbye"},
        ]
        assert old.closed_by_session and not old.aborted
        assert ("continuation", "go_away") in old_protocol.calls
        assert resumed.reason == "go_away"
        assert resumed.data["history_items"] == 1
        assert resumed.data["replayed_audio_ms"] == pytest.approx(20.0)
        assert resumed.data["buffered_audio_ms"] == pytest.approx(20.0)
        assert resumed.data["gap_ms"] >= 0


async def test_a_protocol_timer_can_move_the_call_to_a_new_connection() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        provider.transport.feed(deadline_frame())  # a deadline already past
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        assert resumed.reason == "session_limit"
        assert ("timer_expired",) in provider.protocols[0].calls
        await bounded(provider.transports[0].released.wait())  # the old connection is let go
        assert len(provider.transports) == 2 and provider.transports[0].closed_by_session


async def test_switch_buffer_holds_up_to_its_limit_of_audio_and_refuses_more() -> None:
    limit_s = MAX_SWITCH_BUFFER_MS // 1000
    session, provider = await start()
    async with session:
        events = Events(session)
        await begin_reconnect(provider)
        second = pcm(1000, 7)
        for _ in range(limit_s):
            await session.send_audio(second)  # exactly at the limit: accepted

        with pytest.raises(InvalidInputError, match=f"more than {limit_s} s of audio"):
            await session.send_audio(pcm(1, 8))
        assert not session.closed
        await session.send_text("text is not counted against the limit")

        provider.transport.feed(ready_frame())
        await events.until(EventType.SESSION_RESUMED)
        calls = provider.protocol.app_calls()
        assert b"".join(c[1] for c in calls if c[0] == "audio") == second * limit_s
        assert calls[-1] == ("text", "text is not counted against the limit")
        after = pcm(20, 9)
        await session.send_audio(after)  # the switch is over: audio flows again
        assert provider.protocol.app_calls()[-1] == ("audio", after)


async def test_a_refused_chunk_does_not_count_against_the_switch_buffer() -> None:
    limit_s = MAX_SWITCH_BUFFER_MS // 1000
    session, provider = await start()
    async with session:
        events = Events(session)
        await begin_reconnect(provider)
        for _ in range(limit_s - 1):
            await session.send_audio(pcm(1000, 7))
        with pytest.raises(InvalidInputError):
            await session.send_audio(pcm(2000, 8))  # would exceed the limit: refused
        await session.send_audio(pcm(500, 9))  # fits: limit - 0.5 s in the buffer
        provider.transport.feed(ready_frame())
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        assert resumed.data["buffered_audio_ms"] == (limit_s - 0.5) * 1000


async def test_buffered_input_the_new_connection_refuses_is_an_error_event_after_resumed() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        await begin_reconnect(provider)
        await session.send_text("before")
        await session.send_tool_result(ToolResult("cancelled-call", "x"))  # unknown: refused later
        await session.send_text("after")
        provider.transport.feed(ready_frame())

        got = await events.until(EventType.SESSION_RESUMED)
        error = await events.next()
        assert got[-1].type is EventType.SESSION_RESUMED
        assert error.type is EventType.ERROR and isinstance(error.error, InvalidInputError)
        assert "cancelled-call" in str(error.error)
        # The refusal did not stop the rest of the buffer.
        assert provider.protocol.app_calls() == [("text", "before"), ("text", "after")]
        assert not session.closed


async def test_a_new_connection_that_fails_during_setup_is_replaced_not_used() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        await begin_reconnect(provider)
        await session.send_text("held")
        failed = provider.transport
        failed.drop()  # retryable, before it got ready
        await provider.next_connect()
        good = provider.transport
        assert good is not failed
        good.feed(ready_frame())
        await events.until(EventType.SESSION_RESUMED)

        assert app_ops(failed.sent) == []
        assert app_ops(good.sent) == [{"op": "text", "text": "held"}]
        assert provider.connects == 3 and session.stats.resumptions == 1


# -- errors: resume or end -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (None, "connection_lost"),  # no close frame: a network drop
        (1011, "connection_lost"),  # a retryable server error
        (1000, "connection_lost"),  # the protocol calls it orderly; the session still resumes
        (4008, "session_expired"),  # the provider's time limit
    ],
)
async def test_a_retryable_connection_loss_resumes_the_call(code: int | None, reason: str) -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old = provider.transport
        old.drop(code)
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        assert resumed.reason == reason
        assert provider.connects == 2 and provider.transport is not old
        await session.send_text("still here")
        assert app_ops(provider.transport.sent) == [{"op": "text", "text": "still here"}]
        assert not session.closed


@pytest.mark.parametrize(
    ("code", "error_type"), [(4000, InvalidRequestError), (4001, AuthenticationError)]
)
async def test_a_non_retryable_connection_loss_ends_the_session_with_that_error(
    code: int, error_type: type[S2SError]
) -> None:
    session, provider = await start()
    events = Events(session)
    provider.transport.feed(event_frame(SessionEvent(EventType.RESPONSE_STARTED)))
    provider.transport.drop(code, "refused")
    with pytest.raises(error_type) as raised:
        await events.rest()
    assert [e.type for e in events.seen] == [EventType.RESPONSE_STARTED]  # earlier events first
    assert raised.value.code == str(code)
    assert provider.connects == 1  # no attempt to resume
    assert session.closed
    with pytest.raises(SessionClosedError, match="refused"):
        await session.send_text("anyone?")
    with pytest.raises(error_type):  # later recv() calls end the same way
        await anext(session.recv())
    assert not await settle_tasks(set())
    await session.close()  # still safe


@pytest.mark.parametrize(
    ("frame", "error_type"),
    [
        (fail_frame("internal error", retryable=True), ProviderServerError),
        (b"\xc1 not msgpack", ProviderProtocolError),
    ],
    ids=["protocol-failure", "undecodable-frame"],
)
async def test_a_protocol_failure_ends_the_session_even_if_retryable(
    frame: bytes, error_type: type[S2SError]
) -> None:
    session, provider = await start()
    events = Events(session)
    provider.transport.feed(frame)
    with pytest.raises(error_type):
        await events.rest()
    assert provider.connects == 1
    assert provider.transport.aborted or provider.transport.closed_by_session
    assert not await settle_tasks(set())


@pytest.mark.parametrize(
    ("failures", "outcome"),
    [
        ([ProviderConnectionError("refused")], "resumed"),
        ([RateLimitError("busy"), ProviderServerError("oops")], "resumed"),
        ([ProviderConnectionError(f"refused {i}") for i in range(3)], ProviderConnectionError),
        ([AuthenticationError("key revoked")], AuthenticationError),
    ],
    ids=["one-retry", "two-retries", "gives-up", "not-retryable"],
)
async def test_reconnect_attempts_follow_the_policy(
    failures: list[S2SError], outcome: str | type[S2SError]
) -> None:
    session, provider = await start()
    events = Events(session)
    provider.connect_failures = list(failures)
    provider.transport.drop()
    if outcome == "resumed":
        await events.until(EventType.SESSION_RESUMED)
        assert provider.connects == 1 + len(failures) + 1
        assert not session.closed
        await session.close()
        return
    assert isinstance(outcome, type)
    with pytest.raises(outcome) as raised:
        await events.rest()
    if outcome is AuthenticationError:
        assert provider.connects == 2  # not retried
    else:
        assert provider.connects == 1 + provider.reconnect.attempts
        assert "gave up after 3 attempts" in str(raised.value)
        assert raised.value.__cause__ is failures[-1]
    assert session.closed


async def test_start_retries_a_retryable_connect_failure_and_raises_a_fatal_one() -> None:
    session, provider = await start(
        setup=lambda p: p.connect_failures.append(ProviderConnectionError("try again"))
    )
    assert provider.connects == 2 and not session.closed
    await session.close()

    with pytest.raises(AuthenticationError):
        await start(setup=lambda p: p.connect_failures.append(AuthenticationError("bad key")))
    assert not await settle_tasks(set())


# -- closing ------------------------------------------------------------------------------------


async def test_close_says_goodbye_releases_the_connection_and_ends_recv() -> None:
    session, provider = await start()
    events = Events(session)
    transport = provider.transport
    provider.transport.feed(event_frame(SessionEvent(EventType.SPEECH_STARTED)))
    assert (await events.next()).type is EventType.SPEECH_STARTED

    await bounded(session.close())

    assert transport.ops() == [{"op": "goodbye"}]
    assert transport.closed_by_session and not transport.aborted
    assert session.closed
    assert await events.rest() == []
    assert [e async for e in session.recv()] == []  # a second reader ends too
    sends: list[Callable[[], Awaitable[None]]] = [
        lambda: session.send_audio(pcm(10, 1)),
        lambda: session.send_text("hi"),
        lambda: session.send_tool_result(ToolResult("c", "x")),
        session.end_turn,
        session.interrupt,
    ]
    for send in sends:
        with pytest.raises(SessionClosedError):
            await send()
    await bounded(session.close())  # twice is fine
    assert not await settle_tasks(set())


@pytest.mark.parametrize(
    "when",
    ["lost-while-connecting", "lost-while-setting-up", "rotation-while-setting-up"],
)
async def test_close_during_a_switch_ends_cleanly(when: str) -> None:
    session, provider = await start()
    events = Events(session)
    old = provider.transport
    provider.auto_ready = False
    if when == "lost-while-connecting":
        provider.gate = asyncio.Event()  # connect() hangs until released
    if when.startswith("lost"):
        old.drop()
    else:
        old.feed(rotate_frame("go_away"))
    await provider.next_connect()
    await session.send_text("buffered, never sent")

    await bounded(session.close())

    assert session.closed
    assert await events.rest() == []  # ends, without SESSION_RESUMED and without an error
    assert not await settle_tasks(set())  # no read loop, timer or switch left running
    if provider.gate is not None:
        provider.gate.set()  # connect() was abandoned: releasing it opens nothing
        assert provider.transports == [old]
    else:
        new = provider.transports[1]
        assert new.aborted or new.closed_by_session
        assert app_ops(new.sent) == []
    if when.startswith("rotation"):
        assert old.ops() == [{"op": "goodbye"}] and old.closed_by_session
    assert app_ops(old.sent) == []
    with pytest.raises(SessionClosedError):
        await session.send_text("too late")


# -- hooks ---------------------------------------------------------------------------------------


def _raising(kind: str, calls: list[str], *, is_async: bool) -> Callable[..., Any]:
    def sync_hook(*args: object) -> None:
        calls.append(kind)
        raise RuntimeError(f"{kind} hook broke")

    async def async_hook(*args: object) -> None:
        sync_hook(*args)

    return async_hook if is_async else sync_hook


HOOK_CASES = [
    ("on_turn", turn_end_event("completed")),
    ("on_tool_call", tool_call_event("c1")),
    ("on_interrupt", SessionEvent(EventType.INTERRUPTED, reason="barge_in")),
    ("on_error", SessionEvent(EventType.ERROR, error=ProviderServerError("upstream"))),
]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("hook", "event"), HOOK_CASES, ids=[c[0] for c in HOOK_CASES])
async def test_a_raising_hook_is_logged_and_reported_and_the_call_goes_on(
    hook: str, event: SessionEvent, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="s2s")
    calls: list[str] = []
    session, provider = await start(hooks=Hooks(**{hook: _raising(hook, calls, is_async=is_async)}))
    async with session:
        events = Events(session)
        for _ in range(2):  # the hook runs again for the next event: one failure breaks nothing
            provider.transport.feed(event_frame(event))
            delivered, reported = await events.next(), await events.next()
            assert delivered.type is event.type  # the event itself still arrives, first
            assert delivered.error is None or delivered.error.message == "upstream"
            assert reported.type is EventType.ERROR
            assert type(reported.error) is S2SError
            assert f"a hook raised while handling {event.type.value}" in str(reported.error)
            assert f"{hook} hook broke" in str(reported.error)
        assert calls == [hook, hook]
        assert [r.getMessage() for r in caplog.records if r.name == "s2s.session"] == [
            f"hook failed on {event.type.value}"
        ] * 2
        assert not session.closed
        await session.send_text("carry on")
        assert provider.protocol.app_calls() == [("text", "carry on")]


async def test_on_error_can_suppress_or_replace_an_error_event() -> None:
    def triage(error: S2SError) -> S2SError | None:
        if error.code == "noise":
            return None
        return RateLimitError(f"triaged: {error.message}")

    session, provider = await start(hooks=Hooks(on_error=triage))
    async with session:
        events = Events(session)
        provider.transport.feed(
            event_frame(
                SessionEvent(EventType.ERROR, error=ProviderServerError("x", code="noise"))
            ),
            event_frame(SessionEvent(EventType.ERROR, error=ProviderServerError("real"))),
        )
        error = await events.next()
        assert isinstance(error.error, RateLimitError)
        assert error.error.message == "triaged: real"


async def test_hooks_see_each_turn_s_final_transcripts() -> None:
    turns: list[tuple[str, str]] = []
    session, provider = await start(hooks=Hooks(on_turn=lambda u, a: turns.append((u, a))))
    async with session:
        events = Events(session)
        provider.transport.feed(
            event_frame(SessionEvent(EventType.TRANSCRIPT, text="hel", role=Role.USER)),
            event_frame(
                SessionEvent(EventType.TRANSCRIPT, text="hello", role=Role.USER, final=True)
            ),
            event_frame(
                SessionEvent(EventType.TRANSCRIPT, text="hi!", role=Role.ASSISTANT, final=True)
            ),
            event_frame(turn_end_event("tool_calls")),  # not the end of the turn yet
            event_frame(
                SessionEvent(EventType.TRANSCRIPT, text="done", role=Role.ASSISTANT, final=True)
            ),
            event_frame(turn_end_event("completed")),
        )
        await events.until(EventType.TURN_END)
        await events.until(EventType.TURN_END)
        assert turns == [("hello", "hi! done")]


async def test_a_raising_engine_hook_does_not_skip_the_session_hook() -> None:
    seen: list[str] = []
    session, provider = await start(
        engine_hooks=Hooks(on_tool_call=_raising("engine", seen, is_async=False)),
        hooks=Hooks(on_tool_call=lambda call: seen.append(f"session:{call.id}")),
    )
    async with session:
        events = Events(session)
        provider.transport.feed(event_frame(tool_call_event("c7")))
        await events.until(EventType.ERROR)
        assert seen == ["engine", "session:c7"]


async def test_composed_hooks_that_all_raise_all_run_and_are_reported_once() -> None:
    seen: list[str] = []
    session, provider = await start(
        engine_hooks=Hooks(on_tool_call=_raising("engine", seen, is_async=True)),
        hooks=Hooks(on_tool_call=_raising("session", seen, is_async=False)),
    )
    async with session:
        events = Events(session)
        provider.transport.feed(event_frame(tool_call_event("c8")))
        delivered, reported = await events.next(), await events.next()
        assert delivered.type is EventType.TOOL_CALL
        assert reported.type is EventType.ERROR
        assert "engine hook broke" in str(reported.error)
        assert "session hook broke" in str(reported.error)
        assert seen == ["engine", "session"]
        assert not session.closed


# -- bugs found: input and tasks around a lost connection ---------------------------------------


async def test_interrupt_while_reconnecting_does_not_raise() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        await begin_reconnect(provider)
        await session.send_text("stop")
        await session.interrupt()
        provider.transport.feed(ready_frame())
        await events.until(EventType.SESSION_RESUMED)
        assert not session.closed
        # Held with the other input and applied, in order, to the new connection.
        assert provider.protocol.app_calls() == [("text", "stop"), ("interrupt",)]
        assert app_ops(provider.transport.sent) == [
            {"op": "text", "text": "stop"},
            {"op": "cancel"},
        ]


async def test_interrupt_after_the_old_connection_drops_during_a_rotation_does_not_raise() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old, old_protocol = provider.transport, provider.protocol
        provider.auto_ready = False
        old.feed(rotate_frame("go_away"))
        await provider.next_connect()
        new = provider.transport
        old.drop()  # the rotating connection is lost before the new one is ready
        await bounded(old_protocol.lost.wait())
        await session.interrupt()
        new.feed(ready_frame())
        await events.until(EventType.SESSION_RESUMED)
        assert provider.protocol.app_calls() == [("interrupt",)]
        assert ("interrupt",) not in old_protocol.calls


async def test_input_right_after_a_drop_is_buffered_not_refused() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old_protocol = provider.protocol
        provider.transport.drop()
        await bounded(old_protocol.lost.wait())  # the session knows the connection is gone
        await session.send_text("right after the drop")
        await events.until(EventType.SESSION_RESUMED)
        assert provider.protocol.app_calls() == [("text", "right after the drop")]


async def test_a_lost_connection_leaves_no_task_running_after_the_resumption() -> None:
    session, provider = await start()
    async with session:
        events = Events(session)
        old_link_tasks = other_tasks(set())
        assert old_link_tasks  # the first connection's read loop and timer
        provider.transport.drop()
        await events.until(EventType.SESSION_RESUMED)
        _done, pending = await asyncio.wait(old_link_tasks, timeout=WAIT_S / 4)
        assert not pending, pending


async def test_a_session_can_be_resumed_from_a_snapshot() -> None:
    session, provider = await start()
    async with session:
        await session.send_text("remember me")
        await session.send_audio(unheard := pcm(20, 5))
        snapshot = session.snapshot()
    assert snapshot.reason == "snapshot" and snapshot.pending_audio == unheard

    fresh = ScriptedProvider(Config(sample_rate=RATE))
    engine = S2S(NAME, lambda _config: fresh, fresh.config)
    async with await engine.start(resume=snapshot.to_dict()) as resumed:
        assert fresh.transport.ops() == [
            {"op": "replay", "item": ["message", "user", "remember me"]},
            {"op": "replay_audio", "pcm": unheard},
        ]
        assert resumed.snapshot().conversation == snapshot.conversation
