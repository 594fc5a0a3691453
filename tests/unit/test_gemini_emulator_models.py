"""The emulator's per-model rules: what each model id refuses, with the production reason."""

from __future__ import annotations

from typing import Any

import pytest

from s2s.emulators.gemini.models import MODELS, RETIRED, Reasons, rules_for
from s2s.emulators.gemini.setup import (
    client_content_problem,
    configure,
    setup_problem,
    tool_response_problem,
)
from s2s.providers.gemini_live import wire

EXTENDED = "gemini-3.8-live-extended-thinking"
TOOL = {"functionDeclarations": [{"name": "f"}]}


def problem(model: str, **fields: Any) -> tuple[int, str] | None:
    return setup_problem(wire.Setup.model_validate({"model": f"models/{model}", **fields}))


def thinking(**config: Any) -> dict[str, Any]:
    return {"generationConfig": {"thinkingConfig": config}}


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        (EXTENDED, {}, "Thinking level must be specified for this model"),
        (EXTENDED, thinking(thinkingLevel="MINIMAL"), Reasons.level_refused("MINIMAL")),
        (EXTENDED, thinking(thinkingLevel="LOW", thinkingBudget=100), Reasons.BUDGET_NOT_SUPPORTED),
        (
            EXTENDED,
            {
                **thinking(thinkingLevel="HIGH"),
                "tools": [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}],
            },
            "BLOCKING function calls are not supported for this model",
        ),
        ("gemini-3.8-live", thinking(thinkingLevel="LOW"), Reasons.LEVEL_NOT_SUPPORTED),
        (
            "gemini-3.1-flash-live-preview",
            {"generationConfig": {"responseModalities": ["TEXT"]}},
            "The requested combination of response modalities (TEXT) is not supported by the model",
        ),
        (
            "gemini-3.1-flash-live-preview",
            {"generationConfig": {"enableAffectiveDialog": True}},
            "Request contains an invalid argument",
        ),
        (  # 2.5 takes a budget, not a level
            "gemini-2.5-flash-native-audio-preview-12-2025",
            thinking(thinkingLevel="LOW"),
            "Thinking level is not supported for this model",
        ),
    ],
)
def test_setups_a_model_refuses_close_1007_with_the_exact_reason(model, fields, reason):
    assert problem(model, **fields) == (1007, reason)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("gemini-3.8-live", {"tools": [TOOL]}),
        (EXTENDED, {**thinking(thinkingLevel="LOW"), "tools": [TOOL]}),
        ("gemini-3.1-flash-live-preview", thinking(thinkingLevel="MINIMAL")),
        ("gemini-2.5-flash-native-audio-preview-12-2025", thinking(thinkingBudget=512)),
        (
            "gemini-2.5-flash-native-audio-preview-12-2025",
            {"generationConfig": {"enableAffectiveDialog": True}},
        ),
    ],
)
def test_setups_each_model_accepts(model, fields):
    assert problem(model, **fields) is None


@pytest.mark.parametrize("model", [*sorted(RETIRED), "gemini-9-live"])
def test_retired_and_unknown_ids_close_1008_publisher_model_not_found(model):
    assert problem(model) == (
        1008,
        f"Publisher Model `models/{model}` was not found or is not supported for "
        "bidiGenerateContent",
    )
    assert rules_for(model) is None


def test_proactivity_is_an_unknown_field_outside_v1alpha():
    setup = wire.Setup.model_validate(
        {"model": "models/gemini-3.8-live", "proactivity": {"proactiveAudio": True}}
    )
    assert setup_problem(setup, "v1beta") == (
        1007,
        "Invalid JSON payload received. Unknown name \"proactivity\" at 'setup'",
    )
    assert setup_problem(setup, "v1alpha") is None


def test_default_tool_behaviour_per_model():
    def declared(model: str, behavior: str | None = None) -> str:
        declaration = {"name": "f", **({"behavior": behavior} if behavior else {})}
        setup = wire.Setup.model_validate(
            {"model": f"models/{model}", "tools": [{"functionDeclarations": [declaration]}]}
        )
        rules = MODELS[model]
        return configure(setup, model, rules).declared["f"]

    assert declared("gemini-3.8-live") == "NON_BLOCKING"
    assert declared("gemini-3.8-live", "BLOCKING") == "BLOCKING"
    assert declared(EXTENDED) == "NON_BLOCKING"
    assert declared("gemini-3.1-flash-live-preview") == "BLOCKING"
    # 3.1 accepts NON_BLOCKING but still waits for the result
    assert declared("gemini-3.1-flash-live-preview", "NON_BLOCKING") == "BLOCKING"
    assert declared("gemini-2.5-flash-native-audio-preview-12-2025", "NON_BLOCKING") == (
        "NON_BLOCKING"
    )


def content(*turns: dict[str, Any]) -> wire.ClientContent:
    return wire.ClientContent.model_validate({"turns": list(turns), "turnComplete": True})


@pytest.mark.parametrize("model", ["gemini-3.8-live", EXTENDED, "gemini-3.1-flash-live-preview"])
def test_client_content_needs_an_explicit_user_or_model_role_on_3x(model):
    rules = MODELS[model]
    text = {"parts": [{"text": "hi"}]}
    assert client_content_problem(content({**text, "role": "user"}), rules, initial=False) is None
    assert client_content_problem(content({**text, "role": "model"}), rules, initial=False) is None
    for turn in (text, {**text, "role": "system"}):
        assert client_content_problem(content(turn), rules, initial=False) == (
            1007,
            "Request contains an invalid argument",
        )
    older = MODELS["gemini-2.5-flash-native-audio-preview-12-2025"]
    assert client_content_problem(content(text), older, initial=False) is None


def test_seeded_audio_rules():
    def seeded(rate: int) -> wire.ClientContent:
        blob = {"mimeType": f"audio/pcm;rate={rate}", "data": ""}
        return content({"role": "user", "parts": [{"inlineData": blob}]})

    older = MODELS["gemini-2.5-flash-native-audio-preview-12-2025"]
    assert client_content_problem(seeded(16000), older, initial=True) == (
        1007,
        "Precondition check failed",
    )
    rules = MODELS["gemini-3.8-live"]
    assert client_content_problem(seeded(16000), rules, initial=True) is None
    assert client_content_problem(seeded(24000), rules, initial=True) == (
        1008,
        "Operation is not implemented, or supported, or enabled",
    )


def test_scheduling_is_refused_only_on_extended_thinking():
    def response(scheduling: str | None) -> wire.ToolResponse:
        answer: dict[str, Any] = {"id": "c", "name": "f", "response": {}}
        if scheduling:
            answer["scheduling"] = scheduling
        return wire.ToolResponse.model_validate({"functionResponses": [answer]})

    for scheduling in ("SILENT", "WHEN_IDLE", "INTERRUPT"):
        assert tool_response_problem(response(scheduling), MODELS[EXTENDED]) == (
            1007,
            "Function response scheduling is not supported for this model",
        )
        assert tool_response_problem(response(scheduling), MODELS["gemini-3.8-live"]) is None
    assert tool_response_problem(response(None), MODELS[EXTENDED]) is None
