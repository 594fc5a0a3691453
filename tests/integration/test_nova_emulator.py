"""The Nova emulator's own checks: Nova's rules, event-stream framing, signatures, HTTP/2.

Driven by the official SDK (for event-level rules) and by a raw HTTP/2 client (for what the SDK
never gets wrong: damaged frames, broken signature chains, unsigned events).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import json
import ssl

import h2.connection
import h2.events
import pytest
from aws_sdk_bedrock_runtime.models import ValidationException
from aws_sdk_signers import AsyncEventSigner
from smithy_aws_core.identity import AWSCredentialsIdentity
from smithy_aws_event_stream.events import Event, EventHeaderEncoder, EventMessage

from s2s.emulators.nova import DEFAULT_CREDENTIALS, NovaEmulator
from s2s.emulators.nova.eventstream import encode
from s2s.emulators.nova.sigv4 import canonical_request, request_signature
from s2s.emulators.tls import self_signed

from ..conftest import SECOND
from ..nova_sdk import (
    audio_input,
    audio_start,
    open_sdk_stream,
    prompt_start,
    session_start,
    text_block,
    tool_result,
)


@pytest.fixture
async def emulator():
    async with NovaEmulator() as emulator:
        yield emulator


def _opening(p: str) -> list[dict]:
    return [session_start(), prompt_start(p), *text_block(p, "SYSTEM", "Be kind.")]


def _audio(p: str) -> dict:
    return audio_start(p, "audio-1")


RULES = {
    "session_start_first": (lambda p: [prompt_start(p)], "The first event must be sessionStart"),
    "system_first": (
        lambda p: [session_start(), prompt_start(p), *text_block(p, "USER", "hi")],
        "First content must have SYSTEM role",
    ),
    "one_system": (
        lambda p: [*_opening(p), *text_block(p, "SYSTEM", "again")],
        "Duplicate SYSTEM content. SYSTEM content can only be provided once per prompt.",
    ),
    "history_starts_with_user": (
        lambda p: [*_opening(p), *text_block(p, "ASSISTANT", "Hello!")],
        "Chat history must start with a USER message",
    ),
    "text_input_1kb": (
        lambda p: [*_opening(p), *text_block(p, "USER", "x" * 1100)],
        "textInput content is 1100 bytes; the limit is 1024 bytes",
    ),
    "history_40kb": (
        lambda p: [
            *_opening(p),
            *[
                e
                for i in range(42)
                for e in text_block(p, ("USER", "ASSISTANT")[i % 2], "y" * 1000)
            ],
        ],
        "Chat history exceeds 40 KB",
    ),
    "one_audio_block": (
        lambda p: [*_opening(p), _audio(p), audio_start(p, "audio-2")],
        "Only one AUDIO content can be open per prompt",
    ),
    "history_before_audio": (
        lambda p: [*_opening(p), _audio(p), *text_block(p, "USER", "late history")],
        "Chat history can only be sent before the AUDIO content starts",
    ),
    "tool_result_needs_a_tool_use": (
        lambda p: [*_opening(p), _audio(p), *tool_result(p, "tooluse-nobody", "{}")],
        "Tool Response parsing error: no toolUse with toolUseId 'tooluse-nobody'",
    ),
    "prompt_name": (
        lambda p: [*_opening(p), _audio(p), audio_input("other-prompt", "audio-1", b"\0\0")],
        "promptName 'other-prompt' does not match the active prompt",
    ),
    "open_content": (
        lambda p: [*_opening(p), audio_input(p, "audio-9", b"\0\0")],
        "audioInput for contentName 'audio-9', which is not open",
    ),
    "base64_audio": (
        lambda p: [
            *_opening(p),
            _audio(p),
            {"event": {"audioInput": {"promptName": p, "contentName": "audio-1", "content": "%%"}}},
        ],
        "audioInput content is not valid base64",
    ),
    "close_order": (
        lambda p: [*_opening(p), _audio(p), {"event": {"promptEnd": {"promptName": p}}}],
        "promptEnd while content is still open: AUDIO 'audio-1'",
    ),
    "session_end_after_prompt_end": (
        lambda p: [*_opening(p), {"event": {"sessionEnd": {}}}],
        "sessionEnd before promptEnd",
    ),
    "unknown_event": (
        lambda p: [*_opening(p), {"event": {"audioChunk": {"promptName": p}}}],
        "Invalid input event: event.audioChunk: Extra inputs are not permitted",
    ),
    "unknown_field": (
        lambda p: [{"event": {"sessionStart": {"inferenceConfiguration": {}, "voice": "x"}}}],
        "Invalid input event: event.sessionStart.voice: Extra inputs are not permitted",
    ),
    "two_events_in_one": (
        lambda p: [{"event": {"sessionStart": {"inferenceConfiguration": {}}, "sessionEnd": {}}}],
        "an event must name exactly one event type",
    ),
    "voice": (
        lambda p: [
            session_start(),
            {
                "event": {
                    "promptStart": {
                        **prompt_start(p)["event"]["promptStart"],
                        "audioOutputConfiguration": {
                            **prompt_start(p)["event"]["promptStart"]["audioOutputConfiguration"],
                            "voiceId": "alloy",
                        },
                    }
                }
            },
        ],
        "Invalid voiceId 'alloy'",
    ),
    "tool_schema_is_json": (
        lambda p: [
            session_start(),
            prompt_start(
                p,
                [{"toolSpec": {"name": "t", "description": "", "inputSchema": {"json": "{nope"}}}],
            ),
        ],
        "Tool 't': inputSchema.json is not valid JSON",
    ),
}


async def _drain(sdk) -> None:
    while await sdk.receive() is not None:
        pass


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_nova_rules_are_enforced_with_validation_exceptions(emulator, rule):
    script, message = RULES[rule]
    sdk = await open_sdk_stream(emulator)
    try:
        for event in script(sdk.prompt):
            await sdk.send(event)
        with pytest.raises(ValidationException) as info:
            await asyncio.wait_for(_drain(sdk), 5 * SECOND)
        assert message in info.value.message
        assert info.value.message.startswith("RequestId=")
    finally:
        await sdk.close()
    await asyncio.sleep(0.05)
    assert emulator.endings == ["validationException"]


async def test_an_unknown_model_is_refused_before_the_stream(emulator):
    sdk = await open_sdk_stream(emulator, model="amazon.titan-text-express-v1")
    try:
        with pytest.raises(ValidationException, match="The provided model identifier is invalid"):
            await asyncio.wait_for(sdk.receive(), 5 * SECOND)
    finally:
        await sdk.close()
    assert emulator.refusals == [(400, "ValidationException")]


async def test_history_and_cross_modal_text_are_accepted(emulator):
    sdk = await open_sdk_stream(emulator)
    p = sdk.prompt
    try:
        for event in [
            *_opening(p),
            *text_block(p, "USER", "my name is Ada"),
            *text_block(p, "ASSISTANT", "Hello Ada!"),
            _audio(p),
            *text_block(p, "USER", "recall", interactive=True),
        ]:
            await sdk.send(event)
        events = await asyncio.wait_for(
            sdk.receive_until(
                lambda e: (
                    e.get("contentEnd", {}).get("stopReason") == "END_TURN"
                    and e["contentEnd"]["type"] == "TEXT"
                )
            ),
            10 * SECOND,
        )
        texts = [e["textOutput"]["content"] for e in events if "textOutput" in e]
        assert texts[-1] == 'Earlier you said: "my name is Ada".'
    finally:
        await sdk.close()


# -- raw HTTP/2 -----------------------------------------------------------------------------


class RawStream:
    """A hand-made signed request on one HTTP/2 stream (signatures from the SDK's signer)."""

    def __init__(self, emulator: NovaEmulator) -> None:
        self.emulator = emulator
        self.h2 = h2.connection.H2Connection()
        self.received = bytearray()
        self.ended = asyncio.Event()
        self.status: str | None = None

    async def open(self, headers: dict[str, str] | None = None) -> None:
        context = ssl.create_default_context(cafile=str(self.emulator.ca_file))
        context.set_alpn_protocols(["h2"])
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.emulator.port, ssl=context, server_hostname="localhost"
        )
        self.h2.initiate_connection()
        now = datetime.datetime.now(datetime.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        path = "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream"
        values = {
            "content-type": "application/vnd.amazon.eventstream",
            "host": f"localhost:{self.emulator.port}",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS",
            "x-amz-date": amz_date,
            **(headers or {}),
        }
        signed = sorted(values)
        scope = f"{amz_date[:8]}/us-east-1/bedrock/aws4_request"
        canonical = canonical_request(
            "POST", path, "", values, signed, values["x-amz-content-sha256"]
        )
        self.seed = request_signature(
            canonical, amz_date, scope, DEFAULT_CREDENTIALS.secret_access_key
        )
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={DEFAULT_CREDENTIALS.access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={self.seed}"
        )
        self.h2.send_headers(
            1,
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", values.pop("host")),
                (":path", path),
                *values.items(),
                ("authorization", authorization),
            ],
        )
        self.writer.write(self.h2.data_to_send())
        self.signer = AsyncEventSigner(
            initial_signature=self.seed.encode(), event_encoder_cls=EventHeaderEncoder
        )
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    self.status = dict(event.headers)[b":status"].decode()
                elif isinstance(event, h2.events.DataReceived):
                    self.received += event.data
                    self.h2.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.set()
            self.writer.write(self.h2.data_to_send())

    async def signed(self, inner: bytes) -> bytes:
        identity = AWSCredentialsIdentity(
            access_key_id=DEFAULT_CREDENTIALS.access_key_id,
            secret_access_key=DEFAULT_CREDENTIALS.secret_access_key,
        )
        props = {"region": "us-east-1", "service": "bedrock"}
        message = await self.signer.sign(
            event=EventMessage(**_inner_parts(inner)), identity=identity, properties=props
        )
        return message.encode()

    def send(self, data: bytes) -> None:
        self.h2.send_data(1, data)
        self.writer.write(self.h2.data_to_send())

    async def answer(self) -> list[Event]:
        await asyncio.wait_for(self.ended.wait(), 5 * SECOND)
        source = io.BytesIO(bytes(self.received))
        events = []
        while (event := Event.decode(source)) is not None:
            events.append(event)
        return events

    async def close(self) -> None:
        self.reading.cancel()
        self.writer.close()


def _inner_parts(inner: bytes) -> dict:
    event = Event.decode(io.BytesIO(inner))
    assert event is not None
    return {"headers": dict(event.message.headers), "payload": event.message.payload}


def chunk(event: dict) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()})
    return encode(
        {":message-type": "event", ":event-type": "chunk", ":content-type": "application/json"},
        payload.encode(),
    )


async def _raw_failure(emulator: NovaEmulator, frames) -> dict:
    raw = RawStream(emulator)
    await raw.open()
    try:
        for frame in await frames(raw):
            raw.send(frame)
        (event,) = await raw.answer()
        return dict(event.message.headers) | {"payload": event.message.payload}
    finally:
        await raw.close()


async def test_a_well_signed_raw_request_is_served(emulator):
    raw = RawStream(emulator)
    await raw.open()
    try:
        raw.send(await raw.signed(chunk(session_start())))
        await asyncio.sleep(0.2)
        assert raw.status == "200" and emulator.streams[-1].received == ["sessionStart"]
    finally:
        await raw.close()


async def test_a_broken_signature_chain_is_refused(emulator):
    async def frames(raw: RawStream) -> list[bytes]:
        await raw.signed(chunk(session_start()))  # signed, never sent: the chain skips it
        return [await raw.signed(chunk(session_start()))]

    answer = await _raw_failure(emulator, frames)
    assert answer[":message-type"] == "error"
    assert answer[":error-code"] == "InvalidSignatureException"
    assert "chain from the previous one" in answer[":error-message"]


async def test_an_unsigned_event_is_refused(emulator):
    async def frames(raw: RawStream) -> list[bytes]:
        return [encode({}, chunk(session_start()))]

    answer = await _raw_failure(emulator, frames)
    assert answer[":error-code"] == "InvalidSignatureException"
    assert "must be signed" in answer[":error-message"]


async def test_a_damaged_frame_is_refused(emulator):
    async def frames(raw: RawStream) -> list[bytes]:
        frame = bytearray(await raw.signed(chunk(session_start())))
        frame[-1] ^= 0xFF
        return [bytes(frame)]

    answer = await _raw_failure(emulator, frames)
    assert answer[":exception-type"] == "validationException"
    assert b"message CRC mismatch" in answer["payload"]


async def test_an_inner_message_must_be_a_json_chunk(emulator):
    async def frames(raw: RawStream) -> list[bytes]:
        inner = encode({":message-type": "event", ":event-type": "chunk"}, b'{"bytes": 42}')
        return [await raw.signed(inner)]

    answer = await _raw_failure(emulator, frames)
    assert b"The chunk payload must be" in answer["payload"]


async def test_request_headers_are_checked(emulator):
    raw = RawStream(emulator)
    await raw.open({"content-type": "application/json"})
    try:
        await asyncio.wait_for(raw.ended.wait(), 5 * SECOND)
        assert raw.status == "400"
        assert b"application/vnd.amazon.eventstream" in bytes(raw.received)
    finally:
        await raw.close()
    assert emulator.refusals == [(400, "ValidationException")]


async def test_only_http2_is_served(emulator):
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    context.set_alpn_protocols(["http/1.1"])

    async def http1_request() -> bytes:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", emulator.port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = await reader.read(100)
        writer.close()
        return answer

    try:
        answer = await asyncio.wait_for(http1_request(), 5 * SECOND)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b"" and emulator.requests == 0  # refused: no ALPN h2


async def test_a_dropped_connection_ends_every_stream(emulator):
    first = await open_sdk_stream(emulator)
    second = await open_sdk_stream(emulator)
    try:
        for sdk in (first, second):
            await sdk.send(session_start())
        await asyncio.sleep(0.2)
        assert len(emulator.live_streams) == 2
        assert emulator.drop_connections() >= 1
        await asyncio.sleep(0.2)
        assert emulator.live_streams == [] and emulator.endings == ["dropped", "dropped"]
    finally:
        for sdk in (first, second):
            await sdk.close()


async def test_several_streams_share_one_http2_connection(emulator):
    first = await open_sdk_stream(emulator)
    _, first.output = await first.stream.await_output()  # connected: the SDK pools the link
    second = await open_sdk_stream(emulator, http=first.http)
    try:
        for sdk in (first, second):
            for event in [*_opening(sdk.prompt), _audio(sdk.prompt)]:
                await sdk.send(event)
            for event in text_block(sdk.prompt, "USER", f"I am {sdk.prompt}", interactive=True):
                await sdk.send(event)
        for sdk in (first, second):
            events = await asyncio.wait_for(
                sdk.receive_until(lambda e: "textOutput" in e), 10 * SECOND
            )
            assert events[-1]["textOutput"]["content"] == f'You said: "I am {sdk.prompt}".'
        assert emulator.connections == 1 and len(emulator.live_streams) == 2
    finally:
        await first.stream.input_stream.close()
        await second.close()


async def test_a_given_certificate_is_served(tmp_path):
    files = self_signed(tmp_path)
    async with NovaEmulator(certfile=files.certfile, keyfile=files.keyfile) as emulator:
        assert emulator.ca_file is None  # nothing generated
        sdk = await open_sdk_stream(emulator, ca_file=str(files.cafile))
        try:
            await sdk.send(session_start())
            await asyncio.sleep(0.2)
            assert emulator.streams[-1].received == ["sessionStart"]
        finally:
            await sdk.close()
