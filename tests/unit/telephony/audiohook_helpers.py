"""Client messages for the AudioHook engine tests."""

from __future__ import annotations

import json
from typing import Any

from s2s.telephony.audiohook import AudioHookServer

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
ORG = "d7934305-0972-4844-938e-9060eef73d05"
NIL = "00000000-0000-0000-0000-000000000000"
PCMU = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}


def open_params(
    *, media: list[dict[str, Any]] | None = None, probe: bool = False, org: str = ORG
) -> dict[str, Any]:
    return {
        "organizationId": org,
        "conversationId": NIL if probe else "090eaa2f-72fa-480a-83e0-8667ff89c0ec",
        "participant": {
            "id": NIL if probe else "883efee8-3d6c-4537-b500-6d7ca4b92fa0",
            "ani": "+1-555-555-1234",
            "aniName": "John Doe",
            "dnis": "+1-800-555-6789",
        },
        "media": [PCMU] if media is None else media,
        "language": "en-US",
        "inputVariables": {"tenant": "acme"},
    }


def client(
    kind: str,
    seq: int,
    params: dict[str, Any] | None = None,
    *,
    serverseq: int = 0,
    position: str = "PT0S",
    session: str = SESSION,
) -> str:
    return json.dumps(
        {
            "version": "2",
            "id": session,
            "type": kind,
            "seq": seq,
            "serverseq": serverseq,
            "position": position,
            "parameters": {} if params is None else params,
        }
    )


def sent(server: AudioHookServer) -> list[dict[str, Any]]:
    return [json.loads(text) for text in server.data_to_send()]


def opened_server(*, probe: bool = False) -> AudioHookServer:
    """A session after open c1 / opened s1, outbox drained."""
    server = AudioHookServer(SESSION, ORG)
    server.receive_text(client("open", 1, open_params(probe=probe)))
    server.open(server.choose_media([PCMU]))
    server.data_to_send()
    return server


class Client:
    """Tracks the client's seq and the last server seq it saw, like Genesys does."""

    def __init__(self, server: AudioHookServer, seq: int = 1) -> None:
        self.server, self.seq = server, seq

    def send(self, kind: str, params: dict[str, Any] | None = None) -> list[object]:
        self.seq += 1
        return list(
            self.server.receive_text(
                client(kind, self.seq, params, serverseq=self.server.server_seq)
            )
        )
