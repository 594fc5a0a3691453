"""Twilio wire messages, strict checks of what the server sends, TwiML reading, signatures."""

from __future__ import annotations

import base64
import json

import pytest
from twilio.request_validator import RequestValidator

from s2s.phone import TwimlError
from s2s.phone import twilio_messages as wire
from s2s.phone.twilio_media import CallerAudio, Delivery
from s2s.phone.twilio_twiml import (
    Dial,
    Hangup,
    Pause,
    Redirect,
    Say,
    Unsupported,
    parse_connect,
    parse_verbs,
)
from s2s.phone.twilio_webhook import call_params, sign

SID = "MZ00000000000000000000000000000001"
AC = "AC00000000000000000000000000000001"
CA = "CA00000000000000000000000000000001"


# -- what we send ------------------------------------------------------------------------------


def test_messages_have_the_documented_shape_with_string_values():
    assert json.loads(wire.connected()) == {
        "event": "connected",
        "protocol": "Call",
        "version": "1.0.0",
    }
    start = json.loads(wire.start(1, SID, AC, CA, {"tenant": "acme"}))
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": SID,
        "start": {
            "streamSid": SID,
            "accountSid": AC,
            "callSid": CA,
            "tracks": ["inbound"],
            "customParameters": {"tenant": "acme"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    media = json.loads(wire.media(2, SID, 1, 0, b"\xff" * 160))
    assert media["media"] == {
        "track": "inbound",
        "chunk": "1",
        "timestamp": "0",
        "payload": base64.b64encode(b"\xff" * 160).decode(),
    }
    assert json.loads(wire.dtmf(57, SID, "5"))["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert json.loads(wire.mark_echo(58, SID, "r1:s1")) == {
        "event": "mark",
        "sequenceNumber": "58",
        "streamSid": SID,
        "mark": {"name": "r1:s1"},
    }
    assert json.loads(wire.stop(912, SID, AC, CA))["stop"] == {"accountSid": AC, "callSid": CA}
    with pytest.raises(ValueError, match="DTMF digit"):
        wire.dtmf(3, SID, "x")


def test_sids_look_like_twilio_sids():
    sid = wire.new_sid("MZ")
    assert len(sid) == 34 and sid.startswith("MZ")
    int(sid[2:], 16)


# -- what the server sends ---------------------------------------------------------------------


def test_valid_server_messages_parse():
    payload = base64.b64encode(b"\x7f" * 10).decode()
    media = {"event": "media", "streamSid": SID, "media": {"payload": payload}}
    assert wire.parse_server_message(json.dumps(media), SID) == wire.ServerMedia(b"\x7f" * 10)
    mark = {"event": "mark", "streamSid": SID, "mark": {"name": "m"}}
    assert wire.parse_server_message(json.dumps(mark), SID) == wire.ServerMark("m")
    clear = {"event": "clear", "streamSid": SID}
    assert wire.parse_server_message(json.dumps(clear), SID) == wire.ServerClear()


@pytest.mark.parametrize(
    ("frame", "code", "match"),
    [
        (b'{"event":"clear"}', 31950, "binary frame"),
        ("{not json", 31950, "not valid JSON"),
        ("[1, 2]", 31951, "JSON object"),
        (json.dumps({"event": "connected", "streamSid": SID}), 31951, "unknown event"),
        (json.dumps({"event": ["media"], "streamSid": SID}), 31951, "unknown event"),
        (json.dumps({"streamSid": SID}), 31951, "unknown event"),
        (json.dumps({"event": "clear"}), 31951, r"missing \['streamSid'\]"),
        (json.dumps({"event": "clear", "streamSid": SID, "x": 1}), 31951, r"unexpected \['x'\]"),
        (json.dumps({"event": "clear", "stream_sid": SID}), 31951, "stream_sid"),
        (json.dumps({"event": "clear", "streamSid": "MZ" + "f" * 32}), 31951, "streamSid"),
        (
            json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "@@@"}}),
            31951,
            "base64",
        ),
        (
            json.dumps({"event": "media", "streamSid": SID, "media": {"payload": 5}}),
            31951,
            "base64 string",
        ),
        (
            json.dumps(
                {"event": "media", "streamSid": SID, "media": {"payload": "", "track": "outbound"}}
            ),
            31951,
            "unexpected",
        ),
        (json.dumps({"event": "media", "streamSid": SID, "media": "AA=="}), 31951, "object"),
        (json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": 7}}), 31951, "string"),
        (json.dumps({"event": "mark", "streamSid": SID, "mark": {}}), 31951, "missing"),
        (
            json.dumps({"event": "mark", "streamSid": SID, "sequenceNumber": "1", "mark": {}}),
            31951,
            "sequenceNumber",
        ),
    ],
)
def test_what_twilio_refuses_is_rejected_with_its_code(frame: str | bytes, code: int, match: str):
    with pytest.raises(wire.MessageRejected, match=match) as caught:
        wire.parse_server_message(frame, SID)
    assert caught.value.code == code


def test_any_message_before_start_is_rejected():
    clear = json.dumps({"event": "clear", "streamSid": SID})
    with pytest.raises(wire.MessageRejected, match="before start") as caught:
        wire.parse_server_message(clear, None)
    assert caught.value.code == 31951


# -- caller frames -----------------------------------------------------------------------------


def test_caller_frames_carry_queued_audio_then_silence():
    caller = CallerAudio()
    caller.push(b"\x01" * 200)
    (ts1, f1, n1), (ts2, f2, n2), (ts3, f3, n3) = (caller.frames(k)[0] for k in (1, 2, 3))
    assert (ts1, ts2, ts3) == (0, 20, 40)
    assert f1 == b"\x01" * 160 and n1 == 160
    assert f2 == b"\x01" * 40 + b"\xff" * 120 and n2 == 40
    assert f3 == b"\xff" * 160 and n3 == 0


def test_gaps_leave_out_silence_frames_and_caller_audio_ends_a_gap():
    caller = CallerAudio(Delivery(gaps=True, gap_after_ms=100, gap_ms=60))
    sent = [frame[0] for k in range(1, 13) for frame in caller.frames(k)]
    # 100 ms of silence (5 frames), then 60 ms with no frames, then again.
    assert sent == [0, 20, 40, 60, 80, 160, 180, 200, 220]
    caller.push(b"\x01" * 160)
    assert [frame[0] for frame in caller.frames(13)] == [240]


def test_bursts_hold_frames_back_and_deliver_them_together():
    caller = CallerAudio(Delivery(bursts=True, burst_every=5, burst_frames=3))
    batches = [[frame[0] for frame in caller.frames(k)] for k in range(1, 11)]
    assert batches == [[0], [20], [], [], [40, 60, 80], [100], [120], [], [], [140, 160, 180]]
    with pytest.raises(ValueError, match="burst_frames"):
        Delivery(bursts=True, burst_every=2, burst_frames=3)


# -- TwiML -------------------------------------------------------------------------------------

VOICE = "https://bot.example.com/twilio/voice"


def test_connect_stream_with_parameters_and_verbs_after_connect():
    twiml = """<?xml version="1.0" encoding="UTF-8"?>
    <Response><Say>Connecting you</Say>
      <Connect><Stream url="wss://bot.example.com/twilio/stream?token=lost#frag" name="s1">
        <Parameter name="tenant" value="acme"/><Parameter name="sessionToken" value="opaque-123"/>
      </Stream></Connect>
      <Say>Goodbye</Say><Redirect method="POST">/twilio/after</Redirect><Hangup/>
    </Response>"""
    connect = parse_connect(twiml, VOICE)
    assert connect.url == "wss://bot.example.com/twilio/stream"
    assert connect.written_url == "wss://bot.example.com/twilio/stream?token=lost#frag"
    assert connect.parameters == {"tenant": "acme", "sessionToken": "opaque-123"}
    assert connect.name == "s1"
    assert connect.before == (Say("Connecting you"),)
    assert connect.after == (
        Say("Goodbye"),
        Redirect("https://bot.example.com/twilio/after", "POST"),
        Hangup(),
    )


def test_a_relative_stream_url_resolves_against_the_webhook():
    twiml = '<Response><Connect><Stream url="/twilio/stream?x=1"/></Connect></Response>'
    assert parse_connect(twiml, VOICE).url == "wss://bot.example.com/twilio/stream"
    assert (
        parse_connect(twiml, "http://127.0.0.1:8080/v").url == "ws://127.0.0.1:8080/twilio/stream"
    )


@pytest.mark.parametrize(
    ("twiml", "match"),
    [
        ("<Response><Say>hi</Say></Response>", r"no <Connect><Stream> \(found <Say>\)"),
        ("<Response><Connect><Room/></Connect></Response>", r"no <Stream> \(found <Room>\)"),
        ("<Response><Connect><Stream/></Connect></Response>", "no url"),
        ('<Response><Connect><Stream url="https://x/s"/></Connect></Response>', "ws:// or wss://"),
        (
            '<Response><Connect><Stream url="wss://x/s"><Parameter name="a"/></Stream></Connect>'
            "</Response>",
            "name and value",
        ),
        ('<Response><Hangup/><Connect><Stream url="wss://x/s"/></Connect></Response>', "before"),
        ("<Reply/>", "must be <Response>"),
        ("<Response><Connect>", "well-formed"),
    ],
)
def test_twiml_twilio_cannot_run_is_a_clear_error(twiml: str, match: str):
    with pytest.raises(TwimlError, match=match) as caught:
        parse_connect(twiml, VOICE)
    assert caught.value.code == 12100


def test_dial_targets_and_other_verbs():
    twiml = """<Response>
      <Dial>+15550001111</Dial><Dial><Number>+15550002222</Number></Dial>
      <Dial><Sip>sip:agent@pbx.example.com</Sip></Dial><Dial><Queue>support</Queue></Dial>
      <Pause length="2"/><Gather/><Redirect method="GET">https://x.example.com/n</Redirect>
    </Response>"""
    assert parse_verbs(twiml, VOICE) == (
        Dial("+15550001111"),
        Dial("+15550002222", "Number"),
        Dial("sip:agent@pbx.example.com", "Sip"),
        Dial("support", "Queue"),
        Pause(2.0),
        Unsupported("Gather"),
        Redirect("https://x.example.com/n", "GET"),
    )
    with pytest.raises(TwimlError, match="<Dial> names no"):
        parse_verbs("<Response><Dial/></Response>", VOICE)


# -- signatures --------------------------------------------------------------------------------


def test_signature_matches_the_brief_test_vector_and_validates():
    assert sign("12345", "wss://example.com/media", {}) == "7PR3qMkpDyEJtMrVOY/LDyNq8J8="
    params = call_params(account_sid=AC, call_sid=CA, from_="+1555", to="+1800", status="ringing")
    signature = sign("token", VOICE, params)
    assert RequestValidator("token").validate(VOICE, params, signature)
    assert not RequestValidator("other").validate(VOICE, params, signature)
    assert params["ApiVersion"] == "2010-04-01" and params["Direction"] == "inbound"
    assert params["Caller"] == "+1555" and params["Called"] == "+1800"
