"""Amazon Nova Sonic wire format: strict input-event models, event builders and output parsing.

Every Nova event is JSON of the shape ``{"event": {"<name>": {...}}}``; the transport carries
each one inside a signed event-stream envelope (that part belongs to the SDK). No official SDK
models these payloads, so the pydantic models below are written from the AWS documentation
(``../shared/reference/protocols.md`` §3.3 and §3.5) with unknown keys forbidden. The emulator
validates what clients send against them; tests validate every event our client sends.

Our client builds its events with the small functions below (plain dicts and ``json.dumps``).

Besides Nova's own events, the transport hands the protocol two frames of its own, derived from
what the SDK reports (they cannot collide with Nova events, which always have an ``event`` key):

* ``{"streamAccepted": {"credentialsExpireIn": 900.0}}``: the service answered the request with
  HTTP 200: the stream is up (the seconds its credentials have left, when they expire).
* ``{"exception": {"type": "ValidationException", "message": "...", "status": 400}}``: a
  modelled error, either the HTTP response before the stream (``status`` set) or an
  ``:message-type exception`` message inside it; the stream ends after it.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...events import Usage

__all__ = [
    "INPUT_RATE",
    "INTERRUPTED_TEXT",
    "MAX_HISTORY_BYTES",
    "MAX_TEXT_BYTES",
    "DEFAULT_MODEL",
    "MODELS",
    "MODEL_REGIONS",
    "RETIRED_MODELS",
    "OUTPUT_RATE",
    "VOICES",
    "InputEvent",
    "Output",
    "parse_output",
    "usage_of",
]

#: Caller audio rate we send, and the model's audio rate we ask for.
INPUT_RATE = 16000
OUTPUT_RATE = 24000

#: Nova 2.5 Sonic (GA 2026-10-05) has no ``-v1:0`` suffix; it speaks the Nova 2 protocol.
DEFAULT_MODEL = "amazon.nova-2-5-sonic"
#: Models Bedrock serves; all take ``turnDetectionConfiguration`` (endpointing sensitivity).
MODELS = frozenset({DEFAULT_MODEL, "amazon.nova-2-sonic-v1:0"})
#: Retired models: (end-of-life date, replacement).
RETIRED_MODELS = {"amazon.nova-sonic-v1:0": ("2026-09-14", DEFAULT_MODEL)}
#: The regions that serve a model (models not listed are not checked).
MODEL_REGIONS = {
    DEFAULT_MODEL: frozenset({"us-east-1", "us-west-2", "eu-north-1", "ap-northeast-1"}),
}
#: Nova 2 Sonic voices (also Nova 2.5's).
VOICES = frozenset(
    {
        "matthew",
        "tiffany",
        "amy",
        "olivia",
        "lupe",
        "carlos",
        "ambre",
        "florian",
        "lennart",
        "beatrice",
        "lorenzo",
        "tina",
        "carolina",
        "leo",
        "kiara",
        "arjun",
    }
)
#: The text content of an ASSISTANT ``textOutput`` that reports a barge-in, spaces included.
INTERRUPTED_TEXT = '{ "interrupted" : true }'
#: Nova's limits: one ``textInput`` content, and the whole chat history.
MAX_TEXT_BYTES = 1024
MAX_HISTORY_BYTES = 40 * 1024

Role = Literal["SYSTEM", "USER", "ASSISTANT", "TOOL", "SYSTEM_SPEECH"]
Rate = Literal[8000, 16000, 24000]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- input events (client -> model) -----------------------------------------------------------


class InferenceConfiguration(_Strict):
    maxTokens: Annotated[int, Field(ge=1)] | None = None
    topP: Annotated[float, Field(ge=0, le=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None


class TurnDetectionConfiguration(_Strict):
    endpointingSensitivity: Literal["HIGH", "MEDIUM", "LOW"]


class SessionStart(_Strict):
    inferenceConfiguration: InferenceConfiguration
    turnDetectionConfiguration: TurnDetectionConfiguration | None = None


class TextConfiguration(_Strict):
    mediaType: Literal["text/plain"]


class AudioOutputConfiguration(_Strict):
    mediaType: Literal["audio/lpcm"]
    sampleRateHertz: Rate
    sampleSizeBits: Literal[16]
    channelCount: Literal[1]
    voiceId: str
    encoding: Literal["base64"]
    audioType: Literal["SPEECH"]


class ToolUseOutputConfiguration(_Strict):
    mediaType: Literal["application/json"]


class InputSchema(_Strict):
    # The documented form is a stringified JSON Schema; some clients send an object.
    json_: Annotated[str | dict[str, Any], Field(alias="json")]


class ToolSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str = ""
    inputSchema: InputSchema


class Tool(_Strict):
    toolSpec: ToolSpec


class ToolConfiguration(_Strict):
    tools: list[Tool]
    toolChoice: dict[str, Any] | None = None


class PromptStart(_Strict):
    promptName: Annotated[str, Field(min_length=1)]
    textOutputConfiguration: TextConfiguration
    audioOutputConfiguration: AudioOutputConfiguration
    toolUseOutputConfiguration: ToolUseOutputConfiguration | None = None
    toolConfiguration: ToolConfiguration | None = None


class AudioInputConfiguration(_Strict):
    mediaType: Literal["audio/lpcm"]
    sampleRateHertz: Rate
    sampleSizeBits: Literal[16]
    channelCount: Literal[1]
    audioType: Literal["SPEECH"]
    encoding: Literal["base64"]


class ToolResultInputConfiguration(_Strict):
    toolUseId: Annotated[str, Field(min_length=1)]
    type: Literal["TEXT"]
    textInputConfiguration: TextConfiguration


class ContentStart(_Strict):
    promptName: str
    contentName: Annotated[str, Field(min_length=1)]
    type: Literal["TEXT", "AUDIO", "TOOL"]
    interactive: bool
    role: Role
    textInputConfiguration: TextConfiguration | None = None
    audioInputConfiguration: AudioInputConfiguration | None = None
    toolResultInputConfiguration: ToolResultInputConfiguration | None = None


class ContentInput(_Strict):
    """``textInput``, ``audioInput`` and ``toolResult`` share this shape."""

    promptName: str
    contentName: str
    content: str


class ContentEnd(_Strict):
    promptName: str
    contentName: str


class PromptEnd(_Strict):
    promptName: str


class SessionEnd(_Strict):
    pass


class _EventBody(_Strict):
    sessionStart: SessionStart | None = None
    promptStart: PromptStart | None = None
    contentStart: ContentStart | None = None
    textInput: ContentInput | None = None
    audioInput: ContentInput | None = None
    toolResult: ContentInput | None = None
    contentEnd: ContentEnd | None = None
    promptEnd: PromptEnd | None = None
    sessionEnd: SessionEnd | None = None


class InputEvent(_Strict):
    """One client event. :meth:`parse` also checks it names exactly one event."""

    event: _EventBody

    @classmethod
    def parse(cls, data: object) -> tuple[str, BaseModel]:
        """``(name, body)`` of a client event (raises ``ValueError``/``ValidationError``)."""
        model = cls.model_validate(data)
        names = list(model.event.model_fields_set)
        if len(names) != 1:
            raise ValueError(
                f"an event must name exactly one event type, got {sorted(names) or 'none'}"
            )
        body = getattr(model.event, names[0])
        if body is None:
            raise ValueError(f"event {names[0]!r} has no body")
        return names[0], body


# -- builders (our client) ---------------------------------------------------------------------


def dumps(name: str, body: dict[str, Any]) -> str:
    return json.dumps({"event": {name: body}}, separators=(",", ":"))


def session_start(
    max_tokens: int, top_p: float, temperature: float, endpointing: str | None
) -> str:
    body: dict[str, Any] = {
        "inferenceConfiguration": {
            "maxTokens": max_tokens,
            "topP": top_p,
            "temperature": temperature,
        }
    }
    if endpointing is not None:
        body["turnDetectionConfiguration"] = {"endpointingSensitivity": endpointing}
    return dumps("sessionStart", body)


def prompt_start(prompt: str, voice: str, tools: list[dict[str, Any]]) -> str:
    body: dict[str, Any] = {
        "promptName": prompt,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": OUTPUT_RATE,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": voice,
            "encoding": "base64",
            "audioType": "SPEECH",
        },
    }
    if tools:
        body["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        body["toolConfiguration"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": tool["name"],
                        "description": tool["description"],
                        # Nova wants the JSON Schema as a string.
                        "inputSchema": {"json": json.dumps(tool["parameters"])},
                    }
                }
                for tool in tools
            ]
        }
    return dumps("promptStart", body)


def text_block(
    prompt: str, content: str, role: str, pieces: list[str], interactive: bool
) -> list[str]:
    """A TEXT content block: ``contentStart``, one ``textInput`` per piece, ``contentEnd``."""
    events = [
        dumps(
            "contentStart",
            {
                "promptName": prompt,
                "contentName": content,
                "type": "TEXT",
                "interactive": interactive,
                "role": role,
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        )
    ]
    events += [
        dumps("textInput", {"promptName": prompt, "contentName": content, "content": piece})
        for piece in pieces
    ]
    events.append(content_end(prompt, content))
    return events


def audio_start(prompt: str, content: str) -> str:
    return dumps(
        "contentStart",
        {
            "promptName": prompt,
            "contentName": content,
            "type": "AUDIO",
            "interactive": True,
            "role": "USER",
            "audioInputConfiguration": {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": INPUT_RATE,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        },
    )


def audio_input(prompt: str, content: str, pcm: bytes) -> str:
    return dumps(
        "audioInput",
        {
            "promptName": prompt,
            "contentName": content,
            "content": base64.b64encode(pcm).decode("ascii"),
        },
    )


def tool_result_block(prompt: str, content: str, tool_use_id: str, result: str) -> list[str]:
    return [
        dumps(
            "contentStart",
            {
                "promptName": prompt,
                "contentName": content,
                "interactive": False,
                "type": "TOOL",
                "role": "TOOL",
                "toolResultInputConfiguration": {
                    "toolUseId": tool_use_id,
                    "type": "TEXT",
                    "textInputConfiguration": {"mediaType": "text/plain"},
                },
            },
        ),
        dumps("toolResult", {"promptName": prompt, "contentName": content, "content": result}),
        content_end(prompt, content),
    ]


def content_end(prompt: str, content: str) -> str:
    return dumps("contentEnd", {"promptName": prompt, "contentName": content})


def prompt_end(prompt: str) -> str:
    return dumps("promptEnd", {"promptName": prompt})


def session_end() -> str:
    return dumps("sessionEnd", {})


# -- output (model -> client) ------------------------------------------------------------------

#: ``(kind, body)``: kind is a Nova output event name, ``"streamAccepted"`` or ``"exception"``.
Output = tuple[str, dict[str, Any]]


def parse_output(frame: str | bytes) -> Output:
    """Split one frame from the transport into its kind and body (raises ``ValueError``)."""
    data = json.loads(frame)
    if not isinstance(data, dict):
        raise ValueError("a frame must be a JSON object")
    for synthetic in ("streamAccepted", "exception"):
        if synthetic in data:
            body = data[synthetic]
            return synthetic, body if isinstance(body, dict) else {}
    event = data.get("event")
    if not isinstance(event, dict) or len(event) != 1:
        raise ValueError(f"not a Nova event: {str(data)[:120]}")
    ((name, body),) = event.items()
    if not isinstance(body, dict):
        raise ValueError(f"Nova event {name!r} has a non-object body")
    return name, body


def generation_stage(content_start: dict[str, Any]) -> str | None:
    """``"FINAL"``/``"SPECULATIVE"`` from ``additionalModelFields`` (a JSON string), if any."""
    fields = content_start.get("additionalModelFields")
    if isinstance(fields, str):
        try:
            fields = json.loads(fields)
        except ValueError:
            return None
    if isinstance(fields, dict):
        stage = fields.get("generationStage")
        return stage if isinstance(stage, str) else None
    return None


def is_interrupted_marker(text: str) -> bool:
    """True for the barge-in text ``{ "interrupted" : true }`` (any spacing)."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return bool(value == {"interrupted": True})


def usage_of(body: dict[str, Any]) -> tuple[Usage, dict[str, Any]]:
    """A ``usageEvent``: this answer's token counts (``details.delta``), and the running
    ``totalInputTokens``/``totalOutputTokens``/``totalTokens`` the event carries."""
    delta = (body.get("details") or {}).get("delta") or {}
    inp, out = delta.get("input") or {}, delta.get("output") or {}
    in_speech, in_text = int(inp.get("speechTokens", 0)), int(inp.get("textTokens", 0))
    out_speech, out_text = int(out.get("speechTokens", 0)), int(out.get("textTokens", 0))
    usage = Usage(
        input_tokens=in_speech + in_text,
        output_tokens=out_speech + out_text,
        total_tokens=in_speech + in_text + out_speech + out_text,
        input_audio_tokens=in_speech,
        input_text_tokens=in_text,
        output_audio_tokens=out_speech,
        output_text_tokens=out_text,
    )
    keys = ("totalInputTokens", "totalOutputTokens", "totalTokens")
    return usage, {key: body[key] for key in keys if key in body}
