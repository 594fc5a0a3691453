"""Strict pydantic models of every OpenAI Realtime GA client event.

Unknown keys are forbidden (``extra="forbid"``) the way the production server refuses them. The
emulator validates what clients send against these models, and tests check them against the
official SDK's types. Our own client does not import this module: it builds its messages with
the plain functions in :mod:`.wire`, so a session actor does not pay for the model classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .wire import SAMPLE_RATE

__all__ = ["CLIENT_EVENT_MODELS"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- audio formats ----------------------------------------------------------------------------


class AudioPCM(_Strict):
    type: Literal["audio/pcm"] = "audio/pcm"
    # The server refuses anything but 24 kHz with integer_below_min_value / _above_max_value.
    rate: Annotated[int, Field(ge=SAMPLE_RATE, le=SAMPLE_RATE)] | None = None


class AudioPCMU(_Strict):
    type: Literal["audio/pcmu"]


class AudioPCMA(_Strict):
    type: Literal["audio/pcma"]


AudioFormat = Annotated[AudioPCM | AudioPCMU | AudioPCMA, Field(discriminator="type")]


# -- session configuration -----------------------------------------------------------------------


class NoiseReduction(_Strict):
    type: Literal["near_field", "far_field"] | None = None
    strength: float | None = None


class Transcription(_Strict):
    model: str | None = None
    language: str | None = None
    languages: list[str] | None = None
    prompt: str | None = None
    keywords: list[str] | None = None
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None


class ServerVad(_Strict):
    type: Literal["server_vad"]
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    prefix_padding_ms: Annotated[int, Field(ge=0)] | None = None
    silence_duration_ms: Annotated[int, Field(ge=0)] | None = None
    idle_timeout_ms: Annotated[int, Field(ge=0)] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class SemanticVad(_Strict):
    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class AudioInput(_Strict):
    format: AudioFormat | None = None
    noise_reduction: NoiseReduction | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None


class VoiceId(_Strict):
    id: str


class AudioOutput(_Strict):
    format: AudioFormat | None = None
    voice: str | VoiceId | None = None
    speed: Annotated[float, Field(ge=0.25, le=1.5)] | None = None


class AudioConfig(_Strict):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class FunctionTool(_Strict):
    type: Literal["function"] | None = None
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _ToolFilter(_Strict):
    read_only: bool | None = None
    tool_names: list[str] | None = None


class _ApprovalFilter(_Strict):
    always: _ToolFilter | None = None
    never: _ToolFilter | None = None


class McpTool(_Strict):
    type: Literal["mcp"]
    server_label: str
    allowed_callers: list[Literal["direct", "programmatic"]] | None = None
    allowed_tools: list[str] | _ToolFilter | None = None
    authorization: str | None = None
    connector_id: str | None = None
    defer_loading: bool | None = None
    headers: dict[str, str] | None = None
    require_approval: _ApprovalFilter | Literal["always", "never"] | None = None
    server_description: str | None = None
    server_url: str | None = None
    tunnel_id: str | None = None


Tool = FunctionTool | McpTool


class ToolChoiceFunction(_Strict):
    type: Literal["function"]
    name: str


class ToolChoiceMcp(_Strict):
    type: Literal["mcp"]
    server_label: str
    name: str | None = None


ToolChoice = Literal["none", "auto", "required"] | ToolChoiceFunction | ToolChoiceMcp


class TracingConfig(_Strict):
    group_id: str | None = None
    metadata: dict[str, Any] | None = None
    workflow_name: str | None = None


class TokenLimits(_Strict):
    post_instructions: int | None = None


class RetentionRatio(_Strict):
    type: Literal["retention_ratio"]
    retention_ratio: Annotated[float, Field(ge=0.0, le=1.0)]
    token_limits: TokenLimits | None = None


class Prompt(_Strict):
    id: str
    variables: dict[str, Any] | None = None
    version: str | None = None


class Reasoning(_Strict):
    effort: Literal["minimal", "low", "medium", "high", "xhigh", "none"] | None = None


class SessionConfig(_Strict):
    """``session`` of ``session.update`` (GA ``RealtimeSessionCreateRequest``)."""

    type: Literal["realtime"]
    model: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    instructions: str | None = None
    audio: AudioConfig | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    parallel_tool_calls: bool | None = None
    prompt: Prompt | None = None
    reasoning: Reasoning | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None
    tracing: Literal["auto"] | TracingConfig | None = None
    truncation: Literal["auto", "disabled"] | RetentionRatio | None = None


# -- conversation items ------------------------------------------------------------------------


class UserContent(_Strict):
    type: Literal["input_text", "input_audio", "input_image"] | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    image_url: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class AssistantContent(_Strict):
    type: Literal["output_text", "output_audio"] | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class SystemContent(_Strict):
    type: Literal["input_text"] | None = None
    text: str | None = None


_ItemStatus = Literal["completed", "incomplete", "in_progress"]


class UserMessage(_Strict):
    type: Literal["message"]
    role: Literal["user"]
    content: list[UserContent]
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: _ItemStatus | None = None


class AssistantMessage(_Strict):
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[AssistantContent]
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: _ItemStatus | None = None


class SystemMessage(_Strict):
    type: Literal["message"]
    role: Literal["system"]
    content: list[SystemContent]
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: _ItemStatus | None = None


class FunctionCallItem(_Strict):
    type: Literal["function_call"]
    name: str
    arguments: str
    call_id: str | None = None
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: _ItemStatus | None = None


class FunctionCallOutputItem(_Strict):
    type: Literal["function_call_output"]
    call_id: str
    output: str
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: _ItemStatus | None = None


Message = Annotated[UserMessage | AssistantMessage | SystemMessage, Field(discriminator="role")]
Item = Annotated[Message | FunctionCallItem | FunctionCallOutputItem, Field(discriminator="type")]


class ResponseAudioOutput(_Strict):
    format: AudioFormat | None = None
    voice: str | VoiceId | None = None


class ResponseAudio(_Strict):
    output: ResponseAudioOutput | None = None


class ResponseCreateParams(_Strict):
    audio: ResponseAudio | None = None
    conversation: str | None = None
    input: list[Item] | None = None
    instructions: str | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    metadata: dict[str, str] | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    parallel_tool_calls: bool | None = None
    prompt: Prompt | None = None
    reasoning: Reasoning | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None


# -- client events -----------------------------------------------------------------------------


class SessionUpdate(_Strict):
    type: Literal["session.update"]
    session: SessionConfig
    event_id: str | None = None


class InputAudioBufferAppend(_Strict):
    type: Literal["input_audio_buffer.append"]
    audio: str
    event_id: str | None = None


class InputAudioBufferCommit(_Strict):
    type: Literal["input_audio_buffer.commit"]
    event_id: str | None = None


class InputAudioBufferClear(_Strict):
    type: Literal["input_audio_buffer.clear"]
    event_id: str | None = None


class ConversationItemCreate(_Strict):
    type: Literal["conversation.item.create"]
    item: Item
    previous_item_id: str | None = None
    event_id: str | None = None


class ConversationItemTruncate(_Strict):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: Annotated[int, Field(ge=0)]
    audio_end_ms: Annotated[int, Field(ge=0)]
    event_id: str | None = None


class ConversationItemDelete(_Strict):
    type: Literal["conversation.item.delete"]
    item_id: str
    event_id: str | None = None


class ConversationItemRetrieve(_Strict):
    type: Literal["conversation.item.retrieve"]
    item_id: str
    event_id: str | None = None


class ResponseCreate(_Strict):
    type: Literal["response.create"]
    response: ResponseCreateParams | None = None
    event_id: str | None = None


class ResponseCancel(_Strict):
    type: Literal["response.cancel"]
    response_id: str | None = None
    event_id: str | None = None


class OutputAudioBufferClear(_Strict):
    type: Literal["output_audio_buffer.clear"]
    event_id: str | None = None


class SessionClose(_Strict):
    type: Literal["session.close"]
    event_id: str | None = None


#: Client event type -> model, in the order the production server lists them.
CLIENT_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "session.update": SessionUpdate,
    "session.close": SessionClose,
    "input_audio_buffer.append": InputAudioBufferAppend,
    "input_audio_buffer.commit": InputAudioBufferCommit,
    "input_audio_buffer.clear": InputAudioBufferClear,
    "conversation.item.create": ConversationItemCreate,
    "conversation.item.truncate": ConversationItemTruncate,
    "conversation.item.delete": ConversationItemDelete,
    "conversation.item.retrieve": ConversationItemRetrieve,
    "response.create": ResponseCreate,
    "response.cancel": ResponseCancel,
    "output_audio_buffer.clear": OutputAudioBufferClear,
}
