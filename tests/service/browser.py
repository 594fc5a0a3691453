"""A real browser for the console tests: Debian's headless ``chromium`` driven by Playwright.

No browser is downloaded: Playwright launches the system's Chromium (``chromium`` on PATH, or
``S2S_CHROMIUM``). Without one the browser tests are skipped, unless ``S2S_REQUIRE_BROWSER`` is
set (CI), where they fail instead. The microphone is Chromium's fake capture device fed from a
WAV file (:func:`caller_wav`), and the permission prompt is answered yes.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["caller_wav", "chromium", "launch", "page_errors", "shown"]


def chromium() -> str:
    """The Chromium executable, or skip (fail under ``S2S_REQUIRE_BROWSER``)."""
    path = (
        os.environ.get("S2S_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if path is None:
        message = "no chromium on PATH (apt-get install chromium)"
        if os.environ.get("S2S_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def caller_wav(path: Path, *, speech_s: float = 1.2, silence_s: float = 1.8) -> Path:
    """A caller who talks and pauses, looped by the fake microphone: ``speech_s`` of a voiced
    tone (a 160 Hz buzz with harmonics, loud enough for any VAD), then ``silence_s`` of
    silence. 48 kHz mono PCM16, as Chromium's fake capture device expects."""
    rate = 48000
    frames = bytearray()
    for n in range(int(speech_s * rate)):
        t = n / rate
        envelope = min(1.0, t / 0.02, (speech_s - t) / 0.02)
        value = sum(math.sin(2 * math.pi * 160 * k * t) / k for k in (1, 2, 3, 5))
        frames += struct.pack("<h", int(9000 * envelope * value))
    frames += bytes(2 * int(silence_s * rate))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


@contextlib.asynccontextmanager
async def launch(microphone: Path | None = None) -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's async ``Browser``) with a fake microphone that plays
    ``microphone`` (a WAV), and the media permission granted; closed on exit."""
    from playwright.async_api import async_playwright

    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        "--no-sandbox",
    ]
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=args)
        try:
            yield browser
        finally:
            await browser.close()


def page_errors(page: Any) -> list[str]:
    """Collects the page's uncaught errors and console errors (a test asserts there are none)."""
    errors: list[str] = []
    page.s2s_errors = errors
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    return errors


async def shown(page: Any, selector: str, timeout_ms: float = 30_000) -> Any:
    """Wait until ``selector`` is visible on ``page``; on a timeout, fail with what the page
    shows and its errors (a bare Playwright timeout says nothing about why)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    locator = page.locator(selector).first
    try:
        await locator.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        text = await page.locator("body").inner_text()
        errors = getattr(page, "s2s_errors", [])
        raise AssertionError(
            f"{selector!r} did not show within {timeout_ms / 1000:.0f} s on {page.url}\n"
            f"page errors: {errors}\npage text:\n{text[:3000]}"
        ) from None
    return locator
