"""The official ``aws-sdk-bedrock-runtime`` client, used directly (not through s2s).

It is the independent client of the Nova emulator: it signs, frames and parses exactly as it
would against AWS. Configuration follows AWS's own snippet (protocols.md §3.8): the 0.12 config
API, the CRT HTTP/2 transport, and the CRT trust-store override for the emulator's CA.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
from aws_sdk_bedrock_runtime.models import (
    BidirectionalInputPayloadPart,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
)
from awscrt import io as crt_io
from smithy_http.aio.crt import AWSCRTHTTPClient

from s2s.emulators.nova import DEFAULT_CREDENTIALS, NovaEmulator

MODEL = "amazon.nova-2-5-sonic"


class SdkStream:
    def __init__(self, stream: Any, http: AWSCRTHTTPClient) -> None:
        self.stream = stream
        self.http = http
        self.output: Any = None
        self.prompt = str(uuid.uuid4())

    async def send(self, event: dict[str, Any]) -> None:
        await self.stream.input_stream.send(
            InvokeModelWithBidirectionalStreamInputChunk(
                value=BidirectionalInputPayloadPart(bytes_=json.dumps(event).encode())
            )
        )

    async def receive(self) -> dict[str, Any] | None:
        """The next Nova event (``None`` at the end); raises the SDK's typed exceptions."""
        if self.output is None:
            _, self.output = await self.stream.await_output()
        message = await self.output.receive()
        if message is None:
            return None
        event: dict[str, Any] = json.loads(message.value.bytes_)["event"]
        return event

    async def receive_until(self, predicate: Any) -> list[dict[str, Any]]:
        events = []
        while (event := await self.receive()) is not None:
            events.append(event)
            if predicate(event):
                return events
        raise AssertionError(f"stream ended before the expected event; got {events}")

    async def close(self) -> None:
        try:
            await self.stream.input_stream.close()
        except Exception:
            pass
        await self.http.close()


def _quiet_body_task_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """CRT's request-body task fails ("HTTP-stream has completed") whenever the server ends a
    stream before the client's body ends (every in-stream exception); nothing reads that error.
    It is the SDK's own noise, so it is not logged; anything else is."""
    future = context.get("future")
    if future is not None and "_set_request_body_generator" in repr(future):
        return
    loop.default_exception_handler(context)


async def open_sdk_stream(
    emulator: NovaEmulator,
    *,
    model: str = MODEL,
    access_key_id: str = DEFAULT_CREDENTIALS.access_key_id,
    secret_access_key: str = DEFAULT_CREDENTIALS.secret_access_key,
    http: AWSCRTHTTPClient | None = None,
    ca_file: str | None = None,
) -> SdkStream:
    """A started call; pass one ``http`` client to several calls to share its connection."""
    asyncio.get_running_loop().set_exception_handler(_quiet_body_task_errors)
    if http is None:
        http = AWSCRTHTTPClient()
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(None, ca_file or str(emulator.ca_file))
        http._tls_ctx = crt_io.ClientTlsContext(options)
    config = await AsyncBedrockRuntimeConfig.resolve(
        endpoint_uri=emulator.url,
        region="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        transport=http,
    )
    client = AsyncBedrockRuntimeClient(config=config)
    stream = await client.invoke_model_with_bidirectional_stream(
        InvokeModelWithBidirectionalStreamOperationInput(model_id=model)
    )
    return SdkStream(stream, http)


# -- Nova input events, written out as AWS documents them (not with s2s's builders) ----------


def session_start() -> dict[str, Any]:
    return {
        "event": {
            "sessionStart": {
                "inferenceConfiguration": {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
            }
        }
    }


def prompt_start(prompt: str, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "promptName": prompt,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": 24000,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": "matthew",
            "encoding": "base64",
            "audioType": "SPEECH",
        },
    }
    if tools:
        body["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        body["toolConfiguration"] = {"tools": tools}
    return {"event": {"promptStart": body}}


def text_block(prompt: str, role: str, text: str, interactive: bool = False) -> list[dict]:
    name = str(uuid.uuid4())
    return [
        {
            "event": {
                "contentStart": {
                    "promptName": prompt,
                    "contentName": name,
                    "type": "TEXT",
                    "interactive": interactive,
                    "role": role,
                    "textInputConfiguration": {"mediaType": "text/plain"},
                }
            }
        },
        {"event": {"textInput": {"promptName": prompt, "contentName": name, "content": text}}},
        {"event": {"contentEnd": {"promptName": prompt, "contentName": name}}},
    ]


def audio_start(prompt: str, name: str) -> dict[str, Any]:
    return {
        "event": {
            "contentStart": {
                "promptName": prompt,
                "contentName": name,
                "type": "AUDIO",
                "interactive": True,
                "role": "USER",
                "audioInputConfiguration": {
                    "mediaType": "audio/lpcm",
                    "sampleRateHertz": 16000,
                    "sampleSizeBits": 16,
                    "channelCount": 1,
                    "audioType": "SPEECH",
                    "encoding": "base64",
                },
            }
        }
    }


def audio_input(prompt: str, name: str, pcm: bytes) -> dict[str, Any]:
    content = base64.b64encode(pcm).decode()
    return {
        "event": {"audioInput": {"promptName": prompt, "contentName": name, "content": content}}
    }


def tool_result(prompt: str, tool_use_id: str, content: str) -> list[dict]:
    name = str(uuid.uuid4())
    return [
        {
            "event": {
                "contentStart": {
                    "promptName": prompt,
                    "contentName": name,
                    "interactive": False,
                    "type": "TOOL",
                    "role": "TOOL",
                    "toolResultInputConfiguration": {
                        "toolUseId": tool_use_id,
                        "type": "TEXT",
                        "textInputConfiguration": {"mediaType": "text/plain"},
                    },
                }
            }
        },
        {"event": {"toolResult": {"promptName": prompt, "contentName": name, "content": content}}},
        {"event": {"contentEnd": {"promptName": prompt, "contentName": name}}},
    ]


def content_end(prompt: str, name: str) -> dict[str, Any]:
    return {"event": {"contentEnd": {"promptName": prompt, "contentName": name}}}


def close_events(prompt: str, audio: str) -> list[dict[str, Any]]:
    return [
        content_end(prompt, audio),
        {"event": {"promptEnd": {"promptName": prompt}}},
        {"event": {"sessionEnd": {}}},
    ]
