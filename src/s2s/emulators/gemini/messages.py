"""Server messages of the Gemini Live protocol, shaped as the production server sends them.

camelCase only; every builder returns a dict that validates against
``google.genai.types.LiveServerMessage`` (the conformance tests check each kind). Proto3 JSON
leaves out fields at their default value, so a non-resumable ``sessionResumptionUpdate`` is
``{}`` and int64 fields (``lastConsumedClientMessageIndex``) are strings.
"""

from __future__ import annotations

import base64
from typing import Any

from ...providers.gemini_live.wire import OUTPUT_MIME

__all__ = [
    "audio",
    "go_away",
    "input_transcription",
    "output_transcription",
    "resumption_update",
    "server_content",
    "setup_complete",
    "tool_call",
    "tool_call_cancellation",
    "usage",
]


def setup_complete(session_id: str) -> dict[str, Any]:
    return {"setupComplete": {"sessionId": session_id}}


def server_content(**fields: Any) -> dict[str, Any]:
    return {"serverContent": fields}


def audio(pcm: bytes) -> dict[str, Any]:
    blob = {"mimeType": OUTPUT_MIME, "data": base64.b64encode(pcm).decode("ascii")}
    return server_content(modelTurn={"parts": [{"inlineData": blob}]})


def output_transcription(text: str) -> dict[str, Any]:
    return server_content(outputTranscription={"text": text})


def input_transcription(text: str, finished: bool) -> dict[str, Any]:
    transcription: dict[str, Any] = {"text": text}
    if finished:
        transcription["finished"] = True
    return server_content(inputTranscription=transcription)


def tool_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"toolCall": {"functionCalls": calls}}


def tool_call_cancellation(ids: list[str]) -> dict[str, Any]:
    return {"toolCallCancellation": {"ids": ids}}


def usage(prompt_text: int, prompt_audio: int, response_audio: int) -> dict[str, Any]:
    prompt = prompt_text + prompt_audio
    details = [
        {"modality": modality, "tokenCount": count}
        for modality, count in (("TEXT", prompt_text), ("AUDIO", prompt_audio))
        if count
    ]
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "responseTokenCount": response_audio,
        "totalTokenCount": prompt + response_audio,
    }
    if details:
        out["promptTokensDetails"] = details
    if response_audio:
        out["responseTokensDetails"] = [{"modality": "AUDIO", "tokenCount": response_audio}]
    return out


def go_away(seconds: float) -> dict[str, Any]:
    return {"goAway": {"timeLeft": f"{seconds:g}s"}}


def resumption_update(handle: str | None, last_consumed: int | None) -> dict[str, Any]:
    """A resumable update (``handle``), or ``{}``: the session cannot be resumed right now."""
    if handle is None:
        return {"sessionResumptionUpdate": {}}
    update: dict[str, Any] = {"newHandle": handle, "resumable": True}
    if last_consumed is not None:
        update["lastConsumedClientMessageIndex"] = str(last_consumed)
    return {"sessionResumptionUpdate": update}
