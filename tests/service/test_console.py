"""The supervisor console in a real browser (Debian's headless chromium, driven by Playwright)
against the whole service on a real Ray: the live-calls list (tenant-scoped, kept current by the
call feed), one call's live transcript, tools and turns, and a supervisor stepping in.

With ``S2S_SCREENSHOTS`` set, the tests save the pages' screenshots into ``docs/images/``.

The softphone's tests (:mod:`.softphone_checks`) and the trace test (:mod:`.trace_checks`) run
here too, on this module's stack (with tracing on, exported to a receiver on loopback): a stack
takes ~25 s to start and stop, and these three need nothing of each other but the service.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..helpers import utterance
from .browser import launch, page_errors, shown
from .softphone_checks import *  # noqa: F403
from .stack import (
    ACME_KEY,
    ADMIN_KEY,
    API_KEY,
    ROOT,
    Call,
    http_client,
    open_call,
)
from .trace_checks import *  # noqa: F403

pytestmark = pytest.mark.slow

#: The stack's ``observability`` section comes from trace_checks' ``observability`` fixture.
OBSERVABILITY_FIXTURE = "observability"
SCREENSHOTS = ROOT / "docs" / "images"
#: Browser waits (ms): generous, the machine is small and shared.
WAIT_MS = 30_000


def _screenshot_path(name: str) -> Path | None:
    if not os.environ.get("S2S_SCREENSHOTS"):
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name


async def _create(http: httpx.AsyncClient, **body: Any) -> str:
    reply = await http.post("/v1/sessions", json=body)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["session_id"])


async def _speak(call: Call, seconds: float = 1.0) -> None:
    pcm = utterance(seconds, 24000, pause=0.9)
    step = 24000 * 2 // 50  # 20 ms frames
    for start in range(0, len(pcm), step):
        await call.ws.send(pcm[start : start + step])


async def test_console_files_are_served_with_a_strict_policy(base):
    async with httpx.AsyncClient(base_url=base, follow_redirects=False) as http:
        root = await http.get("/console")
        index = await http.get("/console/")
        script = await http.get("/console/js/api.js")
        cached = await http.get(
            "/console/js/api.js", headers={"If-None-Match": script.headers["etag"]}
        )
        call_page = await http.get("/console/call")
        missing = await http.get("/console/nope.js")
        escape = await http.get("/console/..%2Fingress.py")
        feed = await http.get("/v1/calls/feed")
    assert root.status_code == 308 and root.headers["location"] == "/console/"
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    policy = index.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and index.headers["referrer-policy"] == "no-referrer"
    assert script.headers["content-type"].startswith("text/javascript")
    assert cached.status_code == 304
    assert call_page.status_code == 200 and b"call.js" in call_page.content
    assert missing.status_code == 404 and escape.status_code == 404
    assert feed.status_code == 401  # the pages are public; the data is not


async def test_the_call_list_is_live_and_shows_only_the_keys_tenant(base, ws_base):
    async with http_client(base) as http, http_client(base, ACME_KEY) as acme:
        ours = await _create(http, metadata={"caller": "+15550100", "queue": "billing"})
        theirs = await _create(acme, metadata={"caller": "+15550199"})
        caller = await open_call(ws_base, ours)
        try:
            async with launch() as browser:
                page = await browser.new_page()
                errors = page_errors(page)
                await page.goto(f"{base}/console/#key={API_KEY}")
                row = await shown(page, f'tr[data-session="{ours}"]')
                assert "+15550100" in await row.inner_text()
                assert await page.locator(f'tr[data-session="{theirs}"]').count() == 0
                assert "#key" not in page.url  # the key left the address bar
                # A call that starts while the page is open appears without a reload.
                later = await _create(http, metadata={"caller": "+15550111"})
                await shown(page, f'tr[data-session="{later}"]')
                await caller.ws.send(json.dumps({"type": "text", "text": "hello there"}))
                await page.wait_for_function(
                    """id => Number(document.querySelector(`tr[data-session="${id}"]`)
                              .children[5].textContent) >= 1""",
                    arg=ours,
                    timeout=WAIT_MS,
                )
                if path := _screenshot_path("console-calls.png"):
                    await page.screenshot(path=str(path), full_page=True)
                await http.delete(f"/v1/sessions/{later}")
                await page.wait_for_selector(
                    f'tr[data-session="{later}"][data-state="ended"]', timeout=WAIT_MS
                )
                # An admin key sees every tenant's calls.
                admin = await browser.new_page()
                await admin.goto(f"{base}/console/#key={ADMIN_KEY}")
                await shown(admin, f'tr[data-session="{theirs}"]')
                await shown(admin, f'tr[data-session="{ours}"]')
                assert errors == []
        finally:
            await caller.ws.close()
            await http.delete(f"/v1/sessions/{ours}")
            await acme.delete(f"/v1/sessions/{theirs}")


async def test_a_supervisor_follows_a_call_steps_in_and_ends_it(base, ws_base, stack):
    worker_pids = {str(pid) for pid in stack.worker_pids().values()}
    async with http_client(base) as http:
        session_id = await _create(http, tools=["slow_echo"], metadata={"caller": "+15550123"})
        caller = await open_call(ws_base, session_id)
        try:
            async with launch() as browser:
                page = await browser.new_page()
                errors = page_errors(page)
                await page.goto(f"{base}/console/call#id={session_id}&key={API_KEY}")
                await shown(page, "#call-view")
                # The caller speaks: the supervisor reads both sides as they are spoken.
                await _speak(caller)
                user = await shown(page, '#transcript li.user[data-final="true"]')
                await shown(page, '#transcript li.assistant[data-final="true"]')
                assert "seconds of speech" in await user.inner_text()
                # The supervisor listens in: the model's answer plays in the browser.
                await page.click("#listen")
                # Guidance to the model makes it run a tool in the worker pool.
                await page.fill(
                    "#whisper-text",
                    'call slow_echo {"text": "from the supervisor", "seconds": 0.1}',
                )
                await page.click("#whisper button")
                done = await shown(page, '#tools tbody tr[data-outcome="ok"]')
                cells = await done.locator("td").all_inner_texts()
                assert cells[0] == "slow_echo" and cells[2] != "–"
                lines = page.locator("#transcript li.tool")
                assert await lines.count() == 1
                assert "from the supervisor" in await lines.locator(".result").inner_text()
                turn = await shown(page, "#turns tbody tr")
                latency = await turn.locator("td").nth(2).inner_text()
                assert latency.endswith(("ms", " s"))
                await page.wait_for_function(
                    "() => document.querySelectorAll("
                    "'#transcript li.assistant[data-final]').length >= 2",
                    timeout=WAIT_MS,
                )
                await shown(page, "#listen[data-heard-ms]")
                heard = await page.get_attribute("#listen", "data-heard-ms")
                assert heard is not None and int(heard) > 0
                if path := _screenshot_path("console-call.png"):
                    await page.screenshot(path=str(path), full_page=True)
                # The supervisor ends the call: the caller's socket hears it end.
                await page.click("#end-call")
                await page.wait_for_selector('body[data-call-state="ended"]', timeout=WAIT_MS)
                closed = await caller.until(lambda e: e["type"] == "session_closed", 30)
                assert errors == []
        finally:
            await caller.ws.close()
        record = (await http.get(f"/v1/sessions/{session_id}")).json()
    assert closed["reason"] == "closed_by_client"
    assert record["status"] == "closed"
    results = [e for e in caller.events if e["type"] == "tool_result"]
    assert len(results) == 1 and results[0]["source"] == "worker"
    assert str(json.loads(results[0]["content"])["pid"]) in worker_pids


async def test_the_call_feed_answers_a_snapshot_then_changes(base):
    """The feed itself (what the list page reads): a snapshot of the tenant's live calls, then
    a summary per change, and nothing of another tenant's."""
    async with http_client(base) as http, http_client(base, ACME_KEY) as acme:
        ours = await _create(http, metadata={"caller": "feed"})
        seen: list[tuple[str, dict[str, Any]]] = []
        snapshot_in = asyncio.Event()

        async def read() -> None:
            async with http.stream("GET", "/v1/calls/feed") as reply:
                assert reply.status_code == 200
                kind = ""
                async for line in reply.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        seen.append((kind, json.loads(line[6:])))
                        snapshot_in.set()
                        if kind == "call" and seen[-1][1].get("ended"):
                            return

        reader = asyncio.create_task(read())
        try:
            async with asyncio.timeout(30):
                await snapshot_in.wait()
                theirs = await _create(acme)
                await acme.delete(f"/v1/sessions/{theirs}")
                await http.delete(f"/v1/sessions/{ours}")
                await reader
        finally:
            reader.cancel()
    kind, snapshot = seen[0]
    assert kind == "snapshot"
    assert ours in [c["session_id"] for c in snapshot["calls"]]
    tenants = {c.get("tenant") for _, d in seen for c in d.get("calls", [d])}
    assert tenants <= {"default"}
    assert seen[-1][1]["session_id"] == ours and seen[-1][1]["ended"] is True
