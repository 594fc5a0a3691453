"""The browser softphone (``/console/softphone``) in headless Chromium, through the whole stack
(collected by ``test_console.py``, which runs the browser and trace tests on one stack).

Chromium's fake microphone plays a caller who talks for 1.2 s and pauses for 1.8 s, over and
over (:func:`~tests.service.browser.caller_wav`). The page captures it with an AudioWorklet,
resamples it to 24 kHz PCM16 and streams it; the OpenAI emulator's energy VAD hears the pause
and answers (1.8 s of speech, sent 8x faster than real time), the page plays the answer, and the
caller's next sentence starts while it is still playing: a barge-in. The page then stops the
audio and reports what was heard, and the service truncates the model's answer to the last
playback report it had (``conversation.item.truncate`` at the provider). Then the page's socket
is closed with 1012 (a restarting replica, through Playwright's WebSocket relay): the page
reconnects with ``last_seq``, resends the input the service had not saved, and the call goes on
until the page hangs up.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from ..conftest import SECOND
from .browser import caller_wav, launch, page_errors
from .stack import API_KEY, ROOT, EmulatorThread, http_client

__all__ = [
    "test_a_softphone_call_is_answered_heard_cut_by_a_barge_in_and_hung_up",
    "test_the_microphone_resampler_keeps_speech_and_removes_what_would_alias",
]

SCREENSHOT = ROOT / "docs" / "images" / "softphone.png"


async def until[T](probe: Callable[[], T | None], timeout: float) -> T:
    """The first truthy value of ``probe()``, checked every 50 ms (for state outside the page:
    the emulator's received frames)."""
    async with asyncio.timeout(timeout):
        while not (value := probe()):
            await asyncio.sleep(0.05)
        return value


def truncates(emulator: EmulatorThread) -> list[dict[str, Any]]:
    return [f for f in emulator.frames_in() if f.get("type") == "conversation.item.truncate"]


def seconds_said(text: str) -> float:
    """The seconds of speech the emulator heard, from its transcript of a caller's turn."""
    said = re.search(r"\[(\d+\.\d) seconds of speech\]", text)
    assert said, text
    return float(said[1])


async def reports(page: Any) -> list[dict[str, Any]]:
    """The playback reports the page sent, from its report log."""
    rows = await page.locator("#report-log li").evaluate_all(
        "rows => rows.map(r => ({...r.dataset}))"
    )
    return [
        {"item_id": r["itemId"], "played_ms": int(r["playedMs"]), "why": r["why"]} for r in rows
    ]


@pytest.mark.timeout(120)
async def test_a_softphone_call_is_answered_heard_cut_by_a_barge_in_and_hung_up(
    base: str, emulator: EmulatorThread, tmp_path: Path
) -> None:
    wait = 20_000 * SECOND  # Playwright timeouts are in ms
    async with launch(caller_wav(tmp_path / "caller.wav")) as browser:
        page = await browser.new_page()
        errors = page_errors(page)
        sockets: list[Any] = []  # the page's stream sockets, relayed by Playwright

        async def relay(socket: Any) -> None:
            socket.connect_to_server()
            sockets.append(socket)

        await page.route_web_socket(re.compile(r"/v1/sessions/[^/]+/stream\?"), relay)
        await page.goto(f"{base}/console/softphone#key={API_KEY}")
        assert "key=" not in page.url  # the key left the address bar for sessionStorage
        await page.click("#call")
        await page.wait_for_selector('#call-state[data-state="live"]', timeout=wait)
        session_id = (await page.text_content("#session-id") or "").strip()
        assert await page.get_attribute("#call-link", "href") == f"call#id={session_id}"

        # both sides in the transcript: the caller's words (transcribed), then the model's
        users = page.locator('#transcript li.user[data-final="true"]')
        await users.first.wait_for(timeout=wait)
        model = page.locator('#transcript li.assistant[data-final="true"]').first
        await model.wait_for(timeout=wait)
        assert "I heard" in (await model.text_content() or "")
        # (expect, not wait_for_function: the page's CSP forbids eval, as it should)
        await expect(page.locator("#played-ms")).not_to_have_attribute("data-ms", "0", timeout=wait)

        # the caller speaks again over the answer: the service cuts it where the page said
        cut = (await until(lambda: truncates(emulator), 15 * SECOND))[0]
        flushed = page.locator(f'#report-log li[data-why="flush"][data-item-id="{cut["item_id"]}"]')
        await flushed.wait_for(state="attached", timeout=wait)  # the log is in a closed <details>
        sent = await reports(page)
        # the caller's words as the emulator measured them: the first sentence may have begun
        # before the call was live (only its end was sent), the second is whole: 1.2 s, so the
        # capture was resampled at the right rate
        await users.nth(1).wait_for(timeout=wait)
        said = [seconds_said(text) for text in await users.all_text_contents()]
        assert 0 < said[0] <= 1.4 and 1.0 <= said[1] <= 1.4, said
        # the service restarts under the call (1012): the page resumes where it was
        heard_before = await users.count()
        await sockets[0].close(code=1012, reason="restarting")
        await page.locator("#transcript li.notice", has_text="1012").wait_for(timeout=wait)
        await page.wait_for_selector('#call-state[data-state="live"]', timeout=wait)
        await users.nth(heard_before).wait_for(timeout=wait)  # the conversation goes on

        # a tool call (asked for in text, as a supervisor's whisper would) and its result
        async with http_client(base) as http:
            text = 'call lookup_order {"order_id": "A-7"}'
            reply = await http.post(f"/v1/sessions/{session_id}/text", json={"text": text})
            assert reply.status_code == 202, reply.text
        tools = page.locator("#transcript li.tool")
        await tools.nth(1).wait_for(timeout=wait)
        tool_lines = await tools.all_text_contents()
        if os.environ.get("S2S_SCREENSHOTS"):
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

        await page.click("#hangup")
        await page.wait_for_selector('#call-state[data-state="ended"]', timeout=wait)
        detail = await page.text_content("#state-detail")
        texts = await page.locator("#transcript li").all_text_contents()
        frames_sent = int(await page.get_attribute("#input-position", "data-sent") or 0)
        reports_sent = int(await page.get_attribute("#reports", "data-count") or 0)
        assert errors == []

    of_item = [r for r in sent if r["item_id"] == cut["item_id"]]
    progress = {r["played_ms"] for r in of_item if r["why"] == "progress"}
    flush = next((r for r in of_item if r["why"] == "flush"), None)
    assert flush is not None, (cut, sent)
    # truncated at a report the page sent while playing (not a wall-clock guess), which is no
    # more than what it had played when it stopped: the model forgets only what was not heard
    assert 0 < cut["audio_end_ms"] <= flush["played_ms"], (cut, sent)
    assert cut["audio_end_ms"] in progress, (cut, sent)
    assert flush["played_ms"] < 1800  # the answer is 1.8 s of speech: it was cut short
    assert detail == "closed_by_client"
    assert tool_lines[0] == '→ lookup_order({"order_id": "A-7"})', tool_lines
    assert tool_lines[1].startswith("← lookup_order: "), tool_lines
    assert len(sockets) == 2, [s.url for s in sockets]
    assert "last_seq=0" in sockets[0].url
    resumed_from = int(re.findall(r"last_seq=(\d+)", sockets[1].url)[0])
    assert resumed_from > 0  # the events seen before the restart are not sent again
    assert texts.count("call started (openai_realtime)") == 1, texts
    assert any(t.startswith("resumed: resent") for t in texts), texts
    async with http_client(base) as http:
        record = (await http.get(f"/v1/sessions/{session_id}")).json()
    assert record["status"] == "closed" and record["closed_reason"] == "closed_by_client"
    assert record["metadata"] == {"channel": "softphone"}
    # the microphone reached the provider, and what the page resent after the restart was not
    # applied twice: no more audio arrived than the page's 20 ms frames (every input position
    # but the playback reports and the close)
    provider_ms = sum(s.audio_received_ms for s in list(emulator.emulator.sessions))
    assert 2000 < provider_ms <= (frames_sent - reports_sent - 1) * 20 + 1, provider_ms


RESAMPLER_CHECK = """async () => {
  const { Resampler, floatToPcm16, pcm16ToFloat, levelDbfs } = await import("./js/audio.js");
  const tone = (hz, n) =>
    Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / 48000));
  const resample = (input, block) => {
    const resampler = new Resampler(48000, 24000);
    const parts = [];
    for (let i = 0; i < input.length; i += block) {
      parts.push(...resampler.process(input.subarray(i, i + block)));
    }
    return Float32Array.from(parts);
  };
  const level = (hz) => {
    const input = tone(hz, 48000);
    return levelDbfs(resample(input, 128).subarray(100, 23800)) - levelDbfs(input);
  };
  const speech = tone(440, 4800);
  const whole = resample(speech, speech.length);
  const blocks = resample(speech, 480);
  const bytes = new Uint8Array(floatToPcm16(Float32Array.from([0.5, -1])));
  return {
    gain_300: level(300),
    gain_3000: level(3000),
    gain_14000: level(14000),
    gain_20000: level(20000),
    lengths: [whole.length, blocks.length],
    max_block_difference: Math.max(...whole.map((v, i) => Math.abs(v - blocks[i]))),
    pcm16: Array.from(bytes),
    back: Array.from(pcm16ToFloat(bytes)),
  };
}"""


async def test_the_microphone_resampler_keeps_speech_and_removes_what_would_alias(
    base: str,
) -> None:
    """48 kHz capture to the session's 24 kHz: speech frequencies pass at unity gain, and what
    lies above the new Nyquist frequency (which would fold back as noise) is filtered out;
    blocks of any size give the same output. PCM16 is little-endian."""
    async with launch() as browser:
        page = await browser.new_page()
        errors = page_errors(page)
        await page.goto(f"{base}/console/softphone")
        result = await page.evaluate(RESAMPLER_CHECK)
        assert errors == []
    assert abs(result["gain_300"]) < 0.1 and abs(result["gain_3000"]) < 0.1, result
    assert result["gain_14000"] < -40 and result["gain_20000"] < -60, result
    assert result["lengths"][0] == result["lengths"][1] and result["max_block_difference"] < 1e-6
    assert result["pcm16"] == [0x00, 0x40, 0x00, 0x80]  # 16384, -32768 little-endian
    assert result["back"] == [0.5, -1.0]
