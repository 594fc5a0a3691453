"""The ``setup`` message as the server judges it: refused (code and reason) or configured.

:func:`setup_problem` applies the general checks (voice, tool declarations, modalities) and the
per-model rules of :mod:`.models`; :func:`configure` turns an accepted setup into the
:class:`SessionSetup` a connection runs by. Mid-session checks that depend on the model
(``clientContent`` roles, response ``scheduling``) are here too, so every model rule lives next
to the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...providers.gemini_live import wire
from .models import ModelRules, Reasons, rules_for, unavailable_reason
from .validation import INVALID_ARGUMENT

__all__ = [
    "POLICY_VIOLATION",
    "SessionSetup",
    "client_content_problem",
    "configure",
    "declared_behaviors",
    "setup_problem",
    "tool_response_problem",
]

POLICY_VIOLATION = 1008

Problem = tuple[int, str]


@dataclass(slots=True)
class SessionSetup:
    """What one connection runs by, from its ``setup``."""

    model: str
    rules: ModelRules
    declared: dict[str, str]  # tool name -> behavior the model follows
    output_transcription: bool
    input_transcription: bool
    automatic_vad: bool
    interrupts: bool
    start_threshold_dbfs: float
    silence_ms: float
    resumption: bool
    transparent: bool
    compression: bool
    #: Affective dialog on a model that closes 1007 on the first client message after setup.
    refuse_first_send: bool = False


def declared_behaviors(tools: list[wire.Tool], rules: ModelRules) -> dict[str, str]:
    """Tool name -> the behaviour the model follows (its default where none is declared; a
    model that does not honour NON_BLOCKING waits for every result)."""
    out: dict[str, str] = {}
    for tool in tools:
        for declaration in tool.function_declarations or []:
            behavior = declaration.behavior or rules.default_behavior
            if behavior == "NON_BLOCKING" and not rules.honours_non_blocking:
                behavior = "BLOCKING"
            out[declaration.name] = behavior
    return out


def configure(setup: wire.Setup, model: str, rules: ModelRules) -> SessionSetup:
    """The accepted ``setup`` as a connection's settings."""
    ric = setup.realtime_input_config or wire.RealtimeInputConfig()
    aad = ric.automatic_activity_detection or wire.AutomaticActivityDetection()
    start = aad.start_of_speech_sensitivity
    end = aad.end_of_speech_sensitivity
    threshold = {"START_SENSITIVITY_HIGH": -50.0, "START_SENSITIVITY_LOW": -32.0}.get(
        start or "", -40.0
    )
    silence = aad.silence_duration_ms or {
        "END_SENSITIVITY_HIGH": 300,
        "END_SENSITIVITY_LOW": 800,
    }.get(end or "", 500)
    resumption = setup.session_resumption
    config = setup.generation_config or wire.GenerationConfig()
    return SessionSetup(
        model=model,
        rules=rules,
        declared=declared_behaviors(setup.tools or [], rules),
        output_transcription=setup.output_audio_transcription is not None,
        input_transcription=setup.input_audio_transcription is not None,
        automatic_vad=not aad.disabled,
        interrupts=ric.activity_handling != "NO_INTERRUPTION",
        start_threshold_dbfs=threshold,
        silence_ms=float(silence),
        resumption=resumption is not None,
        transparent=bool(resumption and resumption.transparent),
        compression=setup.context_window_compression is not None,
        refuse_first_send=bool(config.enable_affective_dialog)
        and rules.affective_dialog == "first_send",
    )


def setup_problem(setup: wire.Setup, api_version: str = "v1beta") -> Problem | None:
    """Why the server refuses this setup on ``api_version`` (code and reason), or None."""
    if setup.proactivity is not None and api_version != "v1alpha":
        return INVALID_ARGUMENT, Reasons.PROACTIVITY
    model = setup.model
    rules = rules_for(model.removeprefix("models/")) if model.startswith("models/") else None
    if rules is None:
        return POLICY_VIOLATION, unavailable_reason(model)
    config = setup.generation_config or wire.GenerationConfig()
    problem = _model_problem(setup, config, rules)
    if problem is not None:
        return problem
    voice = None
    if config.speech_config and config.speech_config.voice_config:
        prebuilt = config.speech_config.voice_config.prebuilt_voice_config
        voice = prebuilt.voice_name if prebuilt else None
    if voice is not None and voice not in wire.VOICES:
        return INVALID_ARGUMENT, f"Voice name {voice!r} is not supported."
    return _tools_problem(setup.tools or [])


def _model_problem(
    setup: wire.Setup, config: wire.GenerationConfig, rules: ModelRules
) -> Problem | None:
    modalities = config.response_modalities or ["AUDIO"]
    if len(modalities) != 1:
        return (
            INVALID_ARGUMENT,
            "generation_config.response_modalities must hold exactly one value.",
        )
    if modalities == ["TEXT"] and not rules.text_modality:
        return INVALID_ARGUMENT, Reasons.TEXT
    thinking = config.thinking_config or wire.ThinkingConfig()
    level = thinking.thinking_level
    if level in (None, "THINKING_LEVEL_UNSPECIFIED"):
        if rules.thinking_required:
            return INVALID_ARGUMENT, Reasons.LEVEL_REQUIRED
    elif not rules.thinking_levels:
        return INVALID_ARGUMENT, Reasons.LEVEL_NOT_SUPPORTED
    elif level.upper() not in rules.thinking_levels:
        return INVALID_ARGUMENT, Reasons.level_refused(level.upper())
    if thinking.thinking_budget is not None and not rules.thinking_budget:
        return INVALID_ARGUMENT, Reasons.BUDGET_NOT_SUPPORTED
    if config.enable_affective_dialog and rules.affective_dialog == "setup":
        return INVALID_ARGUMENT, Reasons.INVALID_ARGUMENT
    if not rules.blocking_allowed:
        for tool in setup.tools or []:
            for declaration in tool.function_declarations or []:
                if declaration.behavior == "BLOCKING":
                    return INVALID_ARGUMENT, Reasons.BLOCKING
    return None


def _tools_problem(tools: list[wire.Tool]) -> Problem | None:
    names: set[str] = set()
    for t, tool in enumerate(tools):
        for d, declaration in enumerate(tool.function_declarations or []):
            where = f"setup.tools[{t}].function_declarations[{d}]"
            if declaration.name in names:
                return INVALID_ARGUMENT, f"Duplicate function declaration name at '{where}'."
            names.add(declaration.name)
            if (
                declaration.parameters is not None
                and declaration.parameters_json_schema is not None
            ):
                return (
                    INVALID_ARGUMENT,
                    f"Only one of parameters and parameters_json_schema may be set at '{where}'.",
                )
            schema = declaration.parameters_json_schema
            if schema is not None and not isinstance(schema, dict):
                return INVALID_ARGUMENT, f"parameters_json_schema at '{where}' must be an object."
    return None


def client_content_problem(
    content: wire.ClientContent, rules: ModelRules, *, initial: bool
) -> Problem | None:
    """Why the server closes on this ``clientContent`` (``initial``: seeded history), or None."""
    if not initial and not rules.client_content_mid_session:
        return INVALID_ARGUMENT, Reasons.INVALID_ARGUMENT
    for turn in content.turns or []:
        if rules.role_required and turn.role not in ("user", "model"):
            return INVALID_ARGUMENT, Reasons.INVALID_ARGUMENT  # missing role, or "system"
        for part in turn.parts or []:
            blob = part.inline_data
            if blob is None or not (blob.mime_type or "").startswith("audio/"):
                continue
            if rules.seeded_audio_refused:
                return INVALID_ARGUMENT, Reasons.PRECONDITION
            if f"rate={wire.INPUT_RATE}" not in (blob.mime_type or "").replace(" ", ""):
                return POLICY_VIOLATION, Reasons.NOT_IMPLEMENTED
    return None


def tool_response_problem(response: wire.ToolResponse, rules: ModelRules) -> Problem | None:
    """Why the server closes on this ``toolResponse`` (model rules only), or None."""
    if rules.scheduling_allowed:
        return None
    for answer in response.function_responses or []:
        if answer.scheduling not in (None, "SCHEDULING_UNSPECIFIED"):
            return INVALID_ARGUMENT, Reasons.SCHEDULING
    return None
