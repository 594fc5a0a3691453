"""Playout: a real-time playback queue of audio and marks, driven by the ``now`` it is given."""

from __future__ import annotations

import pytest

from s2s.phone import Cleared, Playout

T0 = 100.0


def ms(value: float) -> float:
    """``value`` milliseconds after T0, in seconds."""
    return T0 + value / 1000


def audio(milliseconds: int, byte: int = 0x10) -> bytes:
    return bytes([byte]) * (milliseconds * 8)


def test_a_mark_with_nothing_queued_is_due_at_once():
    playout = Playout()
    assert playout.push_mark("m0", T0) == ["m0"]
    assert not playout.playing
    assert playout.next_due(T0) is None


def test_a_mark_falls_due_when_the_cursor_passes_the_audio_before_it():
    playout = Playout()
    playout.push_audio(audio(200), T0)
    assert playout.push_mark("m1", ms(10)) == []
    assert playout.next_due(ms(10)) == pytest.approx(ms(200))
    assert playout.advance(ms(199)) == []
    assert playout.playing
    assert playout.advance(ms(200)) == ["m1"]
    assert not playout.playing
    assert playout.next_due(ms(200)) is None


def test_marks_come_back_in_order_each_once():
    playout = Playout()
    for i in range(3):
        playout.push_audio(audio(100, byte=i + 1), T0)
        assert playout.push_mark(f"m{i}", T0) == []
    assert playout.advance(ms(150)) == ["m0"]
    assert playout.advance(ms(500)) == ["m1", "m2"]
    assert playout.advance(ms(900)) == []
    assert bytes(playout.played) == audio(100, 1) + audio(100, 2) + audio(100, 3)


def test_push_mark_returns_overdue_marks_before_its_own():
    playout = Playout()
    playout.push_audio(audio(100), T0)
    playout.push_mark("a", T0)
    # Nobody called advance; at 150 ms "a" is overdue and the queue is idle.
    assert playout.push_mark("b", ms(150)) == ["a", "b"]


def test_audio_pushed_while_idle_starts_at_now_and_while_playing_follows_the_queue():
    playout = Playout()
    playout.push_audio(audio(100, 1), T0)
    playout.advance(ms(300))  # idle from 100 ms to 300 ms
    playout.push_audio(audio(100, 2), ms(300))
    playout.push_mark("end-2", ms(300))
    assert playout.next_due(ms(300)) == pytest.approx(ms(400))
    playout.push_audio(audio(50, 3), ms(350))  # still playing: queued after
    playout.push_mark("end-3", ms(350))
    assert playout.next_due(ms(350)) == pytest.approx(ms(400))
    assert playout.advance(ms(400)) == ["end-2"]
    assert playout.next_due(ms(400)) == pytest.approx(ms(450))
    assert playout.advance(ms(450)) == ["end-3"]


def test_played_holds_only_what_the_cursor_passed():
    playout = Playout()
    data = bytes(range(256)) * 10  # 320 ms
    playout.push_audio(data, T0)
    playout.advance(ms(100))
    assert bytes(playout.played) == data[:800]
    assert playout.queued_ms(ms(100)) == pytest.approx(220)
    playout.advance(ms(1000))
    assert bytes(playout.played) == data
    assert playout.queued_ms(ms(1000)) == 0


def test_clear_drops_the_queue_and_returns_pending_marks_in_order():
    playout = Playout()
    for i in range(4):
        playout.push_audio(audio(200, i + 1), T0)
        playout.push_mark(f"s{i}", T0)
    assert playout.advance(ms(250)) == ["s0"]
    cleared = playout.clear(ms(300))
    assert cleared == Cleared(discarded_ms=pytest.approx(500), pending_marks=("s1", "s2", "s3"))
    assert bytes(playout.played) == audio(200, 1) + audio(100, 2)
    assert not playout.playing
    assert playout.next_due(ms(300)) is None
    assert playout.advance(ms(1000)) == []
    # The queue works again afterwards; new audio starts at its push time.
    playout.push_audio(audio(40, 9), ms(1500))
    assert playout.push_mark("after", ms(1500)) == []
    assert playout.advance(ms(1539)) == []
    assert playout.advance(ms(1540)) == ["after"]
    assert bytes(playout.played).endswith(audio(40, 9))
    assert len(playout.played) == (200 + 100 + 40) * 8


def test_clear_reports_marks_passed_but_not_yet_collected_as_played():
    playout = Playout()
    playout.push_audio(audio(100), T0)
    playout.push_mark("a", T0)
    playout.push_audio(audio(100), T0)
    playout.push_mark("b", T0)
    cleared = playout.clear(ms(150))
    assert cleared.passed_marks == ("a",)
    assert cleared.pending_marks == ("b",)
    assert cleared.discarded_ms == pytest.approx(50)


def test_clear_with_nothing_queued_discards_nothing():
    playout = Playout()
    assert playout.clear(T0) == Cleared(0.0, ())


def test_a_generic_clock_rounds_played_to_whole_frames():
    playout = Playout(bytes_per_ms=16.0, frame_bytes=2)  # 8 kHz L16
    playout.push_audio(bytes(range(200)), T0)
    playout.push_mark("end", T0)
    playout.advance(T0 + 0.0031)  # 49.6 bytes -> 48 (whole samples)
    assert len(playout.played) == 48
    cleared = playout.clear(T0 + 0.0031)
    assert cleared.discarded_ms == pytest.approx((200 - 48) / 16)
    assert cleared.pending_marks == ("end",)


def test_next_due_is_exact_enough_to_fire_the_mark():
    playout = Playout()
    now = T0
    for _ in range(50):
        playout.push_audio(audio(20), now)
    playout.push_mark("end", now)
    due = playout.next_due(now)
    assert due is not None
    assert playout.advance(due) == ["end"]


def test_time_must_not_go_backwards_and_arguments_are_checked():
    playout = Playout()
    playout.advance(T0)
    with pytest.raises(ValueError, match="backwards"):
        playout.advance(T0 - 1)
    with pytest.raises(ValueError, match="bytes_per_ms"):
        Playout(0)
    with pytest.raises(ValueError, match="frame_bytes"):
        Playout(8.0, frame_bytes=0)
