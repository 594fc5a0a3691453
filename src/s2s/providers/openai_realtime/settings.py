"""Resolve a :class:`~s2s.config.Config` into validated OpenAI Realtime settings.

``Config.extra`` keys:

- ``api_key``: API key (default ``$OPENAI_API_KEY``); required.
- ``base_url``: default ``wss://api.openai.com/v1/realtime``; ``http(s)://`` maps to ``ws(s)://``.
- ``turn_detection``: ``"server_vad"`` (default), ``"semantic_vad"``, ``"none"`` (manual turns:
  call ``Session.end_turn()``), or a full GA ``turn_detection`` object.
- ``vad_threshold``: server VAD activation threshold, 0-1 (default 0.5).
- ``silence_duration_ms``: server VAD end-of-turn silence (default 500).
- ``prefix_padding_ms``: server VAD audio kept before speech (default 300).
- ``eagerness``: semantic VAD eagerness: low, medium, high, auto (default auto).
- ``interrupt_response``: let caller speech cut the model's answer (default true).
- ``transcription_model``: input transcription model (default ``gpt-4o-mini-transcribe``);
  ``None`` or ``""`` turns caller transcripts off.
- ``transcription_language``: ISO-639-1 hint for input transcription.
- ``noise_reduction``: ``"near_field"``, ``"far_field"`` or ``None`` (default).
- ``output_modalities``: ``"audio"`` (default) or ``"text"``.
- ``speed``: speech speed 0.25-1.5.
- ``max_output_tokens``: int or ``"inf"``.
- ``tool_choice``: ``"auto"`` (default), ``"none"``, ``"required"`` or a tool name.
- ``rotate_after_s``: continue on a fresh connection after this long, between answers
  (default 3300 s; OpenAI ends sessions at 60 minutes).
- ``max_session_s``: the provider's hard session limit (default 3600 s).

``Config.audio_format="pcmu"`` makes the session G.711 mu-law end to end: ``audio/pcmu`` in and
out, which OpenAI takes and emits itself (8 kHz, one byte a sample), so nothing is converted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ...config import Config
from ...errors import ConfigurationError, MissingCredentialsError
from .wire import GA_MODELS, SAMPLE_RATE, VOICES

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_VOICE", "OpenAISettings", "resolve"]

PROVIDER = "openai_realtime"
DEFAULT_BASE_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"

EXTRA_KEYS = frozenset(
    {
        "api_key",
        "base_url",
        "turn_detection",
        "vad_threshold",
        "silence_duration_ms",
        "prefix_padding_ms",
        "eagerness",
        "interrupt_response",
        "transcription_model",
        "transcription_language",
        "noise_reduction",
        "output_modalities",
        "speed",
        "max_output_tokens",
        "tool_choice",
        "rotate_after_s",
        "max_session_s",
    }
)


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    api_key: str
    url: str
    model: str
    voice: str
    instructions: str | None
    tools: tuple[dict[str, Any], ...]
    turn_detection: dict[str, Any] | None
    transcription: dict[str, Any] | None
    noise_reduction: str | None
    output_modalities: tuple[str, ...]
    speed: float | None
    max_output_tokens: int | str | None
    tool_choice: str | dict[str, Any]
    rotate_after_s: float
    max_session_s: float
    audio_format: str = "pcm16"
    """``"pcm16"`` (``audio/pcm`` at 24 kHz) or ``"pcmu"`` (``audio/pcmu``), both directions."""

    @property
    def interrupt_response(self) -> bool:
        td = self.turn_detection
        return bool(td is None or td.get("interrupt_response", True))

    @property
    def wire_format(self) -> dict[str, Any]:
        """The GA ``format`` object of our audio, in and out."""
        if self.audio_format == "pcmu":
            return {"type": "audio/pcmu"}
        return {"type": "audio/pcm", "rate": SAMPLE_RATE}

    def session_config(self) -> dict[str, Any]:
        """The ``session`` object of our ``session.update`` (GA shape)."""
        audio_input: dict[str, Any] = {
            "format": self.wire_format,
            "transcription": self.transcription,
            "turn_detection": self.turn_detection,
        }
        if self.noise_reduction:
            audio_input["noise_reduction"] = {"type": self.noise_reduction}
        audio_output: dict[str, Any] = {
            "format": self.wire_format,
            "voice": self.voice,
        }
        if self.speed is not None:
            audio_output["speed"] = self.speed
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_input, "output": audio_output},
            "tools": [dict(t) for t in self.tools],
            "tool_choice": self.tool_choice,
        }
        if self.instructions is not None:
            session["instructions"] = self.instructions
        if self.max_output_tokens is not None:
            session["max_output_tokens"] = self.max_output_tokens
        return session


def _ws_url(base_url: str, model: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigurationError(
            f"{PROVIDER}: base_url {base_url!r} must be a ws://, wss://, http:// or https:// URL"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime"
    query = f"model={quote(model, safe='')}" + (f"&{parts.query}" if parts.query else "")
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def _number(extra: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigurationError(
            f"{PROVIDER}: extra[{key!r}]={value!r} must be a number in {lo}-{hi}"
        )
    return float(value)


def _turn_detection(extra: dict[str, Any]) -> dict[str, Any] | None:
    mode = extra.get("turn_detection", "server_vad")
    interrupt = extra.get("interrupt_response", True)
    if not isinstance(interrupt, bool):
        raise ConfigurationError(f"{PROVIDER}: extra['interrupt_response'] must be true or false")
    if isinstance(mode, dict):
        if mode.get("type") not in ("server_vad", "semantic_vad"):
            raise ConfigurationError(
                f"{PROVIDER}: turn_detection object needs type server_vad or semantic_vad"
            )
        return dict(mode)
    if mode in (None, "none", "manual"):
        return None
    if mode == "server_vad":
        return {
            "type": "server_vad",
            "threshold": _number(extra, "vad_threshold", 0.5, 0.0, 1.0),
            "prefix_padding_ms": int(_number(extra, "prefix_padding_ms", 300, 0, 10_000)),
            "silence_duration_ms": int(_number(extra, "silence_duration_ms", 500, 0, 10_000)),
            "create_response": True,
            "interrupt_response": interrupt,
        }
    if mode == "semantic_vad":
        eagerness = extra.get("eagerness", "auto")
        if eagerness not in ("low", "medium", "high", "auto"):
            raise ConfigurationError(
                f"{PROVIDER}: eagerness {eagerness!r} must be low, medium, high or auto"
            )
        return {
            "type": "semantic_vad",
            "eagerness": eagerness,
            "create_response": True,
            "interrupt_response": interrupt,
        }
    raise ConfigurationError(
        f"{PROVIDER}: turn_detection {mode!r} must be server_vad, semantic_vad or none"
    )


def openai_api_key(extra: Mapping[str, Any], environ: Mapping[str, str], provider: str) -> str:
    """The OpenAI key from ``extra["api_key"]`` or ``$OPENAI_API_KEY`` (Realtime and GPT-Live
    share the account and its key)."""
    api_key = extra.get("api_key") or environ.get("OPENAI_API_KEY")
    if not api_key:
        raise MissingCredentialsError(
            f"{provider}: no API key; set OPENAI_API_KEY or pass Config(extra={{'api_key': ...}})",
            provider=provider,
        )
    if not isinstance(api_key, str):
        raise ConfigurationError(f"{provider}: api_key must be a string")
    return api_key


def resolve(config: Config, environ: dict[str, str] | None = None) -> OpenAISettings:
    """Validate ``config`` for OpenAI Realtime. Raises ConfigurationError subclasses."""
    env = os.environ if environ is None else environ
    extra = dict(config.extra)
    api_key = openai_api_key(extra, env, PROVIDER)
    model = config.model or DEFAULT_MODEL
    if model.startswith(("gpt-4o-realtime", "gpt-4o-mini-realtime")):
        raise ConfigurationError(
            f"{PROVIDER}: {model!r} is a retired beta-era model; use one of "
            f"{', '.join(sorted(GA_MODELS))}"
        )
    voice = config.voice or DEFAULT_VOICE
    if voice not in VOICES and not voice.startswith("voice_"):
        raise ConfigurationError(
            f"{PROVIDER}: unknown voice {voice!r}; built-in voices: {', '.join(sorted(VOICES))}"
        )
    transcription_model = extra.get("transcription_model", DEFAULT_TRANSCRIPTION_MODEL)
    transcription: dict[str, Any] | None = None
    if transcription_model:
        transcription = {"model": transcription_model}
        if extra.get("transcription_language"):
            transcription["language"] = extra["transcription_language"]
    noise = extra.get("noise_reduction")
    if noise not in (None, "near_field", "far_field"):
        raise ConfigurationError(
            f"{PROVIDER}: noise_reduction must be near_field, far_field or None"
        )
    modalities = extra.get("output_modalities", "audio")
    if isinstance(modalities, str):
        modalities = (modalities,)
    if tuple(modalities) not in (("audio",), ("text",)):
        raise ConfigurationError(f"{PROVIDER}: output_modalities must be 'audio' or 'text'")
    speed = extra.get("speed")
    if speed is not None:
        speed = _number(extra, "speed", 1.0, 0.25, 1.5)
    tool_choice: str | dict[str, Any] = extra.get("tool_choice", "auto")
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
        if tool_choice not in {t.name for t in config.tools}:
            raise ConfigurationError(
                f"{PROVIDER}: tool_choice {tool_choice!r} is not a declared tool"
            )
        tool_choice = {"type": "function", "name": tool_choice}
    max_tokens = extra.get("max_output_tokens")
    if (
        max_tokens is not None
        and max_tokens != "inf"
        and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1)
    ):
        raise ConfigurationError(f"{PROVIDER}: max_output_tokens must be a positive int or 'inf'")
    max_session = _number(extra, "max_session_s", 3600.0, 1.0, 86_400.0)
    rotate_after = _number(
        extra, "rotate_after_s", min(3300.0, max_session * 0.9), 0.5, max_session
    )
    tools = tuple(
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": dict(t.parameters),
        }
        for t in config.tools
    )
    return OpenAISettings(
        api_key=api_key,
        url=_ws_url(str(extra.get("base_url") or DEFAULT_BASE_URL), model),
        model=model,
        voice=voice,
        instructions=config.instructions,
        tools=tools,
        turn_detection=_turn_detection(extra),
        transcription=transcription,
        noise_reduction=noise,
        output_modalities=tuple(modalities),
        speed=speed,
        max_output_tokens=max_tokens,
        tool_choice=tool_choice,
        rotate_after_s=rotate_after,
        max_session_s=max_session,
        audio_format=config.audio_format,
    )
