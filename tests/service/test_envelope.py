import msgpack
import pytest

import s2s
from s2s.events import EventType, Role, SessionEvent
from s2s.service.envelope import Envelope


def test_session_events_round_trip_with_raw_audio():
    event = SessionEvent(
        EventType.AUDIO_OUTPUT, audio=b"\x01\x02" * 80, sample_rate=16000, item_id="item_1"
    )
    envelope = Envelope.from_event("sid", 7, 123.5, event)
    back = Envelope.unpack(envelope.pack())
    assert back == envelope and back.audio == event.audio
    assert back.event() == event
    assert len(envelope.pack()) < len(event.audio) + 120  # binary stays binary


def test_json_form_base64_audio_or_drops_it():
    envelope = Envelope.from_event(
        "sid", 1, 1.0, SessionEvent(EventType.AUDIO_OUTPUT, audio=b"\x00\x01", sample_rate=8000)
    )
    assert envelope.to_json()["audio"] == "AAE="
    assert "audio" not in envelope.to_json(include_audio=False)
    text = Envelope.from_event(
        "sid", 2, 1.0, SessionEvent(EventType.TRANSCRIPT, text="hi", role=Role.USER, final=True)
    )
    assert text.to_json() == {
        "seq": 2,
        "ts": 1.0,
        "type": "transcript",
        "text": "hi",
        "role": "user",
        "final": True,
    }


def test_service_envelopes_have_no_event():
    assert Envelope("sid", 3, 1.0, "session_closed", {"reason": "idle"}).event() is None


def test_other_versions_are_refused():
    raw = msgpack.packb({"v": 2, "sid": "s", "seq": 1, "ts": 0, "type": "x", "data": {}})
    with pytest.raises(s2s.ProviderProtocolError, match="version 2"):
        Envelope.unpack(raw)
    with pytest.raises(s2s.ProviderProtocolError, match="not a msgpack envelope"):
        Envelope.unpack(b"\xc1")
