"""The OpenAI Realtime protocol in a G.711 mu-law session: ``audio/pcmu`` end to end, and every
byte count reckoned at 8 kHz, one byte a sample (scripted server events, no sockets)."""

from __future__ import annotations

import base64
import json
from typing import Any

import s2s
from s2s import EventType
from s2s.providers.openai_realtime import OpenAIRealtimeProtocol, resolve
from s2s.providers.openai_realtime.pending_audio import PendingAudio

from .test_openai_protocol import answer_with_audio, feed

MS = 8  # bytes of 8 kHz mu-law per millisecond


def make(continuation: s2s.Continuation | None = None, **extra: Any) -> OpenAIRealtimeProtocol:
    config = s2s.Config(sample_rate=8000, audio_format="pcmu", extra={"api_key": "k", **extra})
    return OpenAIRealtimeProtocol(config, resolve(config), continuation)


def sent(proto: OpenAIRealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in proto.data_to_send()]


def ready(proto: OpenAIRealtimeProtocol) -> list[dict[str, Any]]:
    proto.connection_made(0.0)
    feed(proto, {"type": "session.created", "session": {}})
    feed(proto, {"type": "session.updated", "session": {}})
    return sent(proto)


def mulaw(ms: int, value: int = 0xFF) -> bytes:
    return bytes([value]) * (ms * MS)


def answer(proto: OpenAIRealtimeProtocol, ms: int, now: float) -> None:
    """A response whose item ``item_a`` has received ``ms`` of mu-law audio at ``now``."""
    delta = {
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_a",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(mulaw(ms)).decode(),
    }
    answer_with_audio(proto, ms, now, delta)


def barge_in(proto: OpenAIRealtimeProtocol, now: float) -> dict[str, Any]:
    proto.events_received()
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now)
    (truncate,) = sent(proto)
    assert truncate["type"] == "conversation.item.truncate"
    return truncate


def test_session_update_asks_for_audio_pcmu_both_ways() -> None:
    proto = make()
    (update,) = ready(proto)
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcmu"}
    assert audio["output"]["format"] == {"type": "audio/pcmu"}
    assert (proto.input_rate, proto.output_rate, proto.audio_format) == (8000, 8000, "pcmu")


def test_caller_mu_law_goes_out_as_it_is_and_answers_come_back_as_mu_law() -> None:
    proto = make()
    ready(proto)
    caller = bytes(range(256)) + b"\x01"  # odd length: fine for one byte a sample
    proto.send_audio(caller, 0.0)
    (append,) = sent(proto)
    assert base64.b64decode(append["audio"]) == caller
    answer(proto, 250, now=0.0)
    (audio,) = [e for e in proto.events_received() if e.type is EventType.AUDIO_OUTPUT]
    assert (audio.encoding, audio.sample_rate, audio.duration_ms) == ("pcmu", 8000, 250.0)


def test_truncation_audio_end_ms_counts_mu_law_at_8_khz() -> None:
    proto = make()
    ready(proto)
    answer(proto, 2000, now=100.0)
    truncate = barge_in(proto, now=100.5)  # wall clock: 500 ms of the 2000 ms heard
    assert truncate["audio_end_ms"] == 500
    assert proto.conversation.messages()[-1].text == "01"  # the heard quarter


def test_truncation_never_goes_past_the_mu_law_received() -> None:
    """200 ms arrived (1600 bytes); read as 24 kHz PCM16 it would be 33 ms, as 8 kHz PCM16
    100 ms: either would cut the answer at the wrong place."""
    proto = make()
    ready(proto)
    answer(proto, 200, now=0.0)
    assert barge_in(proto, now=5.0)["audio_end_ms"] == 200


def test_playback_reports_set_audio_end_ms_of_a_mu_law_item() -> None:
    proto = make()
    ready(proto)
    answer(proto, 1000, now=0.0)
    proto.report_playback("item_a", 300)
    assert barge_in(proto, now=0.9)["audio_end_ms"] == 300


def test_a_vad_commit_end_counts_one_byte_a_sample() -> None:
    proto = make()
    ready(proto)
    proto.send_audio(mulaw(1000, 1), 0.0)  # the turn
    proto.send_audio(mulaw(300, 2), 0.0)  # sent after the server's commit point
    feed(proto, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1000, "item_id": "u"})
    feed(proto, {"type": "input_audio_buffer.committed", "item_id": "u"})
    assert proto.continuation("x").pending_audio == mulaw(300, 2)


def test_a_continuation_replays_mu_law_in_one_second_appends() -> None:
    old = make()
    ready(old)
    old.send_audio(mulaw(1500, 3), 0.0)  # not committed when the connection is lost
    carry = old.continuation("connection_lost")
    assert carry.state["audio_format"] == "pcmu" and len(carry.pending_audio) == 1500 * MS
    new = make(continuation=carry)
    frames = ready(new)
    appends = [base64.b64decode(f["audio"]) for f in frames if f["type"].endswith(".append")]
    assert [len(a) for a in appends] == [8000, 4000]  # 1 s, then the last 0.5 s
    assert b"".join(appends) == mulaw(1500, 3)


def test_audio_of_another_format_is_not_replayed_into_a_mu_law_connection() -> None:
    pcm16 = s2s.Config(extra={"api_key": "k"})
    old = OpenAIRealtimeProtocol(pcm16, resolve(pcm16))
    ready(old)
    old.send_audio(b"\x01\x00" * 2400, 0.0)
    carry = old.continuation("snapshot")
    assert carry.state["audio_format"] == "pcm16"
    new = make(continuation=carry)
    frames = ready(new)
    assert [f["type"] for f in frames] == ["session.update"]
    assert new.continuation("x").pending_audio == b""


def test_pending_audio_limit_and_chunks_follow_the_format() -> None:
    pending = PendingAudio(mulaw(31_000), rate=8000, sample_width=1)
    assert [len(c) for c in pending.replay_chunks()][:2] == [8000, 8000]
    pending.add(mulaw(1000))
    assert len(pending) == 30 * 8000  # 30 s of mu-law kept, the oldest dropped
