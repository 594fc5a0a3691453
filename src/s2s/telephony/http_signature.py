"""Genesys AudioHook's HTTP message signature on the WebSocket upgrade (sans-I/O).

Genesys signs the upgrade request following draft-ietf-httpbis-message-signatures-11 (not
RFC 9421, which has no ``@request-target``), with HMAC-SHA256 keyed by the **base64-decoded**
client secret. The signature base is one line per covered component, then the parameters::

    "@request-target": /api/v1/voicebiometrics/ws
    "@authority": audiohook.example.com
    "audiohook-organization-id": d7934305-...
    ...
    "@signature-params": ("@request-target" ... "x-api-key");keyid="...";nonce="...";...

joined with ``\\n`` and no trailing newline. The MAC arrives as ``Signature: sig1=:<base64>:``.

:func:`verify` enforces the reference verifier's policy: all six components covered, ``alg``
``hmac-sha256``, ``keyid`` equal to ``X-API-KEY``, a ``nonce`` of at least 22 characters,
``created`` at most ``max_age_s`` old and at most ``skew_s`` ahead, ``expires`` (if any) not
passed, and a timing-safe MAC comparison. It raises :class:`SignatureError` naming the first
failure (never the secret). Times are Unix epoch seconds (``time.time()``), because ``created``
and ``expires`` are. Whether an unsigned request is acceptable (only for a key with no secret)
is the caller's policy. Both headers are RFC 8941 structured-field dictionaries; the subset
parser below reads them and re-serializes ``@signature-params`` canonically.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from .structured_fields import (
    BareItem,
    InnerList,
    MalformedFieldError,
    parse_dictionary,
    serialize_bare,
    serialize_params,
)

__all__ = [
    "COVERED_COMPONENTS",
    "SignatureError",
    "compute_signature",
    "normalize_authority",
    "sign",
    "signature_base",
    "signature_params",
    "verify",
]

#: The components Genesys signs, in its order; :func:`verify` requires all of them.
COVERED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
ALGORITHM = "hmac-sha256"
MIN_NONCE_LENGTH = 22
_DEFAULT_PORTS = {"wss": "443", "https": "443", "ws": "80", "http": "80"}


class SignatureError(Exception):
    """The request's signature is missing, malformed, outside the policy, or does not match."""


def normalize_authority(host: str, scheme: str) -> str:
    """``@authority``: the Host in lower case, without the scheme's default port."""
    host = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default is not None and host.endswith(":" + default):
        bare = host[: -len(default) - 1]
        if not bare.startswith("[") or bare.endswith("]"):  # not inside an IPv6 literal
            return bare
    return host


def signature_params(components: Sequence[str], params: Mapping[str, BareItem]) -> str:
    """The ``@signature-params`` value: the serialized inner list with its parameters."""
    inner = " ".join(serialize_bare(name) for name in components)
    return f"({inner}){serialize_params(params)}"


def signature_base(
    *,
    target: str,
    authority: str,
    headers: Mapping[str, str],
    components: Sequence[str],
    params: str,
) -> str:
    """The text that is MACed; ``params`` is the :func:`signature_params` serialization."""
    lower = _lower_keys(headers)
    lines = [f'"{name}": {_component_value(name, target, authority, lower)}' for name in components]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


def compute_signature(base: str, secret_b64: str) -> bytes:
    """HMAC-SHA256 of ``base`` keyed with the base64-decoded secret."""
    return hmac.new(_decode_secret(secret_b64), base.encode(), hashlib.sha256).digest()


def sign(
    *,
    target: str,
    authority: str,
    headers: Mapping[str, str],
    secret_b64: str,
    nonce: str,
    created: int,
    expires: int | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """The ``signature-input`` and ``signature`` headers Genesys would add (for tests and clients).

    ``headers`` must hold the four covered AudioHook headers; ``keyid`` is its X-API-KEY.
    """
    lower = _lower_keys(headers)
    params: dict[str, BareItem] = {"keyid": lower.get("x-api-key", ""), "nonce": nonce}
    params |= {"alg": ALGORITHM, "created": created}
    if expires is not None:
        params["expires"] = expires
    serialized = signature_params(COVERED_COMPONENTS, params)
    base = signature_base(
        target=target,
        authority=authority,
        headers=lower,
        components=COVERED_COMPONENTS,
        params=serialized,
    )
    mac = base64.b64encode(compute_signature(base, secret_b64)).decode()
    return {"signature-input": f"{label}={serialized}", "signature": f"{label}=:{mac}:"}


def verify(
    *,
    target: str,
    authority: str,
    headers: Mapping[str, str],
    secret_b64: str,
    now: float,
    max_age_s: float = 10.0,
    skew_s: float = 3.0,
) -> None:
    """Check the upgrade request's signature; raise :class:`SignatureError` if it fails.

    ``target`` is the request target (path and query), ``authority`` the
    :func:`normalize_authority` of the Host, ``headers`` the request headers (looked up
    case-insensitively), ``now`` Unix seconds. A ``secret_b64`` that is not base64 is a
    configuration error (ValueError), not the client's.
    """
    key = _decode_secret(secret_b64)
    lower = _lower_keys(headers)
    label, components, params, mac = _signature_of(lower)
    _check_components(components)
    _check_params(params, lower, now, max_age_s, skew_s)
    base = signature_base(
        target=target,
        authority=authority,
        headers=lower,
        components=components,
        params=signature_params(components, params),
    )
    expected = hmac.new(key, base.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SignatureError(
            f"signature {label} does not match (wrong client secret, or a covered component "
            "was changed on the way)"
        )


def _signature_of(
    headers: Mapping[str, str],
) -> tuple[str, tuple[str, ...], dict[str, BareItem], bytes]:
    """The label, covered components, parameters and MAC of the signature to check."""
    raw_input = headers.get("signature-input")
    raw_signature = headers.get("signature")
    if raw_input is None:
        raise SignatureError("missing Signature-Input header")
    if raw_signature is None:
        raise SignatureError("missing Signature header")
    try:
        inputs = parse_dictionary(raw_input, "Signature-Input")
        signatures = parse_dictionary(raw_signature, "Signature")
    except MalformedFieldError as exc:
        raise SignatureError(str(exc)) from None
    label = next((name for name in inputs if name in signatures), None)
    if label is None:
        raise SignatureError(
            f"Signature labels {sorted(signatures)} match none in Signature-Input {sorted(inputs)}"
        )
    member = inputs[label]
    if not isinstance(member, InnerList):
        raise SignatureError(f"Signature-Input {label} is not an inner list of components")
    components: list[str] = []
    for item, _ in member.items:
        if not isinstance(item, str):
            raise SignatureError(f"Signature-Input {label} lists a non-string component {item!r}")
        components.append(item)
    signature = signatures[label]
    if isinstance(signature, InnerList) or not isinstance(signature[0], bytes):
        raise SignatureError(f"Signature {label} is not a byte sequence (:<base64>:)")
    return label, tuple(components), dict(member.params), signature[0]


def _check_components(components: Sequence[str]) -> None:
    if len(set(components)) != len(components):
        raise SignatureError(f"Signature-Input lists a component twice: {list(components)}")
    missing = [name for name in COVERED_COMPONENTS if name not in components]
    if missing:
        raise SignatureError(f"signature does not cover {missing}")
    for name in components:
        if name.startswith("@") and name not in ("@request-target", "@authority"):
            raise SignatureError(f"unsupported derived component {name!r}")


def _check_params(
    params: Mapping[str, BareItem],
    headers: Mapping[str, str],
    now: float,
    max_age_s: float,
    skew_s: float,
) -> None:
    alg = params.get("alg")
    if alg != ALGORITHM:
        raise SignatureError(f'alg must be "{ALGORITHM}", not {alg!r}')
    keyid = params.get("keyid")
    if not isinstance(keyid, str):
        raise SignatureError("missing keyid parameter")
    api_key = headers.get("x-api-key")
    if api_key is None:
        raise SignatureError("missing X-API-KEY header")
    if not hmac.compare_digest(keyid.encode(), api_key.strip().encode()):
        raise SignatureError("keyid does not match the X-API-KEY header")
    nonce = params.get("nonce")
    if not isinstance(nonce, str):
        raise SignatureError("missing nonce parameter")
    if len(nonce) < MIN_NONCE_LENGTH:
        raise SignatureError(f"nonce too short ({len(nonce)} < {MIN_NONCE_LENGTH} characters)")
    created = params.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise SignatureError("missing created parameter (integer Unix seconds)")
    if now - created > max_age_s:
        raise SignatureError(f"signature too old: created {now - created:.0f} s ago")
    if created - now > skew_s:
        raise SignatureError(f"signature created {created - now:.0f} s in the future")
    expires = params.get("expires")
    if expires is not None:
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise SignatureError("expires parameter is not an integer")
        if now > expires:
            raise SignatureError(f"signature expired {now - expires:.0f} s ago")


def _component_value(name: str, target: str, authority: str, headers: Mapping[str, str]) -> str:
    if name == "@request-target":
        return target
    if name == "@authority":
        return authority.lower()
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"covered header {name!r} is missing from the request")
    return value.strip()


def _decode_secret(secret_b64: str) -> bytes:
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the configured client secret is not valid base64") from None
    if not key:
        raise ValueError("the configured client secret is empty")
    return key


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


# --- RFC 8941 structured fields: the subset signatures use (dictionaries, inner lists) ---
