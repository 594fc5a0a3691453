"""Resolve a :class:`~s2s.config.Config` into validated Nova Sonic settings.

``Config.model``: ``amazon.nova-2-5-sonic`` (the default; only in us-east-1, us-west-2,
eu-north-1 and ap-northeast-1) or ``amazon.nova-2-sonic-v1:0``. ``amazon.nova-sonic-v1:0`` reached
its end of life on 2026-09-14 and is refused here, naming its replacement.

``Config.extra`` keys:

- ``region``: AWS region (default ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, else ``us-east-1``).
- ``base_url``: endpoint override (default ``https://bedrock-runtime.{region}.amazonaws.com``);
  must be ``https://``: the stream needs HTTP/2 over TLS.
- ``profile``: a shared-config profile for the standard AWS credential chain (env, profile,
  SSO, assume-role, ...). Credentials are resolved through ``aioboto3`` for every new stream,
  so refreshed ones are picked up at each rotation.
- ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``: explicit credentials
  instead of the chain (the first two go together).
- ``ca_file``: a PEM file of extra CAs to trust (the local emulator's).
- ``endpointing_sensitivity``: ``HIGH``, ``MEDIUM`` or ``LOW`` (default: the service's; every
  served model, Nova 2 and 2.5, takes it).
- ``max_tokens`` (default 1024), ``temperature`` (0.7), ``top_p`` (0.9).
- ``rotate_after_s``: move the call to a fresh stream after this long, between answers
  (default 360; Nova ends a stream at 8 minutes).
- ``rotate_deadline_s``: move it after this long even mid-answer (default 450).
- ``replay_audio_s``: the most recent caller audio kept for a new stream (default 30).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...config import Config
from ...errors import ConfigurationError
from .wire import DEFAULT_MODEL, MODEL_REGIONS, MODELS, RETIRED_MODELS, VOICES

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REGION",
    "DEFAULT_VOICE",
    "EXTRA_KEYS",
    "NovaSettings",
    "resolve",
]

PROVIDER = "nova"
DEFAULT_REGION = "us-east-1"
DEFAULT_VOICE = "matthew"
DEFAULT_INSTRUCTIONS = "You are a helpful voice assistant. Keep your answers short."
#: Nova's hard limit on one bidirectional stream.
CONNECTION_LIMIT_S = 480.0

EXTRA_KEYS = frozenset(
    {
        "region",
        "base_url",
        "profile",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "ca_file",
        "endpointing_sensitivity",
        "max_tokens",
        "temperature",
        "top_p",
        "rotate_after_s",
        "rotate_deadline_s",
        "replay_audio_s",
    }
)


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"StaticCredentials(access_key_id={self.access_key_id!r}, ...)"


@dataclass(frozen=True, slots=True)
class NovaSettings:
    region: str
    endpoint: str
    model: str
    voice: str
    instructions: str
    tools: tuple[dict[str, Any], ...]
    profile: str | None
    credentials: StaticCredentials | None
    ca_file: str | None
    endpointing: str | None
    max_tokens: int
    temperature: float
    top_p: float
    rotate_after_s: float
    rotate_deadline_s: float
    replay_audio_s: float


def _number(extra: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigurationError(
            f"{PROVIDER}: extra[{key!r}]={value!r} must be a number in {lo:g}-{hi:g}"
        )
    return float(value)


def _optional_str(extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{PROVIDER}: extra[{key!r}] must be a non-empty string")
    return value


def _endpoint(base_url: str | None, region: str) -> str:
    if base_url is None:
        return f"https://bedrock-runtime.{region}.amazonaws.com"
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigurationError(
            f"{PROVIDER}: base_url {base_url!r} must be an https:// URL (Bedrock's bidirectional "
            "stream is HTTP/2 over TLS)"
        )
    return f"https://{parts.netloc}"


def _credentials(extra: Mapping[str, Any]) -> StaticCredentials | None:
    key_id = _optional_str(extra, "aws_access_key_id")
    secret = _optional_str(extra, "aws_secret_access_key")
    token = _optional_str(extra, "aws_session_token")
    if (key_id is None) != (secret is None):
        raise ConfigurationError(
            f"{PROVIDER}: aws_access_key_id and aws_secret_access_key go together; got only "
            + ("aws_access_key_id" if key_id else "aws_secret_access_key")
        )
    if key_id is None or secret is None:
        if token is not None:
            raise ConfigurationError(
                f"{PROVIDER}: aws_session_token needs aws_access_key_id and aws_secret_access_key"
            )
        return None
    return StaticCredentials(key_id, secret, token)


def _model(model: str, region: str) -> str:
    """``model`` if Bedrock serves it in ``region``; else the error naming what to use."""
    retired = RETIRED_MODELS.get(model)
    if retired is not None:
        eol, replacement = retired
        raise ConfigurationError(
            f"{PROVIDER}: model {model!r} reached its end of life on {eol} and Bedrock no longer "
            f"serves it; use {replacement!r}"
        )
    if model not in MODELS:
        raise ConfigurationError(
            f"{PROVIDER}: unknown model {model!r}; Nova Sonic models: {', '.join(sorted(MODELS))}"
        )
    regions = MODEL_REGIONS.get(model)
    if regions is not None and region not in regions:
        raise ConfigurationError(
            f"{PROVIDER}: model {model!r} is not offered in region {region!r}; its regions: "
            f"{', '.join(sorted(regions))}"
        )
    return model


def resolve(config: Config, environ: Mapping[str, str] | None = None) -> NovaSettings:
    """Validate ``config`` for Nova Sonic. Raises ConfigurationError with what was wrong."""
    env = os.environ if environ is None else environ
    extra = config.extra
    region = (
        _optional_str(extra, "region")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    model = _model(config.model or DEFAULT_MODEL, region)
    voice = config.voice or DEFAULT_VOICE
    if voice not in VOICES:
        raise ConfigurationError(
            f"{PROVIDER}: unknown voice {voice!r}; voices: {', '.join(sorted(VOICES))}"
        )
    endpointing = extra.get("endpointing_sensitivity")
    if endpointing is not None and endpointing not in ("HIGH", "MEDIUM", "LOW"):
        raise ConfigurationError(
            f"{PROVIDER}: endpointing_sensitivity {endpointing!r} must be HIGH, MEDIUM or LOW"
        )
    ca_file = _optional_str(extra, "ca_file")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigurationError(f"{PROVIDER}: ca_file {ca_file!r} does not exist")
    max_tokens = extra.get("max_tokens", 1024)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigurationError(f"{PROVIDER}: max_tokens must be a positive int")
    rotate_after = _number(extra, "rotate_after_s", 360.0, 0.5, CONNECTION_LIMIT_S)
    deadline_default = max(rotate_after, min(450.0, rotate_after + 90.0))
    rotate_deadline = _number(
        extra, "rotate_deadline_s", deadline_default, rotate_after, CONNECTION_LIMIT_S
    )
    tools = tuple(
        {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
        for t in config.tools
    )
    return NovaSettings(
        region=region,
        endpoint=_endpoint(_optional_str(extra, "base_url"), region),
        model=model,
        voice=voice,
        instructions=config.instructions or DEFAULT_INSTRUCTIONS,
        tools=tools,
        profile=_optional_str(extra, "profile"),
        credentials=_credentials(extra),
        ca_file=ca_file,
        endpointing=endpointing,
        max_tokens=max_tokens,
        temperature=_number(extra, "temperature", 0.7, 0.0, 1.0),
        top_p=_number(extra, "top_p", 0.9, 0.0, 1.0),
        rotate_after_s=rotate_after,
        rotate_deadline_s=rotate_deadline,
        replay_audio_s=_number(extra, "replay_audio_s", 30.0, 0.0, 120.0),
    )
