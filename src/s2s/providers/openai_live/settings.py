"""Resolve a :class:`~s2s.config.Config` into validated GPT-Live settings.

``Config.model`` is ``gpt-live-1`` (default) or ``gpt-live-1.1``; a Realtime model id is refused
here (OpenAI answers it with ``invalid_model``). ``Config.voice`` defaults to ``marin``;
``Config.instructions`` are the voice model's (frontend) instructions, immutable for the session.
``Config.tools`` become function tools of a Responses delegation (drift reference §1.8); without
tools the session still uses Responses delegation, with no tools, so a delegated task is answered
by the hosted backend model and spoken by the voice model (client delegation would need the
application to answer every delegation, which a plain s2s session has no channel for).

``Config.extra`` keys:

- ``api_key``: API key (default ``$OPENAI_API_KEY``); required.
- ``base_url``: default ``wss://api.openai.com/v1/live/sessions``; ``http(s)://`` maps to
  ``ws(s)://`` and ``/live/sessions`` is appended to a ``…/v1`` URL.
- ``delegation_model``: the Responses backend model (default ``gpt-5.6-luna``, the default of
  the peers that ship GPT-Live support).
- ``backend_instructions``: the backend model's prompt (separate from the voice instructions).
- ``acknowledgement_delay_ms``: wait before the model's automatic spoken acknowledgement of a
  delegation (server default 0).
- ``turn_gap_ms``: model-clock silence that ends a synthesized assistant or user turn (default 800).
- ``idle_after_ms`` / ``idle_frame_ms``: when the application sends no audio for
  ``idle_after_ms`` (default 300), send ``idle_frame_ms`` (default 100) silence frames so the
  session timeline keeps moving (it advances only while input audio flows).
- ``store``: keep the session at OpenAI for forks and recordings (default false).
- ``safety_identifier``: a stable end-user id for OpenAI's abuse monitoring.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...config import Config
from ...errors import ConfigurationError
from ..openai_realtime.settings import openai_api_key
from ..openai_realtime.wire import GA_MODELS
from .wire import MODELS, SAMPLE_RATE, VOICES

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DELEGATION_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "EXTRA_KEYS",
    "LiveSettings",
    "resolve",
]

PROVIDER = "openai_live"
DEFAULT_BASE_URL = "wss://api.openai.com/v1/live/sessions"
DEFAULT_MODEL = "gpt-live-1"
DEFAULT_VOICE = "marin"
DEFAULT_DELEGATION_MODEL = "gpt-5.6-luna"

EXTRA_KEYS = frozenset(
    {
        "api_key",
        "base_url",
        "delegation_model",
        "backend_instructions",
        "acknowledgement_delay_ms",
        "turn_gap_ms",
        "idle_after_ms",
        "idle_frame_ms",
        "store",
        "safety_identifier",
    }
)


@dataclass(frozen=True, slots=True)
class LiveSettings:
    api_key: str
    url: str
    model: str
    voice: str
    instructions: str | None
    tools: tuple[dict[str, Any], ...]
    delegation_model: str
    backend_instructions: str | None
    acknowledgement_delay_ms: int | None
    turn_gap_ms: float
    idle_after_ms: float
    idle_frame_ms: float
    store: bool
    safety_identifier: str | None

    def session_config(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``session`` object of our ``session.start`` (``history``: the startup input)."""
        responses: dict[str, Any] = {"model": self.delegation_model, "tools": list(self.tools)}
        if self.backend_instructions:
            responses["instructions"] = self.backend_instructions
        delegation: dict[str, Any] = {"type": "responses", "responses": responses}
        if self.acknowledgement_delay_ms is not None:
            delegation["acknowledgement_delay_ms"] = self.acknowledgement_delay_ms
        session: dict[str, Any] = {
            "model": self.model,
            "audio": {
                "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                "output": {"voice": self.voice},
            },
            "delegation": delegation,
        }
        if self.instructions:
            session["instructions"] = self.instructions
        if history:
            session["input"] = history
        if self.store:
            session["store"] = True
        if self.safety_identifier:
            session["safety_identifier"] = self.safety_identifier
        return session


def _ws_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigurationError(
            f"{PROVIDER}: base_url {base_url!r} must be a ws://, wss://, http:// or https:// URL"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/live/sessions"):
        path += "/live/sessions"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _number(extra: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigurationError(
            f"{PROVIDER}: extra[{key!r}]={value!r} must be a number in {lo}-{hi}"
        )
    return float(value)


def _optional_str(extra: dict[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{PROVIDER}: extra[{key!r}] must be a string")
    return value or None


def resolve(config: Config, environ: dict[str, str] | None = None) -> LiveSettings:
    """Validate ``config`` for GPT-Live. Raises ConfigurationError subclasses."""
    env = os.environ if environ is None else environ
    extra = dict(config.extra)
    api_key = openai_api_key(extra, env, PROVIDER)
    model = config.model or DEFAULT_MODEL
    if model in GA_MODELS:
        raise ConfigurationError(
            f"{PROVIDER}: {model!r} is a Realtime model (use the openai_realtime provider); "
            f"GPT-Live models: {', '.join(sorted(MODELS))}"
        )
    if model not in MODELS:
        raise ConfigurationError(
            f"{PROVIDER}: unknown model {model!r}; GPT-Live models: {', '.join(sorted(MODELS))}"
        )
    voice = config.voice or DEFAULT_VOICE
    if voice not in VOICES and not voice.startswith("voice_"):
        raise ConfigurationError(
            f"{PROVIDER}: unknown voice {voice!r}; built-in voices: {', '.join(sorted(VOICES))}"
        )
    delay = extra.get("acknowledgement_delay_ms")
    if delay is not None:
        delay = int(_number(extra, "acknowledgement_delay_ms", 0, 0, 60_000))
    store = extra.get("store", False)
    if not isinstance(store, bool):
        raise ConfigurationError(f"{PROVIDER}: extra['store'] must be true or false")
    tools = tuple(
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": dict(t.parameters),
        }
        for t in config.tools
    )
    return LiveSettings(
        api_key=api_key,
        url=_ws_url(str(extra.get("base_url") or DEFAULT_BASE_URL)),
        model=model,
        voice=voice,
        instructions=config.instructions,
        tools=tools,
        delegation_model=_optional_str(extra, "delegation_model") or DEFAULT_DELEGATION_MODEL,
        backend_instructions=_optional_str(extra, "backend_instructions"),
        acknowledgement_delay_ms=delay,
        turn_gap_ms=_number(extra, "turn_gap_ms", 800, 100, 10_000),
        idle_after_ms=_number(extra, "idle_after_ms", 300, 50, 10_000),
        idle_frame_ms=_number(extra, "idle_frame_ms", 100, 10, 1000),
        store=store,
        safety_identifier=_optional_str(extra, "safety_identifier"),
    )
