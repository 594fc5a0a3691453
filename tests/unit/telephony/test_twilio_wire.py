"""The server side of Twilio Media Streams: parsing what Twilio sends, building what it takes."""

from __future__ import annotations

import base64
import json

import pytest

from s2s.telephony import twilio as wire

SID = "MZ00000000000000000000000000000001"
START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": SID,
    "start": {
        "streamSid": SID,
        "accountSid": "AC00000000000000000000000000000001",
        "callSid": "CA00000000000000000000000000000001",
        "tracks": ["inbound"],
        "customParameters": {"token": "t-1"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


def test_the_brief_messages_parse() -> None:
    assert wire.parse('{"event":"connected","protocol":"Call","version":"1.0.0"}') == (
        wire.Connected("Call")
    )
    start = wire.parse(json.dumps(START))
    assert isinstance(start, wire.Start)
    assert (start.call_sid, start.custom_parameters) == (
        START["start"]["callSid"],
        {"token": "t-1"},
    )  # type: ignore[index]
    media = wire.parse(
        f'{{"event":"media","sequenceNumber":"2","streamSid":"{SID}","media":{{"track":"inbound",'
        '"chunk":"1","timestamp":"5","payload":"//////////////8="}}'
    )
    assert media == wire.Media(b"\xff" * 11, 5, 1, "inbound")
    assert wire.parse(
        f'{{"event":"dtmf","sequenceNumber":"57","streamSid":"{SID}",'
        '"dtmf":{"track":"inbound_track","digit":"5"}}'
    ) == wire.Dtmf("5")
    assert wire.parse(
        f'{{"event":"mark","sequenceNumber":"58","streamSid":"{SID}","mark":{{"name":"s7"}}}}'
    ) == wire.Mark("s7")
    stop = (
        f'{{"event":"stop","sequenceNumber":"912","streamSid":"{SID}","stop":{{"callSid":"CA1"}}}}'
    )
    assert wire.parse(stop) == wire.Stop("CA1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"event":"hello"}', "unknown event"),
        ('{"event":"media","media":{"payload":"***","timestamp":"1","chunk":"1"}}', "base64"),
        ('{"event":"media","media":{"payload":"","timestamp":"x","chunk":"1"}}', "decimal"),
        ('{"event":"dtmf","dtmf":{"digit":"55"}}', "not a key"),
        ('{"event":"mark","mark":{}}', "mark.name"),
    ],
)
def test_malformed_messages_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(wire.TwilioProtocolError, match=message):
        wire.parse(text)


def test_outbound_messages_have_exactly_the_documented_shape() -> None:
    stream = wire.TwilioStream()
    with pytest.raises(wire.TwilioProtocolError, match="before Twilio's start"):
        stream.media(b"\xff")
    start = wire.parse(json.dumps(START))
    assert isinstance(start, wire.Start)
    stream.started(start)
    assert json.loads(stream.media(b"\x7f\xff")) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(b"\x7f\xff").decode()},
    }
    assert json.loads(stream.mark("s1")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "s1"},
    }
    assert json.loads(stream.clear()) == {"event": "clear", "streamSid": SID}
    with pytest.raises(wire.TwilioProtocolError, match="second start"):
        stream.started(start)


def test_a_stream_that_is_not_8khz_mulaw_is_refused() -> None:
    other = json.loads(json.dumps(START))
    other["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    start = wire.parse(json.dumps(other))
    assert isinstance(start, wire.Start)
    with pytest.raises(wire.TwilioProtocolError, match="unsupported media format"):
        wire.TwilioStream().started(start)
