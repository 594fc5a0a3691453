"""The Redis ACL users per role (s2s.service.redis_acl), loaded into a real redis-server.

A private redis-server runs with the ACL file :func:`render_acl` writes (and, for the tests
alone, an ``admin`` user to ask ``ACL DRYRUN`` about commands too harmful to run). Each role
does what its processes do, through the same code (the tool worker runs a real call), and is
refused what it must not do: above all, a tool worker cannot read a session's media token,
state, log or caller metadata, nor listen to its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from s2s.service import keys
from s2s.service.config import ToolPoolSettings
from s2s.service.redis_acl import (
    DEFAULT_USER,
    MIN_REDIS_VERSION,
    ROLES,
    password_hash,
    render_acl,
    role,
    rules_file,
)
from s2s.service.redis_server import find_redis_server
from s2s.tools import tool
from s2s.tools.queue import ToolRequest, read_results, submit
from s2s.tools.registry import ToolRegistry
from s2s.tools.worker import GROUP, ToolWorker

from ..conftest import SECOND

SESSION = "abc"
POOL = "default"
PASSWORDS = {r.name: secrets.token_hex(16) for r in ROLES}
ADMIN = secrets.token_hex(16)


@tool
def shout(text: str) -> str:
    """Answer in capitals (the tool this module's worker serves).

    Args:
        text: What to shout.
    """
    return text.upper()


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"v=(\d+)\.(\d+)", out.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn,
    ):
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server on 127.0.0.1 with the rendered ACL file; yields its port."""
    binary = find_redis_server()
    if _version(binary) < MIN_REDIS_VERSION:
        reason = (
            f"{binary} is older than Redis {'.'.join(map(str, MIN_REDIS_VERSION))}, which the "
            "ACL rules need (selectors); install redis-server >= 7 (CI does)"
        )
        if os.environ.get("S2S_REQUIRE_REDIS7"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("redis-acl")
    acl = folder / "users.acl"
    acl.write_text(render_acl(PASSWORDS) + f"user admin on >{ADMIN} ~* &* +@all\n")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)),
            *("--save", "", "--appendonly", "no", "--aclfile", str(acl)),
            *("--loglevel", "warning"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10 * SECOND
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                assert process.stderr is not None
                pytest.fail(f"redis-server did not start: {process.stderr.read().decode()}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def client(port: int, user: str | None, password: str | None = None) -> Redis:
    if user is not None and password is None:
        password = ADMIN if user == "admin" else PASSWORDS[user]
    # No retries: a refused login is the answer, not a hiccup.
    return Redis(
        host="127.0.0.1",
        port=port,
        username=user,
        password=password,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.fixture
async def admin(server: int) -> AsyncIterator[Redis]:
    redis = client(server, "admin")
    await redis.flushall()
    yield redis
    await redis.aclose()


@pytest.fixture
async def service(server: int, admin: Redis) -> AsyncIterator[Redis]:
    redis = client(server, "service")
    yield redis
    await redis.aclose()


@pytest.fixture
async def tools(server: int, admin: Redis) -> AsyncIterator[Redis]:
    redis = client(server, "tools")
    yield redis
    await redis.aclose()


async def dryrun(admin: Redis, user: str, *command: str) -> str:
    """What ``ACL DRYRUN`` says of ``command`` run by ``user`` (OK or why not): nothing runs."""
    reply = await admin.execute_command("ACL", "DRYRUN", user, *command)
    return reply.decode() if isinstance(reply, bytes) else str(reply)


async def session_data(service: Redis) -> None:
    """What a live session keeps in Redis (written as the service does)."""
    await service.set(keys.session_media(SESSION), b"token-and-address", ex=30)
    await service.hset(keys.session_meta(SESSION), mapping={"provider": "openai", "tenant": "t"})
    await service.set(keys.session_state(SESSION), b"state")
    await service.xadd(keys.event_log(SESSION), {"e": b"event"}, id="1-0")


# -- rendering -----------------------------------------------------------------------------------


def test_render_acl_writes_hashes_and_needs_every_roles_password() -> None:
    text = render_acl(PASSWORDS)
    lines = text.splitlines()
    assert lines[0] == "user default off resetpass resetkeys resetchannels -@all"
    assert [line.split()[1] for line in lines] == ["default", *(r.name for r in ROLES)]
    for line, name in zip(lines[1:], PASSWORDS, strict=True):
        assert line.split()[2] == password_hash(PASSWORDS[name])
        assert PASSWORDS[name] not in text
    with pytest.raises(ValueError, match="'tools' needs a password"):
        render_acl({**PASSWORDS, "tools": ""})
    with pytest.raises(ValueError, match="needs a password"):
        render_acl({"service": "x"})
    with pytest.raises(ValueError, match="no Redis ACL role admin"):
        render_acl({**PASSWORDS, "admin": "x"})
    with pytest.raises(KeyError):
        role("admin")
    assert DEFAULT_USER.rules[0] == "off"


# -- the default user ----------------------------------------------------------------------------


async def test_the_default_user_cannot_log_in(server: int) -> None:
    anonymous = client(server, None)
    with pytest.raises(AuthenticationError):
        await anonymous.ping()
    await anonymous.aclose()
    for password in ("", "anything", PASSWORDS["service"]):
        default = client(server, "default", password)
        with pytest.raises(AuthenticationError):
            await default.ping()
        await default.aclose()
    wrong = client(server, "tools", PASSWORDS["service"])
    with pytest.raises(AuthenticationError):
        await wrong.ping()
    await wrong.aclose()


# -- tools ---------------------------------------------------------------------------------------


async def test_a_tool_worker_runs_a_call_as_the_tools_user(service: Redis, tools: Redis) -> None:
    settings = ToolPoolSettings(modules=[__name__], claim_idle_s=0.5)
    worker = ToolWorker(tools, POOL, settings, ToolRegistry.from_modules(settings.modules))
    stop = asyncio.Event()
    running = asyncio.get_running_loop().create_task(worker.run(stop))
    try:
        request = ToolRequest(
            SESSION,
            "call-1",
            "shout",
            json.dumps({"text": "a1234"}),
            POOL,
            time.time() + 10 * SECOND,
        )
        await submit(service, request)  # the session actor's side
        outcomes, last = [], "0-0"
        async with asyncio.timeout(10 * SECOND):
            while not outcomes:
                last, outcomes = await read_results(service, SESSION, last, 200)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10 * SECOND)
    (outcome,) = outcomes
    assert outcome.call_id == "call-1" and not outcome.is_error
    assert outcome.content == "A1234"
    pending = await service.xpending(keys.tool_calls(POOL), GROUP)
    assert pending["pending"] == 0  # acknowledged after the result was posted
    assert await service.ttl(keys.tool_results(SESSION)) > 0
    metrics = await service.hgetall(keys.METRICS)  # flushed by the worker on exit
    assert any(b"s2s_tool_calls" in field for field in metrics)


async def test_tools_can_reclaim_heartbeat_and_dead_letter(service: Redis, tools: Redis) -> None:
    stream = keys.tool_calls(POOL)
    await tools.xgroup_create(stream, GROUP, id="0", mkstream=True)
    entry = await service.xadd(stream, {"r": b"x"})
    await tools.xreadgroup(GROUP, "w1", {stream: ">"}, count=1)
    assert await tools.xclaim(stream, GROUP, "w1", 0, [entry], justid=True) == [entry]
    (info,) = await tools.xpending_range(stream, GROUP, min=entry, max=entry, count=1)
    assert info["consumer"] == b"w1"
    claimed = await tools.xautoclaim(stream, GROUP, "w2", 0, start_id="0-0", count=1)
    assert claimed[1][0][0] == entry
    await tools.xadd(keys.tool_dead_letters(POOL), {"r": b"x", "worker": b"w2"})
    assert await tools.xack(stream, GROUP, entry) == 1


@pytest.mark.parametrize(
    "command",
    [
        ("GET", keys.session_media(SESSION)),
        ("HGETALL", keys.session_meta(SESSION)),
        ("GET", keys.session_state(SESSION)),
        ("XRANGE", keys.event_log(SESSION), "-", "+"),
        ("XREAD", "STREAMS", keys.event_log(SESSION), "0"),
        ("XADD", keys.event_log(SESSION), "*", "e", "forged"),
        ("PUBLISH", keys.events_channel(SESSION), "forged"),
        ("XRANGE", keys.tool_results(SESSION), "-", "+"),  # results are write-only
        ("XREAD", "STREAMS", keys.tool_results(SESSION), "0"),
        ("XGROUP", "CREATE", keys.tool_results(SESSION), "spy", "0"),
        ("HGETALL", keys.METRICS),
        ("ZRANGE", keys.LIVE_SESSIONS, "0", "-1"),
        ("DEL", keys.tool_calls(POOL)),
        ("EXPIRE", keys.tool_calls(POOL), "1"),
        ("SCAN", "0"),
        ("KEYS", "*"),
        ("EVAL", "return redis.call('GET', KEYS[1])", "1", keys.session_media(SESSION)),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
async def test_tools_cannot_touch_session_data(
    service: Redis, tools: Redis, command: tuple[str, ...]
) -> None:
    await session_data(service)
    with pytest.raises(NoPermissionError):
        await tools.execute_command(*command)
    assert await service.get(keys.session_media(SESSION)) == b"token-and-address"


async def test_tools_cannot_listen_to_session_events(tools: Redis) -> None:
    for kind in ("subscribe", "psubscribe"):
        pubsub = tools.pubsub()
        await getattr(pubsub, kind)(keys.events_channel(SESSION))  # the reply comes next
        with pytest.raises(NoPermissionError):
            await pubsub.get_message(timeout=1.0)
        await pubsub.aclose()


# -- service -------------------------------------------------------------------------------------


async def test_the_service_does_what_the_app_does(service: Redis) -> None:
    await session_data(service)
    assert await service.get(keys.session_media(SESSION)) == b"token-and-address"
    assert (await service.hgetall(keys.session_meta(SESSION)))[b"provider"] == b"openai"
    assert len(await service.xrange(keys.event_log(SESSION))) == 1
    await service.zadd(keys.LIVE_SESSIONS, {SESSION: time.time() + 30})
    assert await service.zrangebyscore(keys.LIVE_SESSIONS, time.time(), "+inf") == [b"abc"]
    async with service.pipeline(transaction=True) as pipe:  # MULTI/EXEC
        pipe.hincrbyfloat(keys.METRICS, "c|x|", 1.0).expire(keys.session_state(SESSION), 60)
        assert await pipe.execute() == [1.0, True]
    # Quota counters run as Lua scripts (EVALSHA, SCRIPT LOAD when the script is not cached).
    script = service.register_script(
        "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) return redis.call('ZCARD', KEYS[1])"
    )
    assert await script(keys=[keys.tenant_live("t")], args=[1, SESSION]) == 1
    read = "return redis.call('GET', KEYS[1])"
    assert await service.eval(read, 1, keys.session_state(SESSION)) == b"state"
    # Live events: subscribe, publish, receive.
    pubsub = service.pubsub()
    await pubsub.subscribe(keys.events_channel(SESSION))
    assert await service.publish(keys.events_channel(SESSION), b"hello") == 1
    async with asyncio.timeout(5 * SECOND):
        while (message := await pubsub.get_message(ignore_subscribe_messages=True)) is None:
            pass
    assert message["data"] == b"hello"
    await pubsub.aclose()
    # Blocking reads of the tool results.
    await service.xadd(keys.tool_results(SESSION), {"o": b"x"})
    assert await service.xread({keys.tool_results(SESSION): "0"}, block=100)


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "maxmemory"),
        ("KEYS", "*"),
        ("ACL", "LIST"),
        ("INFO",),
        ("CLIENT", "LIST"),
        ("MONITOR",),
        ("FUNCTION", "FLUSH"),
        ("SCRIPT", "FLUSH"),
        ("GET", "not-ours"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
async def test_the_service_is_refused_admin_commands(
    service: Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        await service.execute_command(*command)


@pytest.mark.parametrize(
    "command",
    [("SHUTDOWN",), ("DEBUG", "SLEEP", "0"), ("SAVE",), ("REPLICAOF", "NO", "ONE")],
)
async def test_the_service_could_not_stop_or_reconfigure_redis(
    admin: Redis, command: tuple[str, ...]
) -> None:
    # Asked without running them: if allowed, they would stop or change the server.
    assert "no permissions" in await dryrun(admin, "service", *command)


async def test_a_script_runs_with_its_callers_rights(service: Redis) -> None:
    with pytest.raises(ResponseError, match="can't run this command"):
        await service.eval("return redis.call('FLUSHALL')", 0)


# -- keda and probe ------------------------------------------------------------------------------


async def test_keda_reads_the_backlog_and_nothing_else(server: int, service: Redis) -> None:
    stream = keys.tool_calls(POOL)
    await service.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await service.xadd(stream, {"r": b"x"})
    await session_data(service)
    keda = client(server, "keda")
    try:
        (group,) = await keda.xinfo_groups(stream)
        assert group["name"] == GROUP.encode() and group["lag"] == 1
        assert await keda.xlen(stream) == 1
        assert (await keda.xpending(stream, GROUP))["pending"] == 0
        assert "redis_version" in await keda.info()
        for command in (
            ("XRANGE", stream, "-", "+"),
            ("XREADGROUP", "GROUP", GROUP, "keda", "STREAMS", stream, ">"),
            ("XADD", stream, "*", "r", "x"),
            ("GET", keys.session_media(SESSION)),
            ("XLEN", keys.event_log(SESSION)),
        ):
            with pytest.raises(NoPermissionError):
                await keda.execute_command(*command)
    finally:
        await keda.aclose()


async def test_the_probe_user_can_only_ping(server: int, service: Redis) -> None:
    await session_data(service)
    probe = client(server, "probe")
    try:
        assert await probe.ping() is True
        for command in (("GET", keys.session_media(SESSION)), ("INFO",), ("DBSIZE",)):
            with pytest.raises(NoPermissionError):
                await probe.execute_command(*command)
    finally:
        await probe.aclose()


def test_the_rules_file_is_the_acl_without_passwords() -> None:
    rendered = render_acl(PASSWORDS).splitlines()
    without = [
        " ".join(w for w in line.split() if w != password_hash(PASSWORDS.get(line.split()[1], "")))
        for line in rendered
    ]
    assert rules_file().splitlines() == without
