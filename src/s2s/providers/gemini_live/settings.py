"""Resolve a :class:`~s2s.config.Config` into validated Gemini Live settings.

``Config.model`` defaults to ``gemini-3.8-live``; ``Config.voice`` is a prebuilt voice (omitted:
the model's default voice); ``Config.instructions`` become the system instruction; tools are
declared as ``functionDeclarations`` with their JSON Schema in ``parametersJsonSchema`` and an
explicit ``behavior``. What each model accepts (thinking, tool behaviour, scheduling) is in
:mod:`.models`: a setting the model would refuse is a ConfigurationError here, and a retired
model id is refused with its replacement named.

``Config.extra`` keys:

- ``api_key``: default ``$GOOGLE_API_KEY``, else ``$GEMINI_API_KEY``; required. An ephemeral
  token (``auth_tokens/...``) needs ``api_version="v1alpha"``.
- ``base_url``: default ``wss://generativelanguage.googleapis.com`` (``https://`` maps to
  ``wss://``, ``http://`` to ``ws://``); the BidiGenerateContent path is appended.
- ``api_version``: ``v1beta`` (default), ``v1`` or ``v1alpha``.
- ``ca_file``: a PEM bundle to trust instead of the system roots (the local emulator's CA).
- ``turn_detection``: ``"server_vad"`` (default, the server detects speech) or ``"none"``
  (manual: the session sends activity start/end; call ``Session.end_turn()``).
- ``start_sensitivity`` / ``end_sensitivity``: ``"high"`` or ``"low"`` (server default if unset).
- ``prefix_padding_ms``, ``silence_duration_ms``: server VAD timing.
- ``activity_handling``: ``"interrupt"`` (default: caller speech cuts the answer) or
  ``"no_interruption"``.
- ``turn_coverage``: ``"only_activity"`` or ``"all_input"`` (server default if unset).
- ``input_transcription`` / ``output_transcription``: transcripts of both sides (default true;
  keep input transcription on: it is how answered speech is carried to a new connection when no
  resumption handle covers it).
- ``language_code``: speech language, e.g. ``"en-US"``.
- ``context_window_compression``: default true (sessions are then not capped at 15 minutes);
  ``compression_trigger_tokens`` / ``compression_target_tokens`` tune it.
- ``proactive_audio``: ``True`` lets the model stay silent when not addressed; needs
  ``api_version="v1alpha"`` (other versions close 1007 on the ``proactivity`` field). The 3.8
  models are always proactive and refuse ``False``.
- ``temperature``, ``max_output_tokens``.
- ``thinking_level``: ``"minimal"``, ``"low"``, ``"medium"`` or ``"high"`` where the model takes
  one (``gemini-3.8-live-extended-thinking`` requires one: LOW unless given; MINIMAL is refused;
  ``gemini-3.8-live`` takes none). ``thinking_budget``: tokens, on models that take a budget.
- ``non_blocking_tools``: tool names the model may keep talking over (``NON_BLOCKING``); a list,
  or ``{name: scheduling}`` with scheduling ``"when_idle"`` (default), ``"interrupt"`` or
  ``"silent"`` for how the model reports the result. On ``gemini-3.8-live-extended-thinking``
  every tool is NON_BLOCKING and results carry no scheduling (only ``when_idle`` is allowed);
  ``gemini-3.1-flash-live-preview`` does not honour NON_BLOCKING, so it is refused there.
- ``session_resumption``: request resumption handles (default true) so a call continues on a new
  connection with the server's state; without them the history is replayed.
- ``transparent_resumption``: ask for ``lastConsumedClientMessageIndex`` (``transparent``,
  default true). The Developer API is reported to accept and ignore it (the official SDK refuses
  to send it outside Vertex); turn it off if a server refuses the field. Without the index the
  client estimates what a handle covers (see :mod:`.resumption`).
- ``go_away_margin_s``: after a ``goAway``, switch connections at a quiet moment, and in any case
  this long before the server's deadline (default 5 s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...config import Config
from ...errors import ConfigurationError, MissingCredentialsError
from .models import LEVELS, RETIRED, ClientRules, rules_for
from .wire import API_VERSIONS, PATH, VOICES

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "GeminiSettings", "resolve"]

PROVIDER = "gemini_live"
DEFAULT_BASE_URL = "wss://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-3.8-live"
DEFAULT_API_VERSION = "v1beta"
KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")

EXTRA_KEYS = frozenset(
    {
        "api_key",
        "base_url",
        "api_version",
        "ca_file",
        "turn_detection",
        "start_sensitivity",
        "end_sensitivity",
        "prefix_padding_ms",
        "silence_duration_ms",
        "activity_handling",
        "turn_coverage",
        "input_transcription",
        "output_transcription",
        "language_code",
        "context_window_compression",
        "compression_trigger_tokens",
        "compression_target_tokens",
        "proactive_audio",
        "temperature",
        "max_output_tokens",
        "thinking_level",
        "thinking_budget",
        "non_blocking_tools",
        "session_resumption",
        "transparent_resumption",
        "go_away_margin_s",
    }
)

_SCHEDULING = {"when_idle": "WHEN_IDLE", "interrupt": "INTERRUPT", "silent": "SILENT"}
_ACTIVITY = {"interrupt": "START_OF_ACTIVITY_INTERRUPTS", "no_interruption": "NO_INTERRUPTION"}
_COVERAGE = {
    "only_activity": "TURN_INCLUDES_ONLY_ACTIVITY",
    "all_input": "TURN_INCLUDES_ALL_INPUT",
}


@dataclass(frozen=True, slots=True)
class GeminiSettings:
    api_key: str
    url: str
    headers: Mapping[str, str]
    ca_file: str | None
    model: str
    voice: str | None
    instructions: str | None
    tools: tuple[dict[str, Any], ...]
    manual_turns: bool
    realtime_input_config: dict[str, Any]
    interrupts: bool
    input_transcription: bool
    output_transcription: bool
    generation_config: dict[str, Any]
    compression: dict[str, Any] | None
    proactive_audio: bool | None
    #: NON_BLOCKING tools -> ``scheduling`` of their results (None: the field is not sent).
    non_blocking: Mapping[str, str | None] = field(default_factory=dict)
    session_resumption: bool = True
    transparent_resumption: bool = True
    go_away_margin_s: float = 5.0
    #: The model reports ``interactionStatus`` (a turn ends at IDLE, not at ``turnComplete``).
    interaction_status: bool = False

    def setup(self, handle: str | None = None) -> dict[str, Any]:
        """The ``setup`` message (camelCase), resuming ``handle`` if given."""
        setup: dict[str, Any] = {
            "model": f"models/{self.model}",
            "generationConfig": dict(self.generation_config),
        }
        if self.instructions:
            setup["systemInstruction"] = {"parts": [{"text": self.instructions}]}
        if self.tools:
            setup["tools"] = [{"functionDeclarations": [dict(t) for t in self.tools]}]
        if self.realtime_input_config:
            setup["realtimeInputConfig"] = self.realtime_input_config
        if self.session_resumption:
            resumption: dict[str, Any] = {}
            if self.transparent_resumption:
                resumption["transparent"] = True
            if handle:
                resumption["handle"] = handle
            setup["sessionResumption"] = resumption
        if self.compression is not None:
            setup["contextWindowCompression"] = self.compression
        if self.input_transcription:
            setup["inputAudioTranscription"] = {}
        if self.output_transcription:
            setup["outputAudioTranscription"] = {}
        if self.proactive_audio is not None:
            setup["proactivity"] = {"proactiveAudio": self.proactive_audio}
        return {"setup": setup}

    def scheduling(self, tool_name: str) -> str | None:
        """``FunctionResponse.scheduling`` for a result of ``tool_name`` (NON_BLOCKING only)."""
        return self.non_blocking.get(tool_name)

    def blocking(self, tool_name: str) -> bool:
        """True when the model's turn waits for ``tool_name``'s result."""
        return tool_name not in self.non_blocking


def _error(message: str) -> ConfigurationError:
    return ConfigurationError(f"{PROVIDER}: {message}", provider=PROVIDER)


def _url(base_url: str, version: str, method: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise _error(f"base_url {base_url!r} must be a ws://, wss://, http:// or https:// URL")
    path = parts.path.rstrip("/")
    if "/ws/google.ai.generativelanguage." in path:
        if not PATH.match(path):
            raise _error(f"base_url path {path!r} is not a BidiGenerateContent endpoint")
    else:
        path += f"/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _number(extra: Mapping[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = extra.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise _error(f"extra[{key!r}]={value!r} must be a number in {lo:g}-{hi:g}")
    return float(value)


def _flag(extra: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = extra.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise _error(f"extra[{key!r}] must be true or false, got {value!r}")
    return value


def _choice(extra: Mapping[str, Any], key: str, choices: Mapping[str, str]) -> str | None:
    value = extra.get(key)
    if value is None:
        return None
    if value not in choices:
        raise _error(f"extra[{key!r}]={value!r} must be one of {', '.join(sorted(choices))}")
    return choices[value]


def _realtime_input_config(extra: Mapping[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """``realtimeInputConfig``, whether turns are manual, and whether speech interrupts."""
    mode = extra.get("turn_detection", "server_vad")
    if mode not in ("server_vad", "none", "manual"):
        raise _error(f"turn_detection {mode!r} must be server_vad or none")
    manual = mode != "server_vad"
    detection: dict[str, Any] = {"disabled": manual}
    sensitivity = {"high": "HIGH", "low": "LOW"}
    if (start := _choice(extra, "start_sensitivity", sensitivity)) is not None:
        detection["startOfSpeechSensitivity"] = f"START_SENSITIVITY_{start}"
    if (end := _choice(extra, "end_sensitivity", sensitivity)) is not None:
        detection["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{end}"
    for key, name in (
        ("prefix_padding_ms", "prefixPaddingMs"),
        ("silence_duration_ms", "silenceDurationMs"),
    ):
        if (ms := _number(extra, key, 0, 10_000)) is not None:
            detection[name] = int(ms)
    config: dict[str, Any] = {"automaticActivityDetection": detection}
    handling = _choice(extra, "activity_handling", _ACTIVITY)
    if handling is not None:
        config["activityHandling"] = handling
    if (coverage := _choice(extra, "turn_coverage", _COVERAGE)) is not None:
        config["turnCoverage"] = coverage
    return config, manual, handling != "NO_INTERRUPTION"


def _non_blocking(
    extra: Mapping[str, Any], declared: set[str], model: str, rules: ClientRules
) -> dict[str, str | None]:
    """NON_BLOCKING tools and the ``scheduling`` their results carry, as ``model`` takes them."""
    value = extra.get("non_blocking_tools") or {}
    if isinstance(value, (list, tuple, set, frozenset)):
        value = dict.fromkeys(value, "when_idle")
    if not isinstance(value, Mapping):
        raise _error("non_blocking_tools must be a list of tool names or {name: scheduling}")
    out: dict[str, str] = {}
    for name, scheduling in value.items():
        if name not in declared:
            raise _error(f"non_blocking_tools names {name!r}, which is not a declared tool")
        if scheduling not in _SCHEDULING:
            raise _error(
                f"non_blocking_tools[{name!r}]={scheduling!r} must be one of "
                f"{', '.join(sorted(_SCHEDULING))}"
            )
        out[name] = _SCHEDULING[scheduling]
    if out and not rules.non_blocking:
        raise _error(
            f"{model} does not honour NON_BLOCKING tools (it waits for every result); "
            "drop non_blocking_tools or use gemini-3.8-live"
        )
    if rules.blocking:
        return dict(out) if rules.scheduling else dict.fromkeys(out)
    refused = sorted(n for n, s in out.items() if s != "WHEN_IDLE")
    if refused:
        raise _error(
            f"{model} takes no result scheduling (results are spoken when the model is idle); "
            f"non_blocking_tools gives one for {', '.join(refused)}"
        )
    return dict.fromkeys(declared)  # every tool runs in the background, no scheduling sent


def _proactive(
    extra: Mapping[str, Any], model: str, version: str, rules: ClientRules
) -> bool | None:
    value = _flag(extra, "proactive_audio", None)
    if value is None:
        return None
    if version != "v1alpha":
        raise _error("proactive_audio needs api_version='v1alpha' (other versions refuse it)")
    if value is False and rules.always_proactive:
        raise _error(f"{model} is always proactive; proactive_audio=False is refused")
    return value


def _model(config: Config) -> str:
    model = (config.model or DEFAULT_MODEL).removeprefix("models/")
    replacement = RETIRED.get(model)
    if replacement is not None:
        raise _error(f"model {model!r} was retired; use {replacement!r}")
    return model


def _thinking(extra: Mapping[str, Any], model: str, rules: ClientRules) -> dict[str, Any] | None:
    """``generationConfig.thinkingConfig`` as ``model`` takes it, or None."""
    thinking: dict[str, Any] = {}
    level = extra.get("thinking_level")
    if level is not None:
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise _error(
                f"thinking_level {level!r} must be one of {', '.join(x.lower() for x in LEVELS)}"
            )
        level = level.upper()
        if not rules.thinking_levels:
            raise _error(f"{model} takes no thinking_level; leave it out")
        if level not in rules.thinking_levels:
            accepted = ", ".join(x.lower() for x in rules.thinking_levels)
            raise _error(
                f"{model} does not accept thinking_level {level.lower()!r}; use {accepted}"
            )
    level = level or rules.default_level
    if level is not None:
        thinking["thinkingLevel"] = level
    budget = extra.get("thinking_budget")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
            raise _error(f"thinking_budget {budget!r} must be a whole number of tokens (-1: auto)")
        if not rules.thinking_budget:
            raise _error(f"{model} takes no thinking_budget; leave it out")
        thinking["thinkingBudget"] = budget
    return thinking or None


def _api_key(extra: Mapping[str, Any], env: Mapping[str, str]) -> str:
    key = extra.get("api_key") or next((env[v] for v in KEY_VARIABLES if env.get(v)), None)
    if not key:
        raise MissingCredentialsError(
            f"{PROVIDER}: no API key; set GOOGLE_API_KEY or GEMINI_API_KEY, or pass "
            "Config(extra={'api_key': ...})",
            provider=PROVIDER,
        )
    if not isinstance(key, str):
        raise _error("api_key must be a string")
    return key


def resolve(config: Config, environ: Mapping[str, str] | None = None) -> GeminiSettings:
    """Validate ``config`` for Gemini Live. Raises ConfigurationError subclasses."""
    extra = config.extra
    api_key = _api_key(extra, os.environ if environ is None else environ)
    version = extra.get("api_version", DEFAULT_API_VERSION)
    if version not in API_VERSIONS:
        raise _error(f"api_version {version!r} must be one of {', '.join(API_VERSIONS)}")
    ephemeral = api_key.startswith("auth_tokens/")
    if ephemeral and version != "v1alpha":
        raise _error("ephemeral tokens (auth_tokens/...) need api_version='v1alpha'")
    method = "BidiGenerateContentConstrained" if ephemeral else "BidiGenerateContent"
    headers = {"Authorization": f"Token {api_key}"} if ephemeral else {"x-goog-api-key": api_key}
    ca_file = extra.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not os.path.isfile(ca_file)):
        raise _error(f"ca_file {ca_file!r} is not a readable file")

    model = _model(config)
    rules = rules_for(model)
    voice = config.voice
    if voice is not None and voice not in VOICES:
        raise _error(f"unknown voice {voice!r}; prebuilt voices: {', '.join(sorted(VOICES))}")
    generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    speech: dict[str, Any] = {}
    if voice is not None:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": voice}}
    language = extra.get("language_code")
    if language is not None:
        if not isinstance(language, str) or not language:
            raise _error("language_code must be a BCP-47 code such as 'en-US'")
        speech["languageCode"] = language
    if speech:
        generation["speechConfig"] = speech
    if (temperature := _number(extra, "temperature", 0.0, 2.0)) is not None:
        generation["temperature"] = temperature
    if (max_tokens := _number(extra, "max_output_tokens", 1, 1_000_000)) is not None:
        generation["maxOutputTokens"] = int(max_tokens)
    if (thinking := _thinking(extra, model, rules)) is not None:
        generation["thinkingConfig"] = thinking

    compression: dict[str, Any] | None = None
    if _flag(extra, "context_window_compression", True):
        window: dict[str, Any] = {}
        compression = {"slidingWindow": window}
        if (trigger := _number(extra, "compression_trigger_tokens", 1, 10_000_000)) is not None:
            compression["triggerTokens"] = int(trigger)
        if (target := _number(extra, "compression_target_tokens", 1, 10_000_000)) is not None:
            window["targetTokens"] = int(target)

    realtime_config, manual, interrupts = _realtime_input_config(extra)
    declared = {t.name for t in config.tools}
    non_blocking = _non_blocking(extra, declared, model, rules)
    tools = tuple(
        {
            "name": t.name,
            "description": t.description,
            "parametersJsonSchema": dict(t.parameters),
            "behavior": "NON_BLOCKING" if t.name in non_blocking else "BLOCKING",
        }
        for t in config.tools
    )
    margin = _number(extra, "go_away_margin_s", 0.0, 600.0)
    return GeminiSettings(
        api_key=api_key,
        url=_url(str(extra.get("base_url") or DEFAULT_BASE_URL), version, method),
        headers=headers,
        ca_file=ca_file,
        model=model,
        voice=voice,
        instructions=config.instructions,
        tools=tools,
        manual_turns=manual,
        realtime_input_config=realtime_config,
        interrupts=interrupts,
        input_transcription=bool(_flag(extra, "input_transcription", True)),
        output_transcription=bool(_flag(extra, "output_transcription", True)),
        generation_config=generation,
        compression=compression,
        proactive_audio=_proactive(extra, model, version, rules),
        non_blocking=non_blocking,
        session_resumption=bool(_flag(extra, "session_resumption", True)),
        transparent_resumption=bool(_flag(extra, "transparent_resumption", True)),
        go_away_margin_s=5.0 if margin is None else margin,
        interaction_status=rules.interaction_status,
    )
