"""Reads on the Nova transport survive a cancelled wait (a session winding a stream down)."""

from __future__ import annotations

import asyncio
import json

import pytest

from s2s.providers.nova import wire
from s2s.providers.nova.client import NovaProvider

from ..conftest import SECOND, nova_config


async def test_a_cancelled_wait_loses_no_event_and_leaves_crt_nothing_to_trip_on(nova_emulator):
    transport = await NovaProvider(nova_config(nova_emulator)).connect()
    try:
        assert "streamAccepted" in json.loads(await transport.recv())
        waiting = asyncio.create_task(transport.recv())
        await asyncio.sleep(0.1 * SECOND)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await transport.send(wire.session_start(1024, 0.9, 0.7, None))
        await transport.send(wire.dumps("textInput", {"promptName": "nope", "content": "hi"}))
        frame = json.loads(await asyncio.wait_for(transport.recv(), 5 * SECOND))
        assert frame["exception"]["type"] == "ValidationException", frame
    finally:
        await transport.close()
