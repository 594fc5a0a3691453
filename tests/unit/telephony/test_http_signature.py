"""Genesys's HTTP message signature: the brief's test vector, and each policy failure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

import pytest

from s2s.telephony.http_signature import (
    COVERED_COMPONENTS,
    SignatureError,
    compute_signature,
    normalize_authority,
    sign,
    signature_base,
    signature_params,
    verify,
)
from s2s.telephony.structured_fields import (
    BareItem,
    MalformedFieldError,
    Token,
    parse_dictionary,
)

TARGET = "/api/v1/voicebiometrics/ws"
AUTHORITY = "audiohook.example.com"
API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
NONCE = "VGhpc0lzQVVuaXF1ZU5vbmNl"
CREATED = 1641013200
HEADERS = {
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": API_KEY,
}
VECTOR_INPUT = (
    'sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
    '"audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
    'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430'
)
VECTOR_SIGNATURE = "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"
VECTOR_BASE = "\n".join(
    [
        '"@request-target": /api/v1/voicebiometrics/ws',
        '"@authority": audiohook.example.com',
        '"audiohook-organization-id": d7934305-0972-4844-938e-9060eef73d05',
        '"audiohook-session-id": 30b0e395-84d3-4570-ac13-9a62d8f514c0',
        '"audiohook-correlation-id": e160e428-53e2-487c-977d-96989bf5c99d',
        '"x-api-key": SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh',
        '"@signature-params": ' + VECTOR_INPUT.removeprefix("sig1="),
    ]
)
NOW = 1_900_000_000.0  # any time; fresh signatures are made at NOW


def _vector_headers() -> dict[str, str]:
    return {**HEADERS, "signature-input": VECTOR_INPUT, "signature": VECTOR_SIGNATURE}


def _signed(
    headers: dict[str, str] | None = None,
    *,
    secret: str = SECRET,
    nonce: str = NONCE,
    created: int = int(NOW),
    expires: int | None = int(NOW) + 30,
) -> dict[str, str]:
    base = dict(HEADERS if headers is None else headers)
    signature = sign(
        target=TARGET,
        authority=AUTHORITY,
        headers=base,
        secret_b64=secret,
        nonce=nonce,
        created=created,
        expires=expires,
    )
    return {**base, **signature}


def _verify(headers: dict[str, str], now: float = NOW, target: str = TARGET) -> None:
    verify(target=target, authority=AUTHORITY, headers=headers, secret_b64=SECRET, now=now)


def test_the_brief_vector_base_is_rebuilt_exactly() -> None:
    params = signature_params(
        COVERED_COMPONENTS,
        {
            "keyid": API_KEY,
            "nonce": NONCE,
            "alg": "hmac-sha256",
            "created": CREATED,
            "expires": 3282026430,
        },
    )
    base = signature_base(
        target=TARGET,
        authority=AUTHORITY,
        headers=HEADERS,
        components=COVERED_COMPONENTS,
        params=params,
    )
    assert base == VECTOR_BASE
    mac = base64.b64encode(compute_signature(base, SECRET)).decode()
    assert f"sig1=:{mac}:" == VECTOR_SIGNATURE


def test_the_brief_vector_verifies() -> None:
    verify(
        target=TARGET,
        authority=AUTHORITY,
        headers=_vector_headers(),
        secret_b64=SECRET,
        now=CREATED + 1,
    )


def test_header_names_are_case_insensitive_and_sign_reproduces_the_vector() -> None:
    headers = {name.title(): value for name, value in _vector_headers().items()}
    verify(target=TARGET, authority=AUTHORITY, headers=headers, secret_b64=SECRET, now=CREATED)
    made = _signed(created=CREATED, expires=3282026430)
    assert made["signature-input"] == VECTOR_INPUT
    assert made["signature"] == VECTOR_SIGNATURE


def test_a_fresh_signature_verifies_and_a_query_is_part_of_the_target() -> None:
    _verify(_signed())
    headers = {**HEADERS}
    signature = sign(
        target=TARGET + "?tenant=acme",
        authority=AUTHORITY,
        headers=headers,
        secret_b64=SECRET,
        nonce=NONCE,
        created=int(NOW),
    )
    _verify({**headers, **signature}, target=TARGET + "?tenant=acme")
    with pytest.raises(SignatureError, match="does not match"):
        _verify({**headers, **signature}, target=TARGET)


def _mac_with_key(key: bytes) -> str:
    return base64.b64encode(hmac.new(key, VECTOR_BASE.encode(), hashlib.sha256).digest()).decode()


def _custom(
    *, components: Sequence[str] = COVERED_COMPONENTS, drop: str = "", **changes: BareItem
) -> dict[str, str]:
    """Correctly signed headers at NOW with other components or parameters."""
    params: dict[str, BareItem] = {"keyid": API_KEY, "nonce": NONCE, "alg": "hmac-sha256"}
    params["created"] = int(NOW)
    params |= changes
    params.pop(drop, None)
    serialized = signature_params(components, params)
    base = signature_base(
        target=TARGET,
        authority=AUTHORITY,
        headers=HEADERS,
        components=components,
        params=serialized,
    )
    mac = base64.b64encode(compute_signature(base, SECRET)).decode()
    return {**HEADERS, "signature-input": f"sig1={serialized}", "signature": f"sig1=:{mac}:"}


def _failure(headers: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(SignatureError) as info:
        _verify(headers, now)
    return str(info.value)


def test_each_failure_is_named() -> None:
    _verify(_custom())  # the helper signs correctly: each change below is the only fault
    wrong_secret = base64.b64encode(b"another secret of 32 bytes......").decode()
    messages = {
        "wrong secret": _failure(_signed(secret=wrong_secret)),
        "tampered header": _failure(
            {**_signed(), "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c1"}
        ),
        "too old": _failure(_signed(created=int(NOW) - 11)),
        "future": _failure(_signed(created=int(NOW) + 4)),
        "expired": _failure(_signed(created=int(NOW) - 5, expires=int(NOW) - 1)),
        "keyid": _failure(_signed() | {"x-api-key": "another-key"}),
        "no nonce": _failure(_custom(drop="nonce")),
        "short nonce": _failure(_signed(nonce="abc")),
        "component missing": _failure(
            _custom(components=[c for c in COVERED_COMPONENTS if c != "audiohook-correlation-id"])
        ),
        "no signature-input": _failure({**HEADERS, "signature": VECTOR_SIGNATURE}),
        "no signature": _failure({**HEADERS, "signature-input": VECTOR_INPUT}),
        "alg": _failure(_custom(alg="rsa-pss-sha512")),
    }
    assert "does not match" in messages["wrong secret"]
    assert "does not match" in messages["tampered header"]
    assert "too old" in messages["too old"]
    assert "in the future" in messages["future"]
    assert "expired" in messages["expired"]
    assert "keyid does not match the X-API-KEY" in messages["keyid"]
    assert "missing nonce" in messages["no nonce"]
    assert "nonce too short" in messages["short nonce"]
    assert "does not cover ['audiohook-correlation-id']" in messages["component missing"]
    assert "missing Signature-Input" in messages["no signature-input"]
    assert "missing Signature header" in messages["no signature"]
    assert 'alg must be "hmac-sha256"' in messages["alg"]
    kinds = {m for k, m in messages.items() if k not in ("wrong secret", "tampered header")}
    assert len(kinds) == len(messages) - 2  # every policy failure has its own message
    assert all(SECRET not in m for m in messages.values())


def test_the_secret_as_a_base64_string_instead_of_bytes_never_matches() -> None:
    wrong = _mac_with_key(SECRET.encode())
    right = _mac_with_key(base64.b64decode(SECRET))
    assert f"sig1=:{right}:" == VECTOR_SIGNATURE
    headers = {**_vector_headers(), "signature": f"sig1=:{wrong}:"}
    with pytest.raises(SignatureError, match="does not match"):
        verify(target=TARGET, authority=AUTHORITY, headers=headers, secret_b64=SECRET, now=CREATED)


def test_a_covered_header_missing_from_the_request_is_named() -> None:
    headers = _signed()
    del headers["audiohook-correlation-id"]
    assert "'audiohook-correlation-id' is missing from the request" in _failure(headers)


@pytest.mark.parametrize(
    ("signature_input", "signature", "expected"),
    [
        ("sig1=(", VECTOR_SIGNATURE, "malformed Signature-Input header"),
        (VECTOR_INPUT, "sig1=:not base64!:", "malformed Signature header"),
        (VECTOR_INPUT, "sig2=:AAAA:", "match none"),
        (VECTOR_INPUT, 'sig1="text"', "not a byte sequence"),
        ('sig1="x"', VECTOR_SIGNATURE, "not an inner list"),
        (
            VECTOR_INPUT.replace('"x-api-key")', '"x-api-key" "x-api-key")'),
            VECTOR_SIGNATURE,
            "component twice",
        ),
        (
            VECTOR_INPUT.replace('"x-api-key")', '"x-api-key" "@method")'),
            VECTOR_SIGNATURE,
            "unsupported derived component",
        ),
        (
            VECTOR_INPUT.replace("created=1641013200", "created=1.5"),
            VECTOR_SIGNATURE,
            "missing created",
        ),
    ],
)
def test_malformed_headers_are_named(signature_input: str, signature: str, expected: str) -> None:
    headers = {**HEADERS, "signature-input": signature_input, "signature": signature}
    with pytest.raises(SignatureError, match=expected):
        verify(target=TARGET, authority=AUTHORITY, headers=headers, secret_b64=SECRET, now=CREATED)


def test_policy_limits_are_inclusive_at_their_bounds() -> None:
    _verify(_signed(created=int(NOW) - 10))
    _verify(_signed(created=int(NOW) + 3))


def test_a_bad_configured_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        _verify_with_secret("not*base64")
    with pytest.raises(ValueError, match="empty"):
        _verify_with_secret("")


def _verify_with_secret(secret: str) -> None:
    verify(target=TARGET, authority=AUTHORITY, headers=_signed(), secret_b64=secret, now=NOW)


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("audiohook.example.com:443", "wss", "audiohook.example.com"),
        ("Audiohook.Example.com:443", "https", "audiohook.example.com"),
        ("audiohook.example.com:80", "ws", "audiohook.example.com"),
        ("audiohook.example.com:8443", "wss", "audiohook.example.com:8443"),
        ("audiohook.example.com:80", "wss", "audiohook.example.com:80"),
        ("[::1]:443", "wss", "[::1]"),
        ("[::443]", "wss", "[::443]"),
        ("127.0.0.1", "ws", "127.0.0.1"),
    ],
)
def test_normalize_authority_drops_only_the_default_port(
    host: str, scheme: str, expected: str
) -> None:
    assert normalize_authority(host, scheme) == expected


def test_structured_field_dictionary_subset() -> None:
    parsed = parse_dictionary('a=1, b=?0;x, c=(1.5 tok "s\\"x");p=:AAA=:, d', "X")
    assert parsed["a"] == (1, {})
    assert parsed["b"] == (False, {"x": True})
    assert parsed["d"] == (True, {})
    inner = parsed["c"]
    assert not isinstance(inner, tuple)
    assert inner.items == ((1.5, {}), (Token("tok"), {}), ('s"x', {}))
    assert inner.params == {"p": b"\0\0"}
    assert signature_params(['a"b', "c"], {"n": 2, "t": Token("x"), "f": True}) == (
        '("a\\"b" "c");n=2;t=x;f'
    )
    for bad in ["a=", "a=1,", "A=1", 'a="unterminated', "a=(1 2", "a=?2", ""]:
        with pytest.raises(MalformedFieldError, match="malformed X header"):
            parse_dictionary(bad, "X")
