"""Shared fixtures: a clean environment, timeouts in one scalable unit, and the emulators."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

import s2s
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.nova import DEFAULT_CREDENTIALS, NovaEmulator
from s2s.emulators.openai import OpenAIEmulator
from s2s.emulators.openai_live import LiveEmulator

#: Seconds; scale every timeout with S2S_TESTS_TIMEOUT_FACTOR on a slow machine.
SECOND = float(os.environ.get("S2S_TESTS_TIMEOUT_FACTOR", "1"))

OPENAI_KEY = "sk-test-0123456789"
GEMINI_KEY = "gemini-test-key-0123"

_PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "REDIS_URL",
)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider or pick up a developer's keys."""
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    # The AWS credential chain must find nothing: no files, no instance metadata service.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
async def openai_emulator() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(api_key=OPENAI_KEY, record=True, speed=8.0) as emulator:
        yield emulator


def openai_config(emulator: OpenAIEmulator, **kwargs: object) -> s2s.Config:
    extra = {"api_key": OPENAI_KEY, "base_url": emulator.url}
    extra.update(kwargs.pop("extra", {}) or {})  # type: ignore[call-overload]
    return s2s.Config(extra=extra, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def live_emulator() -> AsyncIterator[LiveEmulator]:
    async with LiveEmulator(api_key=OPENAI_KEY, record=True) as emulator:
        yield emulator


def live_config(emulator: LiveEmulator, **kwargs: object) -> s2s.Config:
    extra = {"api_key": OPENAI_KEY, "base_url": emulator.url}
    extra.update(kwargs.pop("extra", {}) or {})  # type: ignore[call-overload]
    return s2s.Config(extra=extra, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def gemini_emulator() -> AsyncIterator[GeminiEmulator]:
    async with GeminiEmulator(
        api_key=GEMINI_KEY, record=True, speed=8.0, resumption_interval_s=0.2
    ) as emulator:
        yield emulator


def gemini_config(emulator: GeminiEmulator, **kwargs: object) -> s2s.Config:
    extra = {"api_key": GEMINI_KEY, "base_url": emulator.url, "ca_file": str(emulator.ca_file)}
    extra.update(kwargs.pop("extra", {}) or {})  # type: ignore[call-overload]
    return s2s.Config(extra=extra, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def nova_emulator() -> AsyncIterator[NovaEmulator]:
    async with NovaEmulator(record=True, speed=8.0) as emulator:
        yield emulator


def nova_config(emulator: NovaEmulator, **kwargs: object) -> s2s.Config:
    extra = {
        "base_url": emulator.url,
        "ca_file": str(emulator.ca_file),
        "aws_access_key_id": DEFAULT_CREDENTIALS.access_key_id,
        "aws_secret_access_key": DEFAULT_CREDENTIALS.secret_access_key,
    }
    extra.update(kwargs.pop("extra", {}) or {})  # type: ignore[call-overload]
    return s2s.Config(extra=extra, **kwargs)  # type: ignore[arg-type]
