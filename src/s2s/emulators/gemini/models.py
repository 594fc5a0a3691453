"""What each Gemini Live model accepts and how it behaves, by model id (provider-drift §3.1).

The emulator looks every per-model rule up here instead of testing model names: the default
``behavior`` of a function declaration, which ``thinkingConfig`` it takes, whether BLOCKING
declarations and response ``scheduling`` are allowed, how ``clientContent`` roles are checked,
the TEXT modality, affective dialog, whether turns report ``interactionStatus`` (background
reasoning with spoken fillers), and the ids that are retired (the server then accepts the
handshake and closes 1008 "Publisher Model ... was not found").

The reasons are the production server's, verbatim (§3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "RETIRED",
    "ModelRules",
    "Reasons",
    "rules_for",
    "unavailable_reason",
]

Behavior = Literal["BLOCKING", "NON_BLOCKING"]

ALL_LEVELS = frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH"})


class Reasons:
    """Close reasons of the production server (code 1007 unless noted)."""

    LEVEL_REQUIRED = "Thinking level must be specified for this model"
    LEVEL_NOT_SUPPORTED = "Thinking level is not supported for this model"
    BUDGET_NOT_SUPPORTED = "Thinking budget is not supported for this model"  # wording unverified
    BLOCKING = "BLOCKING function calls are not supported for this model"
    SCHEDULING = "Function response scheduling is not supported for this model"
    TEXT = "The requested combination of response modalities (TEXT) is not supported by the model"
    INVALID_ARGUMENT = "Request contains an invalid argument"
    #: ``proactivity`` outside ``v1alpha``.
    PROACTIVITY = "Invalid JSON payload received. Unknown name \"proactivity\" at 'setup'"

    PRECONDITION = "Precondition check failed"
    #: 1008: seeded audio that is not 16 kHz.
    NOT_IMPLEMENTED = "Operation is not implemented, or supported, or enabled"

    @staticmethod
    def level_refused(level: str) -> str:
        return f"Thinking level {level} is not supported for this model"


@dataclass(frozen=True, slots=True)
class ModelRules:
    """The per-model rules the emulator enforces and follows."""

    #: ``behavior`` of a declaration that names none.
    default_behavior: Behavior
    #: ``thinkingLevel`` values accepted; empty: any level is refused.
    thinking_levels: frozenset[str]
    #: Setup without a ``thinkingLevel`` is refused.
    thinking_required: bool = False
    #: ``thinkingBudget`` accepted.
    thinking_budget: bool = True
    #: ``behavior: BLOCKING`` declarations accepted.
    blocking_allowed: bool = True
    #: NON_BLOCKING is honoured (False: accepted, but the model still waits for the result).
    honours_non_blocking: bool = True
    #: ``FunctionResponse.scheduling`` accepted.
    scheduling_allowed: bool = True
    #: ``clientContent`` accepted after setup (False: 3.1 at launch, 1007 on any).
    client_content_mid_session: bool = True
    #: ``clientContent`` turns without a ``user``/``model`` role are refused.
    role_required: bool = False
    #: ``responseModalities: ["TEXT"]`` accepted.
    text_modality: bool = False
    #: ``enableAffectiveDialog``: "ok", "setup" (refused at setup) or "first_send" (the
    #: session opens, then closes 1007 on the first client message).
    affective_dialog: Literal["ok", "setup", "first_send"] = "ok"
    #: Turns report ``interactionStatus``; the model reasons in the background and speaks a
    #: filler first (its ``turnComplete`` closes only that chunk).
    interaction_status: bool = False
    #: Audio parts in ``clientContent`` refused with "Precondition check failed".
    seeded_audio_refused: bool = False


MODELS: MappingProxyType[str, ModelRules] = MappingProxyType(
    {
        "gemini-3.8-live": ModelRules(
            default_behavior="NON_BLOCKING",
            thinking_levels=frozenset(),
            thinking_budget=False,
            role_required=True,
            affective_dialog="first_send",
        ),
        "gemini-3.8-live-extended-thinking": ModelRules(
            default_behavior="NON_BLOCKING",
            thinking_levels=frozenset({"LOW", "MEDIUM", "HIGH"}),
            thinking_required=True,
            thinking_budget=False,
            blocking_allowed=False,
            scheduling_allowed=False,
            role_required=True,
            affective_dialog="first_send",
            interaction_status=True,
        ),
        "gemini-3.1-flash-live-preview": ModelRules(
            default_behavior="BLOCKING",
            thinking_levels=ALL_LEVELS,
            honours_non_blocking=False,
            role_required=True,
            affective_dialog="setup",
        ),
        "gemini-2.5-flash-native-audio-preview-12-2025": ModelRules(
            default_behavior="BLOCKING",
            thinking_levels=frozenset(),
            text_modality=True,
            seeded_audio_refused=True,
        ),
        "gemini-2.5-flash-native-audio-preview-09-2025": ModelRules(
            default_behavior="BLOCKING",
            thinking_levels=frozenset(),
            text_modality=True,
            seeded_audio_refused=True,
        ),
    }
)

DEFAULT_MODEL = "gemini-3.8-live"

#: Shut-down ids (§3.5): the handshake is accepted, then the close 1008 says "not found".
RETIRED = frozenset(
    {
        "gemini-2.0-flash-live-001",
        "gemini-live-2.5-flash-preview",
        "gemini-2.0-flash-exp",
        "gemini-3.5-live-translate-preview",
    }
)


def rules_for(model: str) -> ModelRules | None:
    """The rules of a served model id (without ``models/``), or None if it is not served."""
    return None if model in RETIRED else MODELS.get(model)


def unavailable_reason(model: str) -> str:
    """The 1008 reason for a retired or unknown ``model``, named as ``setup.model`` gave it."""
    return f"Publisher Model `{model}` was not found or is not supported for bidiGenerateContent"
