"""AudioHook upgrade signing (draft-ietf-httpbis-message-signatures-11, HMAC-SHA256)."""

from __future__ import annotations

import base64
import time

import pytest

from s2s.phone.genesys_signature import (
    SignatureOptions,
    audiohook_headers,
    authority,
    new_nonce,
    request_target,
    sign,
)

ORG = "d7934305-0972-4844-938e-9060eef73d05"
SESSION = "30b0e395-84d3-4570-ac13-9a62d8f514c0"
CORRELATION = "e160e428-53e2-487c-977d-96989bf5c99d"
API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="

VECTOR_INPUT = (
    'sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
    '"audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
    'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430'
)


def _vector(url: str = "wss://audiohook.example.com/api/v1/voicebiometrics/ws") -> dict[str, str]:
    return sign(
        url=url,
        organization_id=ORG,
        session_id=SESSION,
        correlation_id=CORRELATION,
        api_key=API_KEY,
        client_secret=SECRET,
        nonce="VGhpc0lzQVVuaXF1ZU5vbmNl",
        created=1641013200,
        expires=3282026430,
    ).as_dict()


def test_the_reference_test_vector():
    headers = _vector()
    assert headers["Signature"] == "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"
    assert headers["Signature-Input"] == VECTOR_INPUT


def test_the_default_port_is_not_part_of_the_authority():
    assert _vector("wss://audiohook.example.com:443/api/v1/voicebiometrics/ws") == _vector()
    assert authority("wss://AudioHook.Example.com:8443/x") == "audiohook.example.com:8443"
    assert authority("ws://127.0.0.1:80/x") == "127.0.0.1"


def test_the_request_target_keeps_the_query_string():
    assert request_target("wss://h.example/a/b?tenant=acme&x=1") == "/a/b?tenant=acme&x=1"
    assert _vector("wss://audiohook.example.com/api/v1/voicebiometrics/ws?x=1") != _vector()


def test_a_fresh_signature_has_a_24_character_nonce_and_a_30_s_lifetime():
    before = int(time.time())
    signed = sign(
        url="wss://h.example/ws",
        organization_id=ORG,
        session_id=SESSION,
        correlation_id=CORRELATION,
        api_key=API_KEY,
        client_secret=SECRET,
    )
    params = dict(p.split("=", 1) for p in signed.signature_input.split(";")[1:])
    assert len(params["nonce"].strip('"')) == 24 == len(new_nonce())
    assert before <= int(params["created"]) <= before + 2
    assert int(params["expires"]) == int(params["created"]) + 30


def test_the_key_is_the_decoded_secret():
    with pytest.raises(ValueError, match="not valid base64"):
        sign(
            url="wss://h.example/ws",
            organization_id=ORG,
            session_id=SESSION,
            correlation_id=CORRELATION,
            api_key=API_KEY,
            client_secret="not base64!",
        )


def test_headers_without_a_secret_are_unsigned():
    headers = audiohook_headers(
        "wss://h.example/ws",
        api_key=API_KEY,
        client_secret=None,
        organization_id=ORG,
        session_id=SESSION,
        correlation_id=CORRELATION,
    )
    assert headers == {
        "Audiohook-Organization-Id": ORG,
        "Audiohook-Session-Id": SESSION,
        "Audiohook-Correlation-Id": CORRELATION,
        "X-API-KEY": API_KEY,
    }


def test_signature_faults():
    wrong = base64.b64encode(b"another secret").decode()
    headers = audiohook_headers(
        "wss://h.example/ws",
        api_key=API_KEY,
        client_secret=SECRET,
        organization_id=ORG,
        session_id=SESSION,
        correlation_id=CORRELATION,
        options=SignatureOptions(
            secret=wrong, created_offset_s=-60, keyid="other", organization_header="org-x"
        ),
    )
    assert headers["Audiohook-Organization-Id"] == "org-x"
    assert 'keyid="other"' in headers["Signature-Input"]
    created = int(headers["Signature-Input"].split("created=")[1].split(";")[0])
    assert created <= time.time() - 59
