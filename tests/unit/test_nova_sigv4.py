"""The emulator's SigV4 checks: AWS's documented example, and the SDK's signers as oracles."""

from __future__ import annotations

import datetime
import hashlib
import io

import pytest
from aws_sdk_signers import AsyncEventSigner
from smithy_aws_core.identity import AWSCredentialsIdentity
from smithy_aws_event_stream.events import Event, EventHeaderEncoder, EventMessage

from s2s.emulators.nova.eventstream import Message, decode
from s2s.emulators.nova.sigv4 import (
    ChunkVerifier,
    Credentials,
    SignatureError,
    SignedRequest,
    canonical_request,
    request_signature,
    signing_key,
    verify_request,
)

DOC_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_signing_key_matches_the_aws_documentation_example():
    key = signing_key(DOC_SECRET, "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_request_signature_matches_the_aws_documentation_example():
    headers = {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "host": "iam.amazonaws.com",
        "x-amz-date": "20150830T123600Z",
    }
    canonical = canonical_request(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        headers,
        ["content-type", "host", "x-amz-date"],
        hashlib.sha256(b"").hexdigest(),
    )
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    )
    signature = request_signature(
        canonical, "20150830T123600Z", "20150830/us-east-1/iam/aws4_request", DOC_SECRET
    )
    assert signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"


CREDS = Credentials("AKIDTEST", "secret/key+1")
NOW = datetime.datetime(2026, 11, 23, 22, 28, 20, tzinfo=datetime.UTC)


def _headers(signature: str | None = None, **changes: str) -> dict[str, str]:
    headers = {
        ":authority": "localhost:8443",
        "content-type": "application/vnd.amazon.eventstream",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS",
        "x-amz-date": "20261123T222820Z",
    }
    path = "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream"
    signed = ["content-type", "host", "x-amz-content-sha256", "x-amz-date"]
    canonical = canonical_request(
        "POST",
        path,
        "",
        {**headers, "host": headers[":authority"]},
        signed,
        headers["x-amz-content-sha256"],
    )
    scope = "20261123/us-east-1/bedrock/aws4_request"
    sig = signature or request_signature(
        canonical, headers["x-amz-date"], scope, CREDS.secret_access_key
    )
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential=AKIDTEST/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={sig}"
    )
    headers.update(changes)
    return headers


def _verify(headers: dict[str, str], now: datetime.datetime = NOW) -> SignedRequest:
    return verify_request(
        "POST",
        "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream",
        "",
        headers,
        {CREDS.access_key_id: CREDS},
        region="us-east-1",
        now=now,
    )


def test_a_well_signed_request_passes_and_seeds_the_chain():
    signed = _verify(_headers())
    assert signed.credentials == CREDS and len(signed.signature) == 64


@pytest.mark.parametrize(
    ("headers", "now", "error_type", "message"),
    [
        (_headers("0" * 64), NOW, "InvalidSignatureException", "does not match"),
        (
            {k: v for k, v in _headers().items() if k != "authorization"},
            NOW,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        (_headers(authorization="Bearer x"), NOW, "IncompleteSignatureException", "Credential"),
        (
            _headers(**{"x-amz-security-token": "tok"}),
            NOW,
            "UnrecognizedClientException",
            "security token",
        ),
        (
            _headers(),
            NOW + datetime.timedelta(minutes=6),
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            _headers(**{"content-type": "application/json"}),
            NOW,
            "InvalidSignatureException",
            "does not match",
        ),
    ],
)
def test_bad_requests_get_the_aws_error_type(headers, now, error_type, message):
    with pytest.raises(SignatureError, match=message) as info:
        _verify(headers, now)
    assert info.value.error_type == error_type


def test_unknown_key_and_wrong_region_are_refused():
    headers = _headers()
    with pytest.raises(SignatureError) as info:
        verify_request("POST", "/", "", headers, {}, region="us-east-1", now=NOW)
    assert info.value.error_type == "UnrecognizedClientException"
    with pytest.raises(SignatureError, match="valid region") as info:
        verify_request("POST", "/", "", headers, {"AKIDTEST": CREDS}, region="eu-west-1", now=NOW)


async def _sdk_signed_envelopes(seed: str, payloads: list[bytes]) -> list[Message]:
    """Sign inner messages with the SDK's own event signer (the independent oracle)."""
    signer = AsyncEventSigner(initial_signature=seed.encode(), event_encoder_cls=EventHeaderEncoder)
    identity = AWSCredentialsIdentity(
        access_key_id=CREDS.access_key_id, secret_access_key=CREDS.secret_access_key
    )
    props = {"region": "us-east-1", "service": "bedrock"}
    out = []
    for payload in payloads:
        inner = EventMessage(headers={":event-type": "chunk"}, payload=payload)
        signed = await signer.sign(event=inner, identity=identity, properties=dict(props))
        out.append(decode(signed.encode()))
    final = await signer.sign_empty(event=EventMessage(), identity=identity, properties=dict(props))
    out.append(decode(final.encode()))
    return out


async def test_chunk_signatures_from_the_sdk_verify_in_a_chain():
    signed = _verify(_headers())
    envelopes = await _sdk_signed_envelopes(signed.signature, [b"one", b"two", b"three"])
    verifier = ChunkVerifier(signed)
    inners = [verifier.verify(env) for env in envelopes]
    assert [Event.decode(io.BytesIO(i)).message.payload for i in inners[:3]] == [
        b"one",
        b"two",
        b"three",
    ]
    assert inners[3] == b"" and verifier.finished


async def test_a_reordered_or_tampered_chunk_breaks_the_chain():
    signed = _verify(_headers())
    envelopes = await _sdk_signed_envelopes(signed.signature, [b"one", b"two"])
    verifier = ChunkVerifier(signed)
    with pytest.raises(SignatureError, match="chain from the previous"):
        verifier.verify(envelopes[1])  # skipped the first
    tampered = Message(headers=envelopes[0].headers, payload=envelopes[0].payload + b"!")
    with pytest.raises(SignatureError, match="does not match"):
        ChunkVerifier(signed).verify(tampered)
    with pytest.raises(SignatureError, match="must be signed"):
        ChunkVerifier(signed).verify(Message(headers={}, payload=b"x"))
