"""The OpenAI protocol's pending-audio bookkeeping: what a continuation replays."""

from __future__ import annotations

from s2s.providers.openai_realtime.pending_audio import REPLAY_CHUNK_BYTES, PendingAudio

MS = 48  # bytes of 24 kHz PCM16 per millisecond


def ms_of(value: int, ms: int) -> bytes:
    return bytes([value]) * (ms * MS)


def test_a_vad_commit_takes_the_audio_up_to_its_end_only() -> None:
    pending = PendingAudio()
    pending.add(ms_of(1, 300))
    pending.commit_ends_at_ms(300)  # speech_stopped.audio_end_ms
    pending.add(ms_of(2, 100))  # sent while the commit's notice was in flight
    pending.forget_committed()
    assert pending.snapshot() == ms_of(2, 100)


def test_a_manual_commit_takes_what_was_sent_before_it() -> None:
    pending = PendingAudio()
    pending.add(ms_of(1, 200))
    pending.commit_ends_now()
    pending.add(ms_of(2, 40))
    pending.forget_committed()
    assert pending.snapshot() == ms_of(2, 40)


def test_a_commit_of_unknown_end_or_a_cleared_buffer_leaves_nothing() -> None:
    pending = PendingAudio()
    pending.add(ms_of(1, 100))
    pending.forget_committed()
    assert len(pending) == 0
    pending.add(ms_of(1, 100))
    pending.clear()
    assert pending.snapshot() == b""


def test_positions_count_the_replayed_audio_first() -> None:
    replay = ms_of(7, 1500)
    pending = PendingAudio(replay)
    assert pending.replay_chunks() == [replay[:REPLAY_CHUNK_BYTES], replay[REPLAY_CHUNK_BYTES:]]
    pending.add(ms_of(8, 500))
    pending.commit_ends_at_ms(1600)  # the server counts the replay, then 100 ms of new audio
    pending.forget_committed()
    assert pending.snapshot() == ms_of(8, 400)


def test_the_oldest_audio_goes_first_past_the_limit() -> None:
    pending = PendingAudio(limit=10 * MS)
    pending.add(ms_of(1, 8))
    pending.add(ms_of(2, 8))
    assert pending.snapshot() == ms_of(1, 2) + ms_of(2, 8)
