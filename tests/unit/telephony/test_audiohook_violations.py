"""Every kind of client violation the AudioHook engine rejects, with its code and message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s2s.telephony.audiohook import AudioHookServer
from s2s.telephony.audiohook_messages import AudioHookProtocolError

from .audiohook_helpers import ORG, PCMU, SESSION, Client, client, open_params, opened_server, sent


def _error(server: AudioHookServer, text: str) -> AudioHookProtocolError:
    with pytest.raises(AudioHookProtocolError) as info:
        server.receive_text(text)
    return info.value


def _envelope(**changes: Any) -> str:
    message: dict[str, Any] = json.loads(client("ping", 2, serverseq=1))
    for key, value in changes.items():
        if value is ...:
            del message[key]
        else:
            message[key] = value
    return json.dumps(message)


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "not a JSON object"),
        ('{"seq": NaN}', 400, "not valid JSON"),
        (_envelope(version="1"), 400, 'version must be "2"'),
        (_envelope(version=2), 400, 'version must be "2"'),
        (_envelope(id="another"), 400, "is not this session's id"),
        (_envelope(type="pong"), 400, "unknown message type 'pong'"),
        (_envelope(type="pause"), 400, "unknown message type 'pause'"),
        (_envelope(type=...), 400, "unknown message type None"),
        (_envelope(seq="2"), 400, "seq must be an integer"),
        (_envelope(seq=True), 400, "seq must be an integer"),
        (_envelope(serverseq=-1), 400, "serverseq must be an integer ≥ 0"),
        (_envelope(serverseq=...), 400, "serverseq must be an integer"),
        (_envelope(position="1.2"), 400, "position is not a duration"),
        (_envelope(position=...), 400, "position missing"),
        (_envelope(parameters=...), 400, "parameters missing or not an object"),
        (_envelope(parameters=[]), 400, "parameters missing or not an object"),
        (_envelope(seq=3), 409, "seq 3, expected 2"),
        (_envelope(seq=1), 409, "seq 1, expected 2"),
        (_envelope(serverseq=2), 409, "serverseq 2 is ahead of our last seq 1"),
        (_envelope(parameters={"rtt": 0.04}), 400, "rtt must be a duration string"),
        (_envelope(parameters={"rtt": "PT-1S"}), 400, "rtt is not a duration"),
    ],
)
def test_envelope_violations(text: str, code: int, expected: str) -> None:
    server = opened_server()
    error = _error(server, text)
    assert (error.code, error.disconnect_reason) == (code, "error")
    assert expected in error.message
    assert server.client_seq == 1 and sent(server) == []  # nothing applied


def test_a_text_over_64_kib_is_413() -> None:
    server = opened_server()
    text = client("ping", 2, {"padding": "x" * 65_536}, serverseq=1)
    assert _error(server, text).code == 413
    multibyte = client("ping", 2, {"padding": "é" * 33_000}, serverseq=1)  # < 64 Ki chars
    assert _error(server, multibyte).code == 413


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("close", {}, "close: reason must be one of"),
        ("close", {"reason": "bye"}, "close: reason must be one of"),
        ("resumed", {"start": "PT1S"}, "resumed: start and discarded"),
        ("discarded", {"start": "PT1S", "discarded": "10"}, "discarded: discarded is not"),
        ("update", {"language": 5}, "update: language must be a string"),
        ("error", {"code": "429", "message": "x"}, "error: code must be an integer"),
        ("error", {"code": 429, "message": 1}, "error: message must be a string"),
        ("error", {"code": 429, "message": "x", "retryAfter": 1.5}, "retryAfter must be"),
        ("dtmf", {"digit": "55"}, "dtmf: digit must be"),
        ("dtmf", {"digit": 5}, "dtmf: digit must be"),
        ("dtmf", {}, "dtmf: digit must be"),
    ],
)
def test_parameter_violations(kind: str, params: dict[str, Any], expected: str) -> None:
    server = opened_server()
    error = _error(server, client(kind, 2, params, serverseq=1))
    assert error.code == 400 and expected in error.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"organizationId": "acme"}, "open: organizationId must be a UUID"),
        ({"conversationId": None}, "open: conversationId must be a UUID"),
        ({"participant": "John"}, "participant missing or not an object"),
        ({"participant": {"id": "x"}}, "open: participant.id must be a UUID"),
        ({"participant": {"id": ORG, "ani": 5551234}}, "participant.ani must be a string"),
        ({"media": {"format": "PCMU"}}, "open: media missing or not a list of objects"),
        ({"media": ["PCMU"]}, "open: media missing or not a list of objects"),
        ({"inputVariables": {"n": 1}}, "inputVariables must be an object of string values"),
        ({"customConfig": []}, "customConfig must be an object"),
        ({"language": ["en"]}, "open: language must be a string"),
    ],
)
def test_open_parameter_violations(change: dict[str, Any], expected: str) -> None:
    server = AudioHookServer(SESSION, ORG)
    error = _error(server, client("open", 1, open_params() | change))
    assert error.code == 400 and expected in error.message
    assert server.open_request is None


def test_organization_mismatch_is_unauthorized() -> None:
    server = AudioHookServer(SESSION, ORG)
    other = "11111111-0972-4844-938e-9060eef73d05"
    error = _error(server, client("open", 1, open_params(org=other)))
    assert error.code == 401 and error.disconnect_reason == "unauthorized"
    assert error.message.startswith("organization mismatch")
    server.disconnect(error.disconnect_reason, info=error.message)
    assert sent(server)[0]["parameters"]["reason"] == "unauthorized"


def test_organization_ids_compare_without_case() -> None:
    server = AudioHookServer(SESSION, ORG.upper())
    assert len(server.receive_text(client("open", 1, open_params()))) == 1


@pytest.mark.parametrize(
    "kind", ["paused", "dtmf", "playback_started", "playback_completed", "update", "discarded"]
)
def test_messages_before_open_are_not_allowed(kind: str) -> None:
    params = {"digit": "1", "start": "PT0S", "discarded": "PT0S", "language": "en-US"}
    error = _error(AudioHookServer(SESSION, ORG), client(kind, 1, params))
    assert (error.code, error.message) == (405, f"{kind} before open")


@pytest.mark.parametrize("kind", ["paused", "dtmf", "playback_started", "resumed"])
def test_messages_between_open_and_opened_are_not_allowed(kind: str) -> None:
    server = AudioHookServer(SESSION, ORG)
    server.receive_text(client("open", 1, open_params()))
    params = {"digit": "1", "start": "PT0S", "discarded": "PT0S"}
    error = _error(server, client(kind, 2, params))
    assert (error.code, error.message) == (405, f"{kind} before opened")


def test_ping_error_and_close_are_allowed_before_opened() -> None:
    server = AudioHookServer(SESSION, ORG)
    peer = Client(server, seq=0)
    peer.send("ping")
    peer.send("open", open_params())
    peer.send("error", {"code": 408, "message": "opened timeout"})
    peer.send("close", {"reason": "error"})
    assert server.state == "closing" and server.open_request is not None
    server.closed()
    assert [m["type"] for m in sent(server)] == ["pong", "closed"]


def test_second_open_second_close_and_messages_after_closed() -> None:
    server = opened_server()
    peer = Client(server)
    error = _error(server, client("open", 2, open_params(), serverseq=1))
    assert (error.code, error.message) == (405, "second open in the session")
    peer.send("close", {"reason": "end"})
    error = _error(server, client("close", 3, {"reason": "end"}, serverseq=1))
    assert (error.code, error.message) == (405, "close after close")
    assert peer.send("ping")  # still answered while closing
    server.closed()
    error = _error(server, client("ping", 4, serverseq=3))
    assert (error.code, error.message) == (405, "ping after the session was closed")


def test_audio_outside_the_active_state() -> None:
    server = AudioHookServer(SESSION, ORG)
    with pytest.raises(AudioHookProtocolError, match="before opened") as info:
        server.receive_audio(bytes(1600))
    assert info.value.code == 405
    server.receive_text(client("open", 1, open_params()))
    with pytest.raises(AudioHookProtocolError, match="before opened"):
        server.receive_audio(bytes(1600))
    server.open(PCMU)
    peer = Client(server)
    peer.send("paused")
    with pytest.raises(AudioHookProtocolError, match="while paused"):
        server.receive_audio(bytes(1600))
    peer.send("resumed", {"start": "PT0S", "discarded": "PT1S"})
    assert server.receive_audio(bytes(1600)) == bytes(1600)
    peer.send("close", {"reason": "end"})
    with pytest.raises(AudioHookProtocolError, match="after close"):
        server.receive_audio(bytes(1600))


def test_audio_frame_sizes() -> None:
    server = AudioHookServer(SESSION, ORG)
    stereo_l16 = {**PCMU, "format": "L16", "channels": ["external", "internal"]}
    server.receive_text(client("open", 1, open_params(media=[stereo_l16])))
    server.open(stereo_l16)
    assert server.receive_audio(bytes(6400)) == bytes(6400)
    with pytest.raises(AudioHookProtocolError, match="not a multiple of the 4-byte") as info:
        server.receive_audio(bytes(6402))
    assert info.value.code == 415
    probe = opened_server(probe=True)
    assert probe.can_send_audio  # the probe helper picked PCMU: audio is possible
    no_media = AudioHookServer(SESSION, ORG)
    no_media.receive_text(client("open", 1, open_params(probe=True, media=[])))
    no_media.open(None)
    with pytest.raises(AudioHookProtocolError, match="no media was negotiated"):
        no_media.receive_audio(bytes(160))


def test_server_actions_in_the_wrong_state() -> None:
    server = AudioHookServer(SESSION, ORG)
    with pytest.raises(RuntimeError, match="opened before the client's open"):
        server.open(PCMU)
    for action in (server.pause, server.resume, server.updated, server.barge_in):
        with pytest.raises(RuntimeError, match="before opened|in state awaiting_open"):
            action()
    with pytest.raises(RuntimeError, match="closed only answers the client's close"):
        server.closed()
    server.receive_text(client("open", 1, open_params()))
    server.open(PCMU)
    with pytest.raises(RuntimeError, match="opened twice"):
        server.open(PCMU)
    assert [m["type"] for m in sent(server)] == ["opened"]
