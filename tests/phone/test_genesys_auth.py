"""The simulator's upgrade request: a strict server accepts the good one and refuses each fault."""

from __future__ import annotations

import asyncio
import base64
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from s2s.phone.genesys import GenesysCall, GenesysCredentials
from s2s.phone.genesys_signature import SignatureOptions
from s2s.phone.genesys_timeline import GenesysConnectError, GenesysSessionError

from ..conftest import SECOND
from .genesys_server import API_KEY, SECRET, AudioHookServer

CREDENTIALS = GenesysCredentials(API_KEY, SECRET)


@pytest.mark.parametrize(
    ("credentials", "options", "refusal"),
    [
        (GenesysCredentials(API_KEY), None, "unsigned request"),
        (GenesysCredentials("another-key", SECRET), None, "unknown API key"),
        (CREDENTIALS, SignatureOptions(secret=base64.b64encode(b"x" * 32).decode()), "mismatch"),
        (CREDENTIALS, SignatureOptions(created_offset_s=-60), "signature expired"),
        (CREDENTIALS, SignatureOptions(keyid="someone-else"), "keyid is not X-API-KEY"),
    ],
)
async def test_a_bad_upgrade_is_refused_with_its_http_status(
    credentials: GenesysCredentials, options: SignatureOptions | None, refusal: str
):
    async with AudioHookServer() as server:
        with pytest.raises(GenesysConnectError, match="HTTP 401") as caught:
            await GenesysCall.connect(server.url, credentials, signature=options)
    assert caught.value.status == 401
    assert server.sessions == [] and refusal in server.refusals[0]


async def test_a_forbidden_upgrade_carries_403():
    async with AudioHookServer(refuse_status=403) as server:
        with pytest.raises(GenesysConnectError) as caught:
            await GenesysCall.connect(server.url, CREDENTIALS)
    assert caught.value.status == 403


async def test_an_organization_header_mismatch_ends_in_unauthorized():
    async with AudioHookServer() as server:
        options = SignatureOptions(organization_header="11111111-2222-3333-4444-555555555555")
        with pytest.raises(GenesysSessionError, match="unauthorized") as caught:
            await GenesysCall.connect(server.url, CREDENTIALS, signature=options)
        session = await server.session()
    outcome = caught.value.outcome
    assert outcome is not None and outcome.disconnect_reason == "unauthorized"
    assert (outcome.ended_by, outcome.closed_in_time) == ("server", True)
    assert [m["type"] for m in session.messages] == ["open", "close"]
    assert session.messages[1]["parameters"] == {"reason": "disconnect"}


async def test_redirects_are_not_followed():
    def redirect(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(HTTPStatus.FOUND, "")
        response.headers["Location"] = "/elsewhere"
        return response

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=redirect) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        with pytest.raises(GenesysConnectError) as caught:
            await GenesysCall.connect(f"ws://127.0.0.1:{port}/ws", CREDENTIALS)
    assert caught.value.status == 302


async def test_no_server_is_a_connect_error_without_status():
    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
    with pytest.raises(GenesysConnectError, match="cannot open") as caught:
        async with asyncio.timeout(5 * SECOND):
            await GenesysCall.connect(f"ws://127.0.0.1:{port}/", CREDENTIALS)
    assert caught.value.status is None
