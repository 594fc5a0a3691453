"""HTTP Message Signatures for the AudioHook upgrade request, as Genesys Cloud signs it.

Genesys follows draft-ietf-httpbis-message-signatures-11 (not RFC 9421): HMAC-SHA256 keyed with
the **base64-decoded** client secret over, in this order, ``"@request-target"`` (path and query),
``"@authority"`` (host, without a default port), ``"audiohook-organization-id"``,
``"audiohook-session-id"``, ``"audiohook-correlation-id"`` and ``"x-api-key"``. The signature
parameters are ``keyid`` (the API key), ``nonce`` (18 random bytes in base64), ``alg``,
``created`` (Unix seconds) and ``expires`` (created + 30). The result goes into two headers::

    Signature-Input: sig1=("@request-target" … "x-api-key");keyid="…";nonce="…";
                     alg="hmac-sha256";created=…;expires=…        (one line)
    Signature: sig1=:<base64 MAC>:

:func:`sign` is pure apart from the fresh nonce and clock it uses when none are given;
:func:`audiohook_headers` builds every header of the upgrade request. :class:`SignatureOptions`
holds the deliberate faults a conformance test sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from websockets.headers import build_host
from websockets.uri import parse_uri

__all__ = [
    "COVERED_COMPONENTS",
    "SIGNATURE_ALGORITHM",
    "SIGNATURE_LIFETIME_S",
    "SignatureOptions",
    "SignedHeaders",
    "audiohook_headers",
    "authority",
    "new_nonce",
    "request_target",
    "sign",
    "signature_base",
    "signature_params",
]

#: The components Genesys covers, in the order it covers them.
COVERED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
SIGNATURE_ALGORITHM = "hmac-sha256"
#: ``expires`` - ``created`` in the reference client.
SIGNATURE_LIFETIME_S = 30
#: The signature label.
LABEL = "sig1"


@dataclass(frozen=True, slots=True)
class SignatureOptions:
    """Fixed values and deliberate faults for the upgrade request (conformance tests).

    Every field left at its default gives the request Genesys would send.
    """

    #: Sign with this base64 secret instead of the configured one ("wrong secret").
    secret: str | None = None
    #: Seconds added to the current time for ``created``; -60 gives an expired signature.
    created_offset_s: int = 0
    #: A ``keyid`` other than ``X-API-KEY``.
    keyid: str | None = None
    #: An ``Audiohook-Organization-Id`` header other than ``open.parameters.organizationId``
    #: (signed as sent, so only the mismatch is wrong).
    organization_header: str | None = None
    #: Fixed values (test vectors); fresh ones when ``None``.
    nonce: str | None = None
    created: int | None = None
    expires: int | None = None


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The two signature headers of the upgrade request."""

    signature_input: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {"Signature-Input": self.signature_input, "Signature": self.signature}


def authority(url: str) -> str:
    """``@authority`` of a ws/wss URL: lower-case host, the port only when not the default."""
    uri = parse_uri(url)
    return build_host(uri.host, uri.port, uri.secure)


def request_target(url: str) -> str:
    """``@request-target`` of a ws/wss URL in origin form: path plus ``?query`` when present."""
    return parse_uri(url).resource_name


def new_nonce() -> str:
    """A fresh nonce as the reference client makes it: 18 random bytes, base64 (24 characters)."""
    return base64.b64encode(secrets.token_bytes(18)).decode("ascii")


def signature_params(
    *, keyid: str, nonce: str, created: int, expires: int, label: str | None = None
) -> str:
    """The serialised inner list with its parameters (``label=`` prefixed when given)."""
    components = " ".join(f'"{name}"' for name in COVERED_COMPONENTS)
    params = (
        f'({components});keyid="{keyid}";nonce="{nonce}";alg="{SIGNATURE_ALGORITHM}"'
        f";created={created};expires={expires}"
    )
    return params if label is None else f"{label}={params}"


def signature_base(values: Sequence[str], params: str) -> str:
    """The signature base: one ``"name": value`` line per covered component, then the params.

    ``values`` are the canonical component values in :data:`COVERED_COMPONENTS` order.
    """
    if len(values) != len(COVERED_COMPONENTS):
        raise ValueError(
            f"signature_base needs {len(COVERED_COMPONENTS)} component values, got {len(values)}"
        )
    lines = [f'"{name}": {value}' for name, value in zip(COVERED_COMPONENTS, values, strict=True)]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


def _secret_key(client_secret: str) -> bytes:
    try:
        return base64.b64decode(client_secret, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the Genesys client secret is not valid base64: {exc}") from exc


def sign(
    *,
    url: str,
    organization_id: str,
    session_id: str,
    correlation_id: str,
    api_key: str,
    client_secret: str,
    keyid: str | None = None,
    nonce: str | None = None,
    created: int | None = None,
    expires: int | None = None,
) -> SignedHeaders:
    """Sign an AudioHook upgrade request to ``url``; ``client_secret`` is base64 as stored.

    ``keyid`` defaults to ``api_key``, ``nonce`` to :func:`new_nonce`, ``created`` to now and
    ``expires`` to ``created`` + 30.
    """
    created = int(time.time()) if created is None else created
    expires = created + SIGNATURE_LIFETIME_S if expires is None else expires
    params = signature_params(
        keyid=api_key if keyid is None else keyid,
        nonce=new_nonce() if nonce is None else nonce,
        created=created,
        expires=expires,
    )
    values = (
        request_target(url),
        authority(url),
        organization_id,
        session_id,
        correlation_id,
        api_key,
    )
    base = signature_base(values, params)
    mac = hmac.new(_secret_key(client_secret), base.encode("utf-8"), hashlib.sha256).digest()
    return SignedHeaders(
        signature_input=f"{LABEL}={params}",
        signature=f"{LABEL}=:{base64.b64encode(mac).decode('ascii')}:",
    )


def audiohook_headers(
    url: str,
    *,
    api_key: str,
    client_secret: str | None,
    organization_id: str,
    session_id: str,
    correlation_id: str,
    options: SignatureOptions | None = None,
) -> dict[str, str]:
    """The upgrade request's headers; signed when there is a secret (configured or in options)."""
    opts = options or SignatureOptions()
    organization = organization_id if opts.organization_header is None else opts.organization_header
    headers = {
        "Audiohook-Organization-Id": organization,
        "Audiohook-Session-Id": session_id,
        "Audiohook-Correlation-Id": correlation_id,
        "X-API-KEY": api_key,
    }
    secret = client_secret if opts.secret is None else opts.secret
    if secret is not None:
        created = int(time.time()) + opts.created_offset_s if opts.created is None else opts.created
        signed = sign(
            url=url,
            organization_id=organization,
            session_id=session_id,
            correlation_id=correlation_id,
            api_key=api_key,
            client_secret=secret,
            keyid=opts.keyid,
            nonce=opts.nonce,
            created=created,
            expires=opts.expires,
        )
        headers.update(signed.as_dict())
    return headers
