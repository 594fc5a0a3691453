"""The AudioHook engine through whole sessions: the brief's exchange, probe, pauses, 429s."""

from __future__ import annotations

import json

import pytest

from s2s.telephony.audiohook import AudioHookServer, AudioHookStateError
from s2s.telephony.audiohook_messages import (
    ClientError,
    CloseRequested,
    Discarded,
    Dtmf,
    OpenRequested,
    Participant,
    Paused,
    Ping,
    PlaybackCompleted,
    PlaybackStarted,
    Resumed,
    UpdateRequested,
)

from .audiohook_helpers import ORG, PCMU, SESSION, Client, client, open_params, opened_server, sent

# The brief's §2.4 client messages and §2.5 server messages, verbatim: one consistent session.
_ID = '{"version":"2","id":"e160e428-53e2-487c-977d-96989bf5c99d",'
BRIEF_CLIENT = [
    _ID + '"type":"open","seq":1,"serverseq":0,"position":"PT0S",'
    '"parameters":{"organizationId":"d7934305-0972-4844-938e-9060eef73d05",'
    '"conversationId":"090eaa2f-72fa-480a-83e0-8667ff89c0ec",'
    '"participant":{"id":"883efee8-3d6c-4537-b500-6d7ca4b92fa0","ani":"+1-555-555-1234",'
    '"aniName":"John Doe","dnis":"+1-800-555-6789"},'
    '"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}],'
    '"language":"en-US","inputVariables":{"tenant":"acme","intentHint":"billing"}}}',
    _ID + '"type":"ping","seq":2,"serverseq":1,"position":"PT1.2S","parameters":{}}',
    _ID + '"type":"ping","seq":3,"serverseq":2,"position":"PT1.3S",'
    '"parameters":{"rtt":"PT0.043S"}}',
    _ID + '"type":"playback_started","seq":4,"serverseq":4,"position":"PT3.4S","parameters":{}}',
    _ID + '"type":"dtmf","seq":5,"serverseq":4,"position":"PT7.8S","parameters":{"digit":"5"}}',
    _ID + '"type":"playback_completed","seq":6,"serverseq":5,"position":"PT9S","parameters":{}}',
    _ID + '"type":"paused","seq":7,"serverseq":5,"position":"PT20S","parameters":{}}',
    _ID + '"type":"resumed","seq":8,"serverseq":5,"position":"PT30S",'
    '"parameters":{"start":"PT20S","discarded":"PT10S"}}',
    _ID + '"type":"error","seq":9,"serverseq":5,"position":"PT31S",'
    '"parameters":{"code":429,"message":"Rate limit exceeded","retryAfter":"PT1.5S"}}',
    _ID + '"type":"close","seq":10,"serverseq":6,"position":"PT42.6S",'
    '"parameters":{"reason":"disconnect"}}',
]
BRIEF_SERVER = [
    json.loads(_ID + text)
    for text in [
        '"type":"opened","seq":1,"clientseq":1,"parameters":{"startPaused":false,'
        '"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}]}}',
        '"type":"pong","seq":2,"clientseq":2,"parameters":{}}',
        '"type":"pong","seq":3,"clientseq":3,"parameters":{}}',
        '"type":"event","seq":4,"clientseq":3,"parameters":{"entities":[{"type":'
        '"bot_turn_response","data":{"disposition":"match","text":'
        '"Sure, let me check your bill.","confidence":0.92}}]}}',
        '"type":"event","seq":5,"clientseq":5,'
        '"parameters":{"entities":[{"type":"barge_in","data":{}}]}}',
        '"type":"disconnect","seq":6,"clientseq":9,"parameters":{"reason":"completed",'
        '"info":"transfer requested","outputVariables":{"nextAction":"transfer",'
        '"queue":"Billing","summary":"Caller disputes March invoice"}}}',
        '"type":"closed","seq":7,"clientseq":10,"parameters":{}}',
    ]
]
FRAME = bytes(1600)  # 200 ms of PCMU


def _state(server: AudioHookServer) -> str:
    """The state, read afresh (so a type checker does not keep an earlier narrowing)."""
    return server.state


def _can_send(server: AudioHookServer) -> bool:
    return server.can_send_audio


def test_the_brief_session_message_by_message() -> None:
    server = AudioHookServer(SESSION, ORG)
    out: list[dict[str, object]] = []
    assert _state(server) == "awaiting_open" and not _can_send(server)

    (request,) = server.receive_text(BRIEF_CLIENT[0])
    assert request == OpenRequested(
        organization_id=ORG,
        conversation_id="090eaa2f-72fa-480a-83e0-8667ff89c0ec",
        participant=Participant(
            "883efee8-3d6c-4537-b500-6d7ca4b92fa0",
            "+1-555-555-1234",
            "John Doe",
            "+1-800-555-6789",
        ),
        media=(PCMU,),
        language="en-US",
        input_variables={"tenant": "acme", "intentHint": "billing"},
        custom_config={},
        probe=False,
    )
    assert sent(server) == []  # opened is the bridge's decision
    assert isinstance(request, OpenRequested)
    server.open(server.choose_media(request.media))
    assert server.state == "active" and _can_send(server) and not server.probe
    assert server.receive_audio(FRAME) == FRAME
    out += sent(server)

    assert server.receive_text(BRIEF_CLIENT[1]) == [Ping(None)]
    assert server.receive_text(BRIEF_CLIENT[2]) == [Ping(0.043)]
    out += sent(server)
    server.event(
        [
            {
                "type": "bot_turn_response",
                "data": {
                    "disposition": "match",
                    "text": "Sure, let me check your bill.",
                    "confidence": 0.92,
                },
            }
        ]
    )
    assert server.receive_text(BRIEF_CLIENT[3]) == [PlaybackStarted()]
    assert server.receive_text(BRIEF_CLIENT[4]) == [Dtmf("5")]
    server.barge_in()
    assert server.receive_text(BRIEF_CLIENT[5]) == [PlaybackCompleted()]
    assert server.receive_text(BRIEF_CLIENT[6]) == [Paused()]
    assert _state(server) == "paused" and not _can_send(server)
    assert server.receive_text(BRIEF_CLIENT[7]) == [Resumed(20.0, 10.0)]
    assert _state(server) == "active" and _can_send(server)
    (error,) = server.receive_text(BRIEF_CLIENT[8])
    assert error == ClientError(429, "Rate limit exceeded", 1.5)
    assert server.record_rate_limit(1.5, now=100.0) == 101.5
    server.disconnect(
        "completed",
        info="transfer requested",
        output_variables={
            "nextAction": "transfer",
            "queue": "Billing",
            "summary": "Caller disputes March invoice",
        },
    )
    assert not _can_send(server)
    out += sent(server)
    assert server.receive_text(BRIEF_CLIENT[9]) == [CloseRequested("disconnect")]
    assert _state(server) == "closing" and server.position_s == 42.6
    assert sent(server) == []  # close is not auto-answered
    server.closed()
    out += sent(server)
    assert _state(server) == "closed"
    assert out == BRIEF_SERVER
    assert all("position" not in message for message in out)


def test_pong_goes_out_at_once_with_the_pings_seq_before_later_messages() -> None:
    server = opened_server()
    server.receive_text(client("ping", 2, serverseq=1))
    server.receive_text(client("dtmf", 3, {"digit": "#"}, serverseq=1))
    server.event([{"type": "bot_turn_response", "data": {"disposition": "no_input"}}])
    pong, event = sent(server)
    assert (pong["type"], pong["seq"], pong["clientseq"], pong["parameters"]) == ("pong", 2, 2, {})
    assert (event["type"], event["seq"], event["clientseq"]) == ("event", 3, 3)


def test_caller_hangup_before_anything_else() -> None:
    server = opened_server()
    assert Client(server).send("close", {"reason": "end"}) == [CloseRequested("end")]
    with pytest.raises(AudioHookStateError, match="disconnect in state closing"):
        server.disconnect("completed")
    server.event([{"type": "bot_turn_response", "data": {"disposition": "no_match"}}])
    server.closed()
    event, closed = sent(server)
    assert event["type"] == "event"
    assert closed == {
        "version": "2",
        "id": SESSION,
        "type": "closed",
        "seq": 3,
        "clientseq": 2,
        "parameters": {},
    }
    for action in (server.closed, server.barge_in, server.pause):
        with pytest.raises(AudioHookStateError):
            action()
    assert sent(server) == []


def test_connection_probe_opens_without_media_and_closes() -> None:
    server = AudioHookServer(SESSION, ORG)
    (request,) = server.receive_text(client("open", 1, open_params(probe=True, media=[])))
    assert isinstance(request, OpenRequested) and request.probe and server.probe
    assert server.choose_media(request.media) is None
    server.open(None)
    assert sent(server)[0]["parameters"] == {"startPaused": False, "media": []}
    assert server.state == "active" and not _can_send(server)
    Client(server).send("close", {"reason": "end"})
    server.closed()
    assert [m["type"] for m in sent(server)] == ["closed"]


def test_a_real_call_without_a_usable_offer_is_disconnected_not_opened() -> None:
    server = AudioHookServer(SESSION, ORG)
    l16 = {**PCMU, "format": "L16"}
    (request,) = server.receive_text(client("open", 1, open_params(media=[l16])))
    assert isinstance(request, OpenRequested)
    assert server.choose_media(request.media) is None
    with pytest.raises(ValueError, match="only for the connection probe"):
        server.open(None)
    server.disconnect("error", info="no PCMU/8000 offer")
    (message,) = sent(server)
    assert message["parameters"] == {"reason": "error", "info": "no PCMU/8000 offer"}
    with pytest.raises(AudioHookStateError, match="after disconnect"):
        server.open(l16)


def test_choose_media_takes_the_first_pcmu_mono_external_entry_unchanged() -> None:
    stereo = {**PCMU, "channels": ["external", "internal"]}
    internal = {**PCMU, "channels": ["internal"]}
    external = {**PCMU, "extra": "kept"}
    offers = [stereo, {**PCMU, "rate": 16000}, internal, external, PCMU]
    assert AudioHookServer.choose_media(offers) is external
    server = AudioHookServer(SESSION, ORG)
    server.receive_text(client("open", 1, open_params(media=offers)))
    with pytest.raises(ValueError, match="not one of the offered"):
        server.open({**PCMU, "rate": 16000, "channels": ["external"], "x": 1})
    server.open(stereo)  # the bridge may pick another offered entry: frames are then 2 bytes
    assert sent(server)[0]["parameters"]["media"] == [stereo]
    assert server.receive_audio(bytes(3200)) == bytes(3200)


def test_server_pause_and_resume() -> None:
    server = opened_server()
    peer = Client(server)
    server.pause()
    server.pause()  # idempotent: one message
    assert not _can_send(server)
    assert server.receive_audio(FRAME) == FRAME  # still in flight before the client's paused
    assert peer.send("paused") == [Paused()]
    assert _state(server) == "paused"
    server.resume()
    assert peer.send("resumed", {"start": "PT5S", "discarded": "PT2.5S"}) == [Resumed(5.0, 2.5)]
    assert _state(server) == "active" and _can_send(server)
    assert [(m["type"], m["parameters"]) for m in sent(server)] == [("pause", {}), ("resume", {})]
    with pytest.raises(AudioHookStateError, match="did not ask for a pause"):
        server.resume()


def test_client_hold_pause_and_discarded() -> None:
    server = opened_server()
    peer = Client(server)
    assert peer.send("paused") == [Paused()]
    assert not _can_send(server)
    with pytest.raises(AudioHookStateError, match="did not ask"):
        server.resume()  # the client's own pause is not ours to end
    server.event([{"type": "bot_turn_response", "data": {"disposition": "no_input"}}])
    assert peer.send("resumed", {"start": "PT1S", "discarded": "PT4S"}) == [Resumed(1.0, 4.0)]
    assert peer.send("discarded", {"start": "PT5S", "discarded": "PT0.2S"}) == [Discarded(5.0, 0.2)]
    assert [m["type"] for m in sent(server)] == ["event"]


def test_update_and_updated() -> None:
    server = opened_server()
    with pytest.raises(AudioHookStateError, match="no update"):
        server.updated()
    assert Client(server).send("update", {"language": "fr-FR"}) == [UpdateRequested("fr-FR")]
    server.updated()
    assert sent(server)[0]["parameters"] == {}


def test_dtmf_digits_and_playback_events() -> None:
    server = opened_server()
    peer = Client(server)
    assert [peer.send("dtmf", {"digit": d})[0] for d in "0*#9"] == [
        Dtmf("0"),
        Dtmf("*"),
        Dtmf("#"),
        Dtmf("9"),
    ]
    assert peer.send("playback_started") == [PlaybackStarted()]
    assert peer.send("playback_completed") == [PlaybackCompleted()]
    assert server.client_seq == 7 and sent(server) == []


def test_rate_limit_bookkeeping() -> None:
    server = opened_server()
    assert server.retry_after_until(0.0) is None
    assert server.record_rate_limit(None, now=10.0) == 13.0
    assert server.retry_after_until(12.9) == 13.0
    assert server.record_rate_limit(None, now=12.0) == 21.0  # consecutive: 9 s
    assert server.record_rate_limit(None, now=22.0) == 49.0  # within 9 s after the hold: 27 s
    assert server.record_rate_limit(None, now=50.0) == 77.0  # capped at 27 s
    assert server.retry_after_until(77.0) is None
    assert server.record_rate_limit(None, now=200.0) == 203.0  # quiet long enough: reset
    assert server.record_rate_limit(1.5, now=300.0) == 301.5  # retryAfter wins
    assert server.record_rate_limit(0.5, now=300.2) == 301.5  # a hold never shrinks


def test_disconnect_outputs_must_be_strings_and_only_once() -> None:
    server = opened_server()
    with pytest.raises(TypeError, match="'count' must map a string to a string, not int"):
        server.disconnect("completed", output_variables={"count": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="reason must be one of"):
        server.disconnect("transfer")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="info must be a string"):
        server.disconnect("error", info=5)  # type: ignore[arg-type]
    assert sent(server) == []
    server.disconnect("completed", output_variables={"count": json.dumps(3)})
    with pytest.raises(AudioHookStateError, match="already sent"):
        server.disconnect("error")
    for action in (server.pause, server.barge_in):
        with pytest.raises(AudioHookStateError, match="after disconnect"):
            action()
    peer = Client(server)
    assert peer.send("ping") == [Ping(None)]  # pong still goes out
    assert server.receive_audio(FRAME) == FRAME  # in flight before the client's close
    peer.send("close", {"reason": "disconnect"})
    server.closed()
    assert [m["type"] for m in sent(server)] == ["disconnect", "pong", "closed"]


def test_disconnect_unauthorized_before_open() -> None:
    server = AudioHookServer(SESSION, ORG)
    server.disconnect("unauthorized", info="unknown API key")
    assert sent(server) == [
        {
            "version": "2",
            "id": SESSION,
            "type": "disconnect",
            "seq": 1,
            "clientseq": 0,
            "parameters": {"reason": "unauthorized", "info": "unknown API key"},
        }
    ]


def test_event_entities_are_checked() -> None:
    server = opened_server()
    bad_entities: list[list[dict[str, object]]] = [
        [],
        [{"data": {}}],
        [{"type": "x"}],
        [{"type": "x", "data": {"n": float("nan")}}],
    ]
    for bad in bad_entities:
        with pytest.raises(ValueError):  # noqa: PT011 - each names its own problem
            server.event(bad)
    with pytest.raises(TypeError, match="not JSON-serializable"):
        server.event([{"type": "x", "data": {"when": object()}}])
    with pytest.raises(ValueError, match="larger than 65536"):
        server.event([{"type": "x", "data": {"text": "a" * 70_000}}])
    assert sent(server) == [] and server.server_seq == 1
