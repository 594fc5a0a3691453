"""CallWatch: a call's state, turns, response latency, barge-ins, tool stats and counts, fed
events with the times of a fake clock (no I/O); and the pacing of call summaries."""

from __future__ import annotations

import json

import s2s
from s2s.events import EventType, SessionEvent
from s2s.service.call_watch import CallState, CallWatch, SummaryPacer

RATE = 24000
T0 = 1_700_000_000.0


class Clock:
    """Unix seconds that move only when told."""

    def __init__(self) -> None:
        self.now = T0

    def at(self, offset_s: float) -> float:
        self.now = T0 + offset_s
        return self.now


def audio(ms: int) -> SessionEvent:
    return SessionEvent(
        EventType.AUDIO_OUTPUT, audio=b"\0\0" * (RATE * ms // 1000), sample_rate=RATE
    )


def event(kind: EventType, **fields: object) -> SessionEvent:
    return SessionEvent(kind, **fields)


def watch(**kwargs: object) -> CallWatch:
    return CallWatch("sess-1", "acme", "openai_realtime", "gpt-realtime", T0, **kwargs)


def live_watch(clock: Clock) -> CallWatch:
    w = watch()
    assert w.state is CallState.STARTING
    change = w.started(clock.at(0.5))
    assert change.summary and w.state is CallState.LISTENING
    return w


def test_a_spoken_turn_moves_through_the_states_and_measures_its_response_latency():
    clock = Clock()
    w = live_watch(clock)
    assert w.event(event(EventType.SPEECH_STARTED), clock.at(1.0)).summary
    assert w.state is CallState.CALLER_SPEAKING
    opened = w.event(event(EventType.SPEECH_STOPPED), clock.at(2.0))
    assert opened.opened == 1 and opened.summary and w.state is CallState.LISTENING
    assert not w.event(event(EventType.RESPONSE_STARTED), clock.at(2.3)).summary
    first = w.event(audio(1000), clock.at(2.45))
    assert first.response_latency_ms == 450.0
    assert first.first_audio_ms == 2450.0  # from the call's start
    assert w.state is CallState.MODEL_SPEAKING
    assert w.event(audio(1000), clock.at(2.5)).response_latency_ms is None  # only the first
    # The answer ends while its 2 s of audio are still playing: the turn waits for them.
    ended = w.event(event(EventType.TURN_END, reason="completed"), clock.at(2.6))
    assert ended.completed == () and w.state is CallState.MODEL_SPEAKING
    assert w.next_tick(clock.now) == T0 + 4.45
    done = w.tick(clock.at(4.46))
    assert w.state is CallState.LISTENING and done.summary
    (record,) = done.completed
    assert record.to_dict() == {
        "turn": 1,
        "opened_at": T0 + 2.0,
        "first_audio_at": T0 + 2.45,
        "response_latency_ms": 450.0,
        "interrupted": False,
        "tools": [],
        "reason": "completed",
    }
    summary = w.summary(clock.now)
    assert summary.turns == 1 and summary.last_response_latency_ms == 450.0
    assert summary.first_audio_ms == 2450.0 and summary.state == "listening"
    assert w.next_tick(clock.now) is None


def test_text_opens_a_turn_and_speaking_again_before_the_answer_keeps_one_turn():
    clock = Clock()
    w = live_watch(clock)
    assert w.text_sent(clock.at(1.0)).opened == 1
    # the caller adds to it before any answer audio: still turn 1, latency from the last word
    w.event(event(EventType.SPEECH_STARTED), clock.at(1.2))
    # the provider cancels the answer it had begun: the turn waits for the real one
    assert w.event(event(EventType.TURN_END, reason="cancelled"), clock.at(1.3)).completed == ()
    again = w.event(event(EventType.SPEECH_STOPPED), clock.at(2.0))
    assert again.opened is None and w.turns == 1
    assert w.event(audio(100), clock.at(2.3)).response_latency_ms == 300.0
    # a new text over an answered turn completes it and opens the next
    nxt = w.text_sent(clock.at(5.0))
    assert nxt.opened == 2 and [r.reason for r in nxt.completed] == ["superseded"]


def test_barge_in_interrupts_the_turn_whose_answer_is_playing():
    clock = Clock()
    w = live_watch(clock)
    w.event(event(EventType.SPEECH_STOPPED), clock.at(1.0))
    w.event(audio(3000), clock.at(1.5))
    w.event(event(EventType.TURN_END, reason="completed"), clock.at(1.6))
    # 3 s of answer, the caller speaks 1 s in: a barge-in (the answer was still playing)
    barge = w.event(event(EventType.SPEECH_STARTED), clock.at(2.5))
    assert barge.barge_in and barge.summary
    (record,) = barge.completed
    assert record.interrupted and record.reason == "interrupted"
    assert w.state is CallState.CALLER_SPEAKING and w.barge_ins == 1
    # the provider's own interruption of the same answer is not a second barge-in
    assert not w.event(event(EventType.INTERRUPTED), clock.at(2.55)).barge_in
    # speaking while nothing plays is not a barge-in
    w.event(event(EventType.SPEECH_STOPPED), clock.at(3.0))
    w.event(audio(200), clock.at(3.4))
    w.event(event(EventType.TURN_END, reason="completed"), clock.at(3.45))
    assert [r.reason for r in w.tick(clock.at(3.7)).completed] == ["completed"]
    assert not w.event(event(EventType.SPEECH_STARTED), clock.at(4.0)).barge_in
    assert w.summary(clock.now).barge_ins == 1


def test_an_interruption_while_the_model_speaks_is_a_barge_in():
    clock = Clock()
    w = live_watch(clock)
    w.text_sent(clock.at(1.0))
    w.event(audio(2000), clock.at(1.2))
    change = w.event(event(EventType.INTERRUPTED), clock.at(1.5))
    assert change.barge_in and change.completed[0].interrupted
    assert w.state is CallState.LISTENING


def test_tool_calls_belong_to_their_turn_with_latency_worker_and_outcome():
    clock = Clock()
    w = live_watch(clock)
    w.text_sent(clock.at(1.0))
    call = s2s.ToolCall("call_1", "lookup_order", '{"order_id": "A-7"}')
    started = w.event(event(EventType.TOOL_CALL, tool_call=call), clock.at(1.4))
    assert started.tool_started is not None and started.tool_started.name == "lookup_order"
    assert w.state is CallState.TOOL_RUNNING
    second = s2s.ToolCall("call_2", "check_balance", "{}")
    w.event(event(EventType.TOOL_CALL, tool_call=second), clock.at(1.41))
    # the response that made the calls ends: the turn stays open for the answer after them
    assert w.event(event(EventType.TURN_END, reason="tool_calls"), clock.at(1.45)).completed == ()
    finished = w.tool_result(
        "call_1", clock.at(1.9), latency_ms=500.0, worker="w-1", is_error=False
    )
    assert finished.tool_finished is not None and finished.tool_finished.outcome == "ok"
    assert w.state is CallState.TOOL_RUNNING  # call_2 still runs
    cancelled = w.event(event(EventType.TOOL_CALL_CANCELLED, call_ids=("call_2",)), clock.at(2.0))
    assert cancelled.tool_finished is not None and cancelled.tool_finished.outcome == "cancelled"
    assert w.state is CallState.LISTENING
    # a late or unknown result changes nothing
    late = w.tool_result("call_2", clock.at(2.1), latency_ms=1.0, worker="w-2", is_error=True)
    assert late.tool_finished is None and not late.summary
    w.event(audio(100), clock.at(2.2))
    done = w.event(event(EventType.TURN_END, reason="completed"), clock.at(2.5))
    (record,) = done.completed
    assert record.response_latency_ms == 1200.0  # includes the tool's time
    tools = record.to_dict()["tools"]
    assert tools == [
        {
            "call_id": "call_1",
            "name": "lookup_order",
            "latency_ms": 500.0,
            "worker": "w-1",
            "is_error": False,
            "outcome": "ok",
        },
        {
            "call_id": "call_2",
            "name": "check_balance",
            "latency_ms": None,
            "worker": "",
            "is_error": False,
            "outcome": "cancelled",
        },
    ]


def test_errors_resumptions_and_failovers_are_counted_and_the_provider_follows():
    clock = Clock()
    w = live_watch(clock)
    error = s2s.S2SError("rate limited", code="rate_limit_exceeded", provider="openai_realtime")
    assert w.event(event(EventType.ERROR, error=error), clock.at(1.0)).summary
    resumed = w.event(event(EventType.SESSION_RESUMED, reason="session_expired"), clock.at(2.0))
    assert resumed.resumed == "session_expired" and resumed.summary
    switched = w.event(
        event(
            EventType.PROVIDER_SWITCHED,
            reason="insufficient_quota",
            data={"from": "openai_realtime", "to": "gemini_live", "gap_ms": 800},
        ),
        clock.at(3.0),
    )
    assert switched.switched == ("openai_realtime", "gemini_live") and switched.summary
    summary = w.summary(clock.now)
    assert summary.errors == 1 and summary.resumptions == 1 and summary.failovers == 1
    assert summary.last_error == {"code": "rate_limit_exceeded", "message": "rate limited"}
    assert summary.provider == "gemini_live"


def test_the_end_of_the_call_completes_the_open_turn_and_counts_a_fatal_error():
    clock = Clock()
    w = live_watch(clock)
    w.event(event(EventType.SPEECH_STOPPED), clock.at(1.0))
    call = s2s.ToolCall("call_9", "wait", "{}")
    w.event(event(EventType.TOOL_CALL, tool_call=call), clock.at(1.1))
    fatal = {"type": "ProviderConnectionError", "message": "gone", "code": None}
    end = w.ended(clock.at(2.0), "provider_error", fatal)
    (record,) = end.completed
    assert record.reason == "call_ended" and record.tools[0].outcome == "pending"
    summary = w.summary(clock.now)
    assert summary.ended and summary.state == "ended" and summary.errors == 1
    assert summary.last_error == {"code": "ProviderConnectionError", "message": "gone"}
    # nothing moves an ended call
    w.started(clock.at(3.0))
    assert w.state is CallState.ENDED


def test_a_replacement_carries_the_counts_on_and_reconnects_first():
    clock = Clock()
    first = live_watch(clock)
    first.text_sent(clock.at(1.0))
    first.event(audio(100), clock.at(1.5))
    first.event(event(EventType.SPEECH_STARTED), clock.at(1.55))
    # published as JSON on the calls channel; a replacement reads it back from the record
    previous = json.loads(json.dumps(first.summary(clock.now).to_dict()))
    replacement = CallWatch("sess-1", "acme", "openai_realtime", "gpt-realtime", T0 + 9, previous)
    assert replacement.state is CallState.RECONNECTING
    replacement.started(clock.at(10.0))
    assert replacement.state is CallState.LISTENING
    assert replacement.turns == 1 and replacement.barge_ins == 1
    assert replacement.started_at == T0 and replacement.first_audio_ms == 1500.0
    assert replacement.text_sent(clock.at(11.0)).opened == 2


def test_summaries_are_coalesced_to_one_per_250_ms_and_the_last_change_goes_out():
    pacer = SummaryPacer(0.25)
    assert pacer.changed(10.0) == 0.0  # the first goes out at once
    assert pacer.changed(10.01) is None  # already due: it will carry this change
    pacer.published(10.02)
    delay = pacer.changed(10.1)  # 80 ms after the last publish: wait the rest of the 250 ms
    assert delay is not None and abs(delay - 0.17) < 1e-9
    assert pacer.changed(10.2) is None and pacer.changed(10.25) is None
    pacer.published(10.27)  # one publish carries all three changes (built when it is sent)
    assert pacer.changed(11.0) == 0.0  # long after: at once again


def test_a_stream_of_changes_publishes_at_most_four_summaries_a_second():
    clock = Clock()
    w = live_watch(clock)
    pacer = SummaryPacer()
    published: list[tuple[float, str]] = []
    due: float | None = None
    for step in range(100):  # 10 ms apart: the caller starts and stops speaking over and over
        now = clock.at(1.0 + step * 0.01)
        if due is not None and now >= due:
            pacer.published(now)
            published.append((now, w.summary(now).state))
            due = None
        kind = EventType.SPEECH_STARTED if step % 2 == 0 else EventType.SPEECH_STOPPED
        if w.event(event(kind), now).summary:
            delay = pacer.changed(now)
            if delay is not None:
                due = now + delay
    assert due is not None  # the last change is still due: it will go out
    pacer.published(due)
    published.append((due, w.summary(due).state))
    times = [t for t, _ in published]
    assert all(b - a >= 0.25 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert len(published) <= 1 + (times[-1] - times[0]) / 0.25 + 1
    assert published[-1][1] == w.state.value  # the newest state went out last
