"""Strict models of the GPT-Live client events, as the server validates them.

The session config is strict (unknown fields are refused, drift reference §1.3); every client event
accepts an optional ``event_id``; the three ``*.append`` events require the ``delegation_id`` key
even when it is null (§1.4). :func:`validate` returns the parsed model, or an ``(code, message,
param)`` triple worded like the Realtime server's validation errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..openai.validation import ValidationFailure, validate_frame

__all__ = ["CLIENT_EVENTS", "SessionStart", "validate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Pcm(_Strict):
    type: Literal["audio/pcm"]
    rate: Literal[16000, 24000]


class _Pcmu(_Strict):
    type: Literal["audio/pcmu"]
    rate: Literal[8000]


class _Pcma(_Strict):
    type: Literal["audio/pcma"]
    rate: Literal[8000]


class _CustomVoice(_Strict):
    id: str


class _AudioOutput(_Strict):
    voice: str | _CustomVoice | None = None


class _Audio(_Strict):
    format: Annotated[_Pcm | _Pcmu | _Pcma, Field(discriminator="type")] | None = None
    output: _AudioOutput | None = None


class _TextPart(_Strict):
    type: Literal["input_text", "output_text", "text"] | None = None
    text: str


class _InitialItem(_Strict):
    role: Literal["developer", "user", "assistant"]
    content: list[_TextPart] = Field(min_length=1, max_length=1)
    id: str | None = None
    status: Literal["incomplete", "completed"] | None = None
    type: Literal["message"] | None = None


class _FunctionTool(_Strict):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _HostedTool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal[
        "web_search",
        "file_search",
        "code_interpreter",
        "shell",
        "image_generation",
        "mcp",
        "custom",
        "namespace",
        "tool_search",
        "programmatic_tool_calling",
        "computer",
        "apply_patch",
    ]


class _Responses(_Strict):
    model: str
    instructions: str | None = None
    tools: list[Annotated[_FunctionTool | _HostedTool, Field(discriminator="type")]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    reasoning: dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    service_tier: (
        Literal["auto", "default", "fast_tier_temp_pilot", "flex", "priority", "ultrafast"] | None
    ) = None


class _ClientDelegation(_Strict):
    type: Literal["client"]
    acknowledgement_delay_ms: int | None = Field(default=None, ge=0)


class _ResponsesDelegation(_Strict):
    type: Literal["responses"]
    responses: _Responses
    acknowledgement_delay_ms: int | None = Field(default=None, ge=0)


class _DecisionsDelegation(_Strict):
    type: Literal["decisions"]
    decisions: dict[str, Any]
    acknowledgement_delay_ms: int | None = Field(default=None, ge=0)


_Delegation = Annotated[
    _ClientDelegation | _ResponsesDelegation | _DecisionsDelegation, Field(discriminator="type")
]


class SessionConfig(_Strict):
    model: str
    instructions: str | None = None
    audio: _Audio | None = None
    input: list[_InitialItem] | None = Field(default=None, max_length=128)
    delegation: _Delegation | None = None
    store: bool | None = None
    safety_identifier: str | None = None
    triggers: list[dict[str, Any]] | None = None
    client: dict[str, Any] | None = None


class _UpdateConfig(_Strict):
    delegation: _Delegation | None = None
    triggers: list[dict[str, Any]] | None = None


class _Event(_Strict):
    event_id: str | None = None


class SessionStart(_Event):
    type: Literal["session.start"]
    session: SessionConfig


class _SessionUpdate(_Event):
    type: Literal["session.update"]
    session: _UpdateConfig


class _AudioAppend(_Event):
    type: Literal["session.input_audio.append"]
    audio: str


class _Mute(_Event):
    type: Literal["session.input_audio.mute"]


class _Unmute(_Event):
    type: Literal["session.input_audio.unmute"]


class _FixturePlay(_Event):
    type: Literal["session.output_audio.fixture.play"]
    audio: str


class _Append(_Event):
    content: str
    delegation_id: str | None  # the key is required, the value may be null


class _InstructionsAppend(_Append):
    type: Literal["session.instructions.append"]


class _ThinkingAppend(_Append):
    type: Literal["session.thinking.append"]


class _CommentaryAppend(_Append):
    type: Literal["session.commentary.append"]


class _DecisionCreate(_Event):
    type: Literal["decision.create"]
    event_id: str  # required for decisions


class _DecisionItemCreate(_Event):
    type: Literal["decision.item.create"]
    item: dict[str, Any]


class _DecisionItemDelete(_Event):
    type: Literal["decision.item.delete"]
    item_id: str


class _ResponseItemCreate(_Event):
    type: Literal["response.item.create"]
    item: dict[str, Any]


class _ResponseCreate(_Event):
    type: Literal["response.create"]


class _SessionClose(_Event):
    type: Literal["session.close"]


CLIENT_EVENTS: dict[str, type[BaseModel]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        SessionStart,
        _SessionUpdate,
        _AudioAppend,
        _Mute,
        _Unmute,
        _FixturePlay,
        _InstructionsAppend,
        _ThinkingAppend,
        _CommentaryAppend,
        _DecisionCreate,
        _DecisionItemCreate,
        _DecisionItemDelete,
        _ResponseItemCreate,
        _ResponseCreate,
        _SessionClose,
    )
}


def validate(raw: str) -> BaseModel | ValidationFailure:
    """Parse and validate one client text frame (errors worded as the Realtime server's)."""
    return validate_frame(raw, CLIENT_EVENTS, ", ".join(CLIENT_EVENTS))
