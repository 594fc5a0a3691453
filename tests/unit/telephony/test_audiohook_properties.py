"""Property: any run of valid client messages and server actions keeps seq/clientseq right."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.telephony.audiohook import AudioHookServer

from .audiohook_helpers import ORG, PCMU, SESSION, client, open_params

STEPS = [
    "ping",
    "dtmf",
    "playback_started",
    "playback_completed",
    "hold",
    "unhold",
    "discarded",
    "update",
    "error429",
    "audio",
    "event",
    "pause",
    "resume",
    "updated",
    "drain",
]
SERVER_KEYS = {"version", "id", "type", "seq", "clientseq", "parameters"}


class Genesys:
    """A well-behaved client: answers pause/resume, tracks the server seq it has seen."""

    def __init__(self, server: AudioHookServer) -> None:
        self.server = server
        self.seq = 0
        self.seen_seq = 0
        self.paused = self.hold = self.asked_to_pause = self.update_pending = False
        self.received: list[dict[str, Any]] = []
        self.expected_clientseq: dict[int, int] = {}  # server seq -> client seq when queued

    def send(self, kind: str, params: dict[str, Any] | None = None) -> None:
        self.seq += 1
        text = client(kind, self.seq, params, serverseq=self.seen_seq, position=f"PT{self.seq}S")
        self.server.receive_text(text)
        if kind == "ping":
            self.expected_clientseq[self.server.server_seq] = self.seq

    def queued(self) -> None:
        self.expected_clientseq[self.server.server_seq] = self.seq

    def drain(self) -> None:
        for text in self.server.data_to_send():
            message = json.loads(text)
            self.received.append(message)
            self.seen_seq = message["seq"]
            if message["type"] == "pause":
                self.asked_to_pause = True
                if not self.paused:
                    self.paused = True
                    self.send("paused")
            elif message["type"] == "resume":
                self.asked_to_pause = False
                if self.hold:
                    self.send("paused")  # our own pause is still on
                else:
                    self.paused = False
                    self.send("resumed", {"start": "PT1S", "discarded": "PT2S"})


def _step(peer: Genesys, server: AudioHookServer, step: str) -> None:
    if step in ("ping", "playback_started", "playback_completed"):
        peer.send(step)
    elif step == "dtmf":
        peer.send("dtmf", {"digit": "7"})
    elif step == "discarded":
        peer.send("discarded", {"start": "PT0S", "discarded": "PT0.2S"})
    elif step == "update":
        peer.send("update", {"language": "de-DE"})
        peer.update_pending = True
    elif step == "error429":
        peer.send("error", {"code": 429, "message": "slow down"})
        server.record_rate_limit(None, now=float(peer.seq))
    elif step == "hold" and not peer.hold:
        peer.hold = True
        if not peer.paused:
            peer.paused = True
            peer.send("paused")
    elif step == "unhold" and peer.hold:
        peer.hold = False
        if not peer.asked_to_pause:
            peer.paused = False
            peer.send("resumed", {"start": "PT1S", "discarded": "PT3S"})
    elif step == "audio" and not peer.paused:
        assert server.receive_audio(bytes(1600)) == bytes(1600)
    elif step == "event":
        server.barge_in()
        peer.queued()
    elif step == "pause":
        before = server.server_seq
        server.pause()
        if server.server_seq != before:
            peer.queued()
    elif step == "resume" and server.pause_requested:
        server.resume()
        peer.queued()
    elif step == "updated" and peer.update_pending:
        server.updated()
        peer.update_pending = False
        peer.queued()
    elif step == "drain":
        peer.drain()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(STEPS), max_size=40))
def test_sequence_numbers_stay_consistent(steps: list[str]) -> None:
    server = AudioHookServer(SESSION, ORG)
    peer = Genesys(server)
    peer.send("open", open_params())
    server.open(PCMU)
    peer.queued()
    for step in steps:
        _step(peer, server, step)
        assert server.state == ("paused" if peer.paused else "active")
        assert server.client_seq == peer.seq
    peer.drain()
    server.disconnect("completed", output_variables={"done": "yes"})
    peer.queued()
    peer.drain()
    peer.send("close", {"reason": "disconnect"})
    server.closed()
    peer.queued()
    peer.drain()

    assert [m["seq"] for m in peer.received] == list(range(1, len(peer.received) + 1))
    for message in peer.received:
        assert set(message) == SERVER_KEYS and isinstance(message["parameters"], dict)
        assert message["version"] == "2" and message["id"] == SESSION
        assert message["type"] not in ("error", "paused", "resumed")
        assert message["clientseq"] == peer.expected_clientseq[message["seq"]]
    assert peer.received[-1]["type"] == "closed"
    assert server.state == "closed" and server.data_to_send() == []
