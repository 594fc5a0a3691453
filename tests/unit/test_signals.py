"""stop_on_signals: SIGINT and SIGTERM set the event a command waits on."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from s2s.signals import stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_the_signal_sets_the_stop_event(sig):
    loop = asyncio.get_running_loop()
    stop = stop_on_signals()
    try:
        assert not stop.is_set()
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(s)
