"""The production ingress end to end: Serve's HAProxy ingress (``serve.ingress: haproxy``, the
default and what the k8s manifests deploy) in front of two ingress replicas that serve the
calls' WebSockets themselves.

Calls are created over REST and stream binary audio both ways through HAProxy; HAProxy spreads
them over both replicas; a caller whose network drops reconnects and resumes; a redeploy drains
both replicas (their clients are told 1012 at once and resume on the new ones); nothing is lost
or repeated.
"""

from __future__ import annotations

import asyncio

import psutil
import pytest

from deployments.stack import LocalStack

from .fault_calls import assert_exactly_once, assert_seqs_once, audio_at_provider
from .stack import EmulatorThread
from .test_faults import end_calls, start_calls
from .test_redeploy import redeploy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SERVE_SETTINGS = {"num_replicas": 2}
SECONDS = 10.0


def _listeners(name: str) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket of processes called ``name``."""
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != name:
            continue
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN:
                found.append((conn.laddr.ip, conn.laddr.port, process.pid))
    return found


def _replica_streams() -> dict[int, int]:
    """Established connections into each ingress replica's HTTP port, by replica pid."""
    counts: dict[int, int] = {}
    for process in psutil.process_iter(["cmdline"]):
        if not any("ServeReplica:s2s:Ingress" in part for part in process.info["cmdline"] or []):
            continue
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        ports = {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
        counts[process.pid] = sum(
            1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port in ports
        )
    return counts


def test_haproxy_owns_the_service_port_and_listens_on_loopback_only(stack: LocalStack) -> None:
    port = stack.config.serve.port
    listeners = _listeners("haproxy")
    assert any(p == port for _, p, _ in listeners), f"nothing of HAProxy's on {port}"
    # Ray's template binds its stats and metrics listeners to every interface; the s2s-haproxy
    # launcher moves them to the service host.
    assert {address for address, _, _ in listeners} == {"127.0.0.1"}, listeners


async def test_calls_stream_through_haproxy_reconnect_and_survive_a_drain(
    base: str, ws_base: str, stack: LocalStack, emulator: EmulatorThread
) -> None:
    callers = await start_calls(base, ws_base, 4, first_tag=90, seconds=SECONDS)
    streams = [asyncio.create_task(c.stream()) for c in callers]
    await asyncio.sleep(2.0)
    spread = _replica_streams()
    assert len(spread) == 2 and all(spread.values()), f"streams per replica: {spread}"

    victim = callers[0]
    assert victim.call is not None
    victim.call.ws.transport.abort()  # the caller's network drops, no close handshake
    async with asyncio.timeout(10):
        while victim.reconnects == 0 or victim.call is None or victim.call.ws.state.name != "OPEN":
            await asyncio.sleep(0.05)

    moved = await redeploy(stack, callers, within=60)
    await asyncio.gather(*streams)
    await end_calls(base, callers)

    codes = sorted({code for c in callers for code, _ in c.closed})
    print(f"\nhaproxy: 4 calls over 2 replicas; redeploy moved them all in {moved:.2f} s")
    assert 1012 in codes, codes
    assert moved < 10.0
    assert_exactly_once(audio_at_provider(emulator), callers)
    for caller in callers:
        assert_seqs_once(caller)
        assert "audio_output" in {e.get("type") for e in caller.events}, caller.tag
