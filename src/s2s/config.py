"""Provider-neutral session configuration and tool types.

All four types are frozen dataclasses: they compare by value, hash, pickle (Ray ships them between
processes) and validate themselves on construction, so a bad value fails where it was written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .audio.formats import AUDIO_FORMATS, PCMU_RATE
from .errors import ConfigurationError, InvalidInputError

__all__ = ["Config", "Fallback", "ToolCall", "ToolDefinition", "ToolResult"]

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A function the model may call.

    Args:
        name: 1-64 letters, digits, ``_`` or ``-`` (the subset every provider accepts).
        description: what the tool does, for the model.
        parameters: a JSON Schema object describing the arguments (``{"type": "object", ...}``).
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOOL_NAME.match(self.name):
            raise ConfigurationError(
                f"tool name {self.name!r} is invalid: use 1-64 letters, digits, '_' or '-'"
            )
        if not isinstance(self.description, str):
            raise ConfigurationError(f"tool {self.name!r}: description must be a string")
        if not isinstance(self.parameters, Mapping):
            raise ConfigurationError(
                f"tool {self.name!r}: parameters must be a JSON Schema object (a dict), "
                f"got {type(self.parameters).__name__}"
            )
        if self.parameters.get("type", "object") != "object":
            raise ConfigurationError(
                f"tool {self.name!r}: parameters must describe an object "
                f"(type 'object'), got type {self.parameters.get('type')!r}"
            )
        try:
            json.dumps(self.parameters)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"tool {self.name!r}: parameters are not JSON-serialisable: {exc}"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolDefinition:
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            parameters=data.get("parameters", {"type": "object", "properties": {}}),
        )


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks the application to run a tool.

    ``arguments`` is the JSON text the model produced; :attr:`args` parses it.
    """

    id: str
    name: str
    arguments: str = "{}"

    @property
    def args(self) -> dict[str, Any]:
        """The arguments as a dict (``{}`` when the model sent none).

        Raises:
            InvalidInputError: the model's arguments are not a JSON object.
        """
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"tool call {self.id} ({self.name}): arguments are not valid JSON: {exc}"
            ) from exc
        if not isinstance(value, dict):
            raise InvalidInputError(
                f"tool call {self.id} ({self.name}): arguments are JSON but not an object"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        return cls(id=data["id"], name=data["name"], arguments=data.get("arguments", "{}"))


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The application's answer to a :class:`ToolCall`.

    ``content`` is text the model reads; JSON text is the usual choice (see :meth:`from_value`).
    """

    call_id: str
    content: str
    is_error: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.call_id, str) or not self.call_id:
            raise InvalidInputError("ToolResult.call_id must be the non-empty id of a ToolCall")
        if not isinstance(self.content, str):
            raise InvalidInputError(
                f"ToolResult.content must be a string, got {type(self.content).__name__}; "
                "use ToolResult.from_value() to send JSON"
            )

    @classmethod
    def from_value(cls, call_id: str, value: Any, *, is_error: bool = False) -> ToolResult:
        """Build a result whose content is ``value`` encoded as JSON."""
        return cls(call_id=call_id, content=json.dumps(value), is_error=is_error)

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "content": self.content, "is_error": self.is_error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolResult:
        return cls(
            call_id=data["call_id"], content=data["content"], is_error=data.get("is_error", False)
        )


@dataclass(frozen=True, slots=True)
class Fallback:
    """A provider a call moves to when its current provider fails for good (see
    ``Config.failover``).

    Args:
        provider: a registered provider name (``"gemini_live"``, ``"nova"``, ...).
        model: that provider's model (``None``: its default).
        voice: that provider's voice (``None``: its default).
        extra: that provider's own settings (keys, ``base_url``, ...); nothing is inherited from
            the primary provider's ``extra``, whose keys mean other things elsewhere.
    """

    provider: str
    model: str | None = None
    voice: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str) or not self.provider.strip():
            raise ConfigurationError("Fallback.provider must be a provider name")
        for name in ("model", "voice"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(
                    f"Fallback.{name} must be a string or None, got {type(value).__name__}"
                )
        if not isinstance(self.extra, Mapping):
            raise ConfigurationError("Fallback.extra must be a dict of provider settings")

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "voice": self.voice,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Fallback:
        """From :meth:`to_dict` output, or just a provider name."""
        if isinstance(data, str):
            return cls(provider=data)
        return cls(
            provider=data["provider"],
            model=data.get("model"),
            voice=data.get("voice"),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class Config:
    """What a session should be: voice, model, instructions, tools, audio, provider extras.

    Args:
        voice: provider voice name; ``None`` uses the provider default.
        model: provider model name; ``None`` uses the provider default.
        instructions: the system prompt.
        tools: the functions the model may call.
        sample_rate: the rate of the application's mono audio, in and out (8000-48000 Hz).
            Audio is resampled to and from the provider's native rate.
        audio_format: the application's audio, in and out: ``"pcm16"`` (16-bit little-endian
            PCM) or ``"pcmu"`` (G.711 mu-law, telephony; needs ``sample_rate=8000``). mu-law goes
            untouched to providers that take it (OpenAI Realtime) and is transcoded for others.
        extra: provider-specific settings (``api_key``, ``base_url``, turn detection, ...).
        failover: providers to continue the call on, in order, when the current one fails in a
            way retrying will not fix (quota, billing, authentication, an unknown model, or its
            reconnect attempts exhausted). The conversation, pending tool calls and caller audio
            carry over; the application sees a PROVIDER_SWITCHED event.
    """

    voice: str | None = None
    model: str | None = None
    instructions: str | None = None
    tools: Sequence[ToolDefinition] = field(default_factory=list)
    sample_rate: int = 24000
    audio_format: Literal["pcm16", "pcmu"] = "pcm16"
    extra: Mapping[str, Any] = field(default_factory=dict)
    failover: Sequence[Fallback] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("voice", "model", "instructions"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(
                    f"Config.{name} must be a string or None, got {type(value).__name__}"
                )
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise ConfigurationError(
                f"Config.sample_rate must be an int in Hz, got {self.sample_rate!r}"
            )
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise ConfigurationError(
                f"Config.sample_rate={self.sample_rate} is outside "
                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
            )
        if self.audio_format not in AUDIO_FORMATS:
            raise ConfigurationError(
                f"Config.audio_format={self.audio_format!r} is not one of "
                f"{', '.join(repr(f) for f in AUDIO_FORMATS)}"
            )
        if self.audio_format == "pcmu" and self.sample_rate != PCMU_RATE:
            raise ConfigurationError(
                f"Config.audio_format='pcmu' (G.711 mu-law) is {PCMU_RATE} Hz audio: it needs "
                f"Config.sample_rate={PCMU_RATE}, got sample_rate={self.sample_rate}"
            )
        tools: object = self.tools
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
            raise ConfigurationError("Config.tools must be a list of ToolDefinition")
        seen: set[str] = set()
        for tool in self.tools:
            if not isinstance(tool, ToolDefinition):
                raise ConfigurationError(
                    f"Config.tools must hold ToolDefinition objects, got {type(tool).__name__}"
                )
            if tool.name in seen:
                raise ConfigurationError(f"Config.tools declares {tool.name!r} twice")
            seen.add(tool.name)
        if not isinstance(self.extra, Mapping):
            raise ConfigurationError("Config.extra must be a dict of provider settings")
        failover: object = self.failover
        if isinstance(failover, (str, bytes)) or not isinstance(failover, Sequence):
            raise ConfigurationError("Config.failover must be a list of Fallback")
        for fallback in self.failover:
            if not isinstance(fallback, Fallback):
                raise ConfigurationError(
                    f"Config.failover must hold Fallback objects, got {type(fallback).__name__}"
                )

    def for_fallback(self, fallback: Fallback) -> Config:
        """This config for ``fallback``'s provider: its model, voice and extra; the same
        instructions, tools and audio; no further failover (the list is the session's)."""
        return dataclasses.replace(
            self,
            model=fallback.model,
            voice=fallback.voice,
            extra=dict(fallback.extra),
            failover=[],
        )

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied; unknown field names are an error that names them.

        ``extra`` is merged key by key rather than replaced, so an override of one provider setting
        keeps the others.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigurationError(
                f"unknown Config field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        if "extra" in changes and changes["extra"] is not None:
            changes["extra"] = {**self.extra, **changes["extra"]}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A plain-data copy (tools as dicts), e.g. for Ray or an HTTP API."""
        return {
            "voice": self.voice,
            "model": self.model,
            "instructions": self.instructions,
            "tools": [t.to_dict() for t in self.tools],
            "sample_rate": self.sample_rate,
            "audio_format": self.audio_format,
            "extra": dict(self.extra),
            "failover": [f.to_dict() for f in self.failover],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"unknown Config field(s) {', '.join(unknown)}")
        values = dict(data)
        values["tools"] = [
            t if isinstance(t, ToolDefinition) else ToolDefinition.from_dict(t)
            for t in values.get("tools") or []
        ]
        values["extra"] = dict(values.get("extra") or {})
        values["failover"] = [
            f if isinstance(f, Fallback) else Fallback.from_dict(f)
            for f in values.get("failover") or []
        ]
        return cls(**values)
