"""Gemini Live (BidiGenerateContent) wire format: strict client-message models and builders.

The pydantic models describe the client messages the Gemini Developer API accepts, the way its
proto3 JSON parser does: every *proto field* may be spelled in lowerCamelCase or in snake_case
(the official SDK mixes both), unknown fields are refused, and map keys and ``Struct`` values
(function ``args``, ``response``, JSON-Schema documents) are user data that is never renamed.
``parameters`` is Google's OpenAPI-subset ``Schema``, so JSON-Schema-only keywords in it
(``additionalProperties``, ``$schema``, ``const``, ...) are unknown fields; raw JSON Schema goes
in ``parametersJsonSchema``. The emulator validates what clients send against these models.

Our client builds its messages with the small functions at the bottom (camelCase, plain dicts and
``json.dumps``; the audio path is built by hand).

Reference: ``../shared/reference/protocols.md`` §2 and ``google.genai.types``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "API_VERSIONS",
    "INPUT_MIME",
    "INPUT_RATE",
    "OUTPUT_MIME",
    "OUTPUT_RATE",
    "PATH",
    "VOICES",
    "ClientMessage",
]

INPUT_RATE = 16000
OUTPUT_RATE = 24000
INPUT_MIME = f"audio/pcm;rate={INPUT_RATE}"
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE}"

API_VERSIONS = ("v1", "v1beta", "v1alpha")

#: The WebSocket path (group 1: API version, group 2: method).
PATH = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)

#: Prebuilt voices of the native-audio models.
VOICES = frozenset(
    {
        "Zephyr",
        "Puck",
        "Charon",
        "Kore",
        "Fenrir",
        "Leda",
        "Orus",
        "Aoede",
        "Callirrhoe",
        "Autonoe",
        "Enceladus",
        "Iapetus",
        "Umbriel",
        "Algieba",
        "Despina",
        "Erinome",
        "Algenib",
        "Rasalgethi",
        "Laomedeia",
        "Achernar",
        "Alnilam",
        "Schedar",
        "Gacrux",
        "Pulcherrima",
        "Achird",
        "Zubenelgenubi",
        "Vindemiatrix",
        "Sadachbia",
        "Sadaltager",
        "Sulafat",
    }
)

Behavior = Literal["BLOCKING", "NON_BLOCKING"]
Scheduling = Literal["SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"]
StartSensitivity = Literal[
    "START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"
]
EndSensitivity = Literal[
    "END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"
]
ActivityHandling = Literal[
    "ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"
]
TurnCoverage = Literal[
    "TURN_COVERAGE_UNSPECIFIED",
    "TURN_INCLUDES_ONLY_ACTIVITY",
    "TURN_INCLUDES_ALL_INPUT",
    "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
]
Modality = Literal["MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO"]
SchemaType = Literal[
    "TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"
]


class _Proto(BaseModel):
    """A proto message in proto3 JSON: camelCase or snake_case names, unknown names refused."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Empty(_Proto):
    pass


# -- content ----------------------------------------------------------------------------------


class Blob(_Proto):
    mime_type: str | None = None
    data: str | None = None  # base64
    display_name: str | None = None


class FileData(_Proto):
    mime_type: str | None = None
    file_uri: str | None = None


class FunctionCall(_Proto):
    id: str | None = None
    name: str | None = None
    args: dict[str, Any] | None = None  # a Struct: user data


class FunctionResponse(_Proto):
    id: str | None = None
    name: str | None = None
    response: dict[str, Any] | None = None  # a Struct: user data
    will_continue: bool | None = None
    scheduling: Scheduling | None = None


class Part(_Proto):
    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    thought: bool | None = None
    thought_signature: str | None = None


class Content(_Proto):
    role: str | None = None
    parts: list[Part] | None = None


# -- tools ------------------------------------------------------------------------------------


class Schema(_Proto):
    """The OpenAPI-3 subset ``Schema`` of the Gemini API (``parameters``)."""

    type: SchemaType | None = None
    format: str | None = None
    title: str | None = None
    description: str | None = None
    nullable: bool | None = None
    enum: list[str] | None = None
    max_items: int | str | None = None
    min_items: int | str | None = None
    properties: dict[str, Schema] | None = None  # keys are user data
    required: list[str] | None = None
    min_properties: int | str | None = None
    max_properties: int | str | None = None
    min_length: int | str | None = None
    max_length: int | str | None = None
    pattern: str | None = None
    example: Any = None
    any_of: list[Schema] | None = None
    property_ordering: list[str] | None = None
    default: Any = None
    items: Schema | None = None
    minimum: float | None = None
    maximum: float | None = None


class FunctionDeclaration(_Proto):
    name: str
    description: str | None = None
    behavior: Behavior | None = None
    parameters: Schema | None = None
    parameters_json_schema: Any = None  # raw JSON Schema: user data
    response: Schema | None = None
    response_json_schema: Any = None


class Tool(_Proto):
    function_declarations: list[FunctionDeclaration] | None = None
    google_search: Empty | None = None
    google_search_retrieval: dict[str, Any] | None = None
    code_execution: Empty | None = None
    url_context: Empty | None = None


# -- setup ------------------------------------------------------------------------------------


class PrebuiltVoiceConfig(_Proto):
    voice_name: str | None = None


class VoiceConfig(_Proto):
    prebuilt_voice_config: PrebuiltVoiceConfig | None = None


class SpeechConfig(_Proto):
    voice_config: VoiceConfig | None = None
    language_code: str | None = None


class ThinkingConfig(_Proto):
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None


class GenerationConfig(_Proto):
    candidate_count: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_modalities: list[Modality] | None = None
    speech_config: SpeechConfig | None = None
    media_resolution: str | None = None
    thinking_config: ThinkingConfig | None = None
    enable_affective_dialog: bool | None = None


class AutomaticActivityDetection(_Proto):
    disabled: bool | None = None
    start_of_speech_sensitivity: StartSensitivity | None = None
    end_of_speech_sensitivity: EndSensitivity | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


class RealtimeInputConfig(_Proto):
    automatic_activity_detection: AutomaticActivityDetection | None = None
    activity_handling: ActivityHandling | None = None
    turn_coverage: TurnCoverage | None = None


class SessionResumptionConfig(_Proto):
    handle: str | None = None
    transparent: bool | None = None


class SlidingWindow(_Proto):
    target_tokens: int | str | None = None


class ContextWindowCompressionConfig(_Proto):
    trigger_tokens: int | str | None = None
    sliding_window: SlidingWindow | None = None


class AudioTranscriptionConfig(_Proto):
    language_codes: list[str] | None = None


class ProactivityConfig(_Proto):
    proactive_audio: bool | None = None


class HistoryConfig(_Proto):
    initial_history_in_client_content: bool | None = None


class Setup(_Proto):
    model: str
    generation_config: GenerationConfig | None = None
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    realtime_input_config: RealtimeInputConfig | None = None
    session_resumption: SessionResumptionConfig | None = None
    context_window_compression: ContextWindowCompressionConfig | None = None
    input_audio_transcription: AudioTranscriptionConfig | None = None
    output_audio_transcription: AudioTranscriptionConfig | None = None
    proactivity: ProactivityConfig | None = None
    explicit_vad_signal: bool | None = None
    history_config: HistoryConfig | None = None


# -- the other client messages -------------------------------------------------------------------


class ClientContent(_Proto):
    turns: list[Content] | None = None
    turn_complete: bool | None = None


class RealtimeInput(_Proto):
    media_chunks: list[Blob] | None = None  # deprecated, still accepted
    audio: Blob | None = None
    video: Blob | None = None
    text: str | None = None
    audio_stream_end: bool | None = None
    activity_start: Empty | None = None
    activity_end: Empty | None = None


class ToolResponse(_Proto):
    function_responses: list[FunctionResponse] | None = None


class ToolsUpdate(_Proto):
    tools: list[Tool] | None = None


class ContextUpdate(_Proto):
    system_instruction: Content | None = None
    tools: ToolsUpdate | None = None


class ClientMessage(_Proto):
    """``BidiGenerateContentClientMessage``: exactly one of these fields is set."""

    setup: Setup | None = None
    client_content: ClientContent | None = None
    realtime_input: RealtimeInput | None = None
    tool_response: ToolResponse | None = None
    context_update: ContextUpdate | None = None


# -- builders for what our client sends ------------------------------------------------------------


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def audio(pcm: bytes) -> str:
    """``realtimeInput.audio`` for PCM16 16 kHz audio (built by hand: the hot path)."""
    return (
        '{"realtimeInput":{"audio":{"mimeType":"'
        + INPUT_MIME
        + '","data":"'
        + base64.b64encode(pcm).decode("ascii")
        + '"}}}'
    )


def realtime_input(**fields: Any) -> str:
    """``realtimeInput`` with camelCase ``fields`` (``text=``, ``audioStreamEnd=``, ...)."""
    return dumps({"realtimeInput": fields})


def text_part(text: str) -> dict[str, Any]:
    return {"text": text}


def function_call_part(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def function_response(
    call_id: str, name: str, response: dict[str, Any], scheduling: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": call_id, "name": name, "response": response}
    if scheduling:
        out["scheduling"] = scheduling
    return out


def tool_response(responses: list[dict[str, Any]]) -> str:
    return dumps({"toolResponse": {"functionResponses": responses}})


def client_content(turns: list[dict[str, Any]], turn_complete: bool) -> str:
    return dumps({"clientContent": {"turns": turns, "turnComplete": turn_complete}})


def b64decode(data: str) -> bytes:
    """Proto3 JSON ``bytes``: standard or URL-safe base64, padded or not (the SDK sends URL-safe).

    Raises:
        ValueError: not base64.
    """
    text = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_duration(value: object) -> float | None:
    """Seconds of a protobuf ``Duration`` in JSON (``"50s"``, ``"1.5s"``), or None."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None
