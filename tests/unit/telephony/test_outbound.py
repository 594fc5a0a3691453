"""OutboundAudio: pacing to real time with a bounded lead, and what the caller heard."""

from __future__ import annotations

import pytest

from s2s.telephony.outbound import OutboundAudio, Played

SECOND_OF_ULAW = 8000


def drain(audio: OutboundAudio, start: float = 0.0) -> list[tuple[float, int, str]]:
    """Run the pacer's own schedule until everything is sent: (time, bytes, name) per send.
    Checks on the way that the platform never holds more than the lead."""
    now, sent = start, []
    while audio.queued_bytes:
        sent += [(now, len(s.audio), s.name) for s in audio.take(now)]
        assert audio.playing_until() - now <= audio.lead_s + 1e-6
        if not audio.queued_bytes:
            break
        due = audio.next_send_at(now)
        assert due is not None and due >= now
        now = due
    return sent


def test_the_lead_is_sent_at_once_then_one_frame_per_frame_time() -> None:
    audio = OutboundAudio(frame_ms=100, lead_ms=200)
    audio.push("item", b"\xff" * SECOND_OF_ULAW)
    sent = drain(audio)
    assert sent[0] == (0.0, 1600, "s1")  # the lead, in one segment
    assert [size for _, size, _ in sent[1:]] == [800] * 8
    gaps = [b[0] - a[0] for a, b in zip(sent[1:], sent[2:], strict=False)]
    assert all(abs(gap - 0.1) < 0.002 for gap in gaps)


def test_genesys_pacing_stays_at_or_under_five_frames_a_second() -> None:
    audio = OutboundAudio(frame_ms=250, lead_ms=500)
    audio.push("item", b"\xff" * 5 * SECOND_OF_ULAW)
    times = [at for at, size, _ in drain(audio)]
    for at in times:  # any one-second window
        assert sum(1 for t in times if at <= t < at + 1.0) <= 5
    assert all(size >= 1600 for _, size, _ in drain(OutboundAudio(frame_ms=250, lead_ms=500)))


def test_a_sender_that_let_playback_run_dry_primes_the_lead_again() -> None:
    audio = OutboundAudio(frame_ms=100, lead_ms=200, max_frame_ms=400)
    audio.push("item", b"\xff" * SECOND_OF_ULAW)
    audio.take(0.0)
    late = audio.take(1.0)  # the sender slept through the queued 200 ms and 800 ms more
    assert len(late) == 1 and len(late[0].audio) == 1600 and late[0].plays_at == 1.0


def test_segments_never_mix_items_and_end_positions_are_per_item() -> None:
    audio = OutboundAudio(frame_ms=100, lead_ms=0)
    audio.push("a", b"\xff" * 1200)  # 150 ms
    audio.push("b", b"\xff" * 800)
    segments = []
    now = 0.0
    while audio.queued_bytes:
        segments += audio.take(now)
        now += 0.05
    assert [(s.item_id, s.end_ms) for s in segments] == [("a", 100), ("a", 150), ("b", 100)]


def test_confirmed_marks_report_played_position_and_ignore_cleared_ones() -> None:
    audio = OutboundAudio(frame_ms=100, lead_ms=300)
    audio.push("r1", b"\xff" * SECOND_OF_ULAW)
    first = audio.take(0.0)
    names = [s.name for s in first]
    assert audio.confirmed(names[0]) == Played("r1", int(first[0].end_ms))
    cut = audio.clear()  # barge-in: later segments are discarded, not played
    assert cut == [Played("r1", int(first[0].end_ms))]
    assert audio.confirmed(names[-1]) is None or len(names) == 1
    assert audio.queued_bytes == 0 and not audio.busy(0.0)


def test_a_mark_confirms_everything_sent_before_it() -> None:
    audio = OutboundAudio(frame_ms=100, lead_ms=300)
    audio.push("r1", b"\xff" * 4000)
    audio.take(0.0)
    audio.take(0.11)
    assert audio.confirmed("s2") == Played("r1", 400)
    assert audio.confirmed("s1") is None  # already counted


def test_estimated_playback_follows_the_clock() -> None:
    audio = OutboundAudio(frame_ms=250, lead_ms=500)
    audio.push("r1", b"\xff" * SECOND_OF_ULAW)
    audio.take(10.0)
    assert audio.estimated_played(10.3) == [Played("r1", 300)]
    audio.settle(10.6)
    assert audio.heard_ms("r1") == 500
    assert audio.clear() == [Played("r1", 500)]


@pytest.mark.parametrize(("frame", "lead"), [(0, 100), (100, -1)])
def test_bad_settings_are_refused(frame: int, lead: int) -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        OutboundAudio(frame_ms=frame, lead_ms=lead)


def test_a_minimum_interval_caps_the_message_rate_across_items() -> None:
    audio = OutboundAudio(frame_ms=250, lead_ms=500, max_frame_ms=500, min_interval_ms=250)
    now, times = 0.0, []
    for item in range(6):  # short items back to back: each boundary would cut a segment
        audio.push(f"r{item}", b"\xff" * 1000)
    while audio.queued_bytes:
        times += [now for _ in audio.take(now)]
        due = audio.next_send_at(now)
        now = due if due is not None else now
    assert all(b - a >= 0.25 - 1e-6 for a, b in zip(times, times[1:], strict=False))
