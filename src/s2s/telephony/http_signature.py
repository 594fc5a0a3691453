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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

__all__ = [
    "COVERED_COMPONENTS",
    "BareItem",
    "InnerList",
    "SignatureError",
    "Token",
    "compute_signature",
    "normalize_authority",
    "parse_dictionary",
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


@dataclass(frozen=True, slots=True)
class Token:
    """A structured-field token (unquoted), as opposed to a string."""

    value: str


type BareItem = str | int | float | bool | bytes | Token
type Item = tuple[BareItem, dict[str, BareItem]]


@dataclass(frozen=True, slots=True)
class InnerList:
    """A structured-field inner list: ``(item item ...)`` and its parameters."""

    items: tuple[Item, ...]
    params: dict[str, BareItem] = field(default_factory=dict)


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
    inner = " ".join(_serialize_bare(name) for name in components)
    return f"({inner}){_serialize_params(params)}"


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
    inputs = parse_dictionary(raw_input, "Signature-Input")
    signatures = parse_dictionary(raw_signature, "Signature")
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

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?([0-9]{1,15})(\.[0-9]{1,3})?")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")


def parse_dictionary(text: str, header: str) -> dict[str, InnerList | Item]:
    """An RFC 8941 dictionary; SignatureError naming ``header`` when it is malformed."""
    return _Parser(text, header).dictionary()


class _Parser:
    def __init__(self, text: str, header: str) -> None:
        self.text, self.header, self.pos = text, header, 0

    def fail(self, what: str) -> NoReturn:
        raise SignatureError(f"malformed {self.header} header: {what} at character {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        found = pattern.match(self.text, self.pos)
        if found is None:
            self.fail(f"expected {what}")
        self.pos = found.end()
        return found

    def dictionary(self) -> dict[str, InnerList | Item]:
        members: dict[str, InnerList | Item] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.match(_KEY, "a key").group()
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.inner_list() if self.peek() == "(" else self.item()
            else:
                members[key] = (True, self.params())
            self.skip(" \t")
            if self.pos == len(self.text):
                return members
            if self.peek() != ",":
                self.fail("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):
                self.fail("trailing ','")
        if not members:
            self.fail("empty dictionary")
        return members

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                self.fail("expected ' ' or ')' in an inner list")

    def item(self) -> Item:
        return self.bare(), self.params()

    def params(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(_KEY, "a parameter key").group()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare()
            params[key] = value
        return params

    def bare(self) -> BareItem:
        char = self.peek()
        if not char:
            self.fail("unexpected end")
        if char == '"':
            return self.string()
        if char == ":":
            try:
                return base64.b64decode(self.match(_BYTES, "a byte sequence")[1], validate=True)
            except binascii.Error:
                self.fail("invalid base64 in a byte sequence")
        if char == "?":
            if self.text[self.pos + 1 : self.pos + 2] not in ("0", "1"):
                self.fail("expected ?0 or ?1")
            self.pos += 2
            return self.text[self.pos - 1] == "1"
        if char in "-0123456789":
            number = self.match(_NUMBER, "a number")
            return float(number.group()) if number[2] else int(number.group())
        return Token(self.match(_TOKEN, "an item").group())

    def string(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while (char := self.peek()) != '"':
            if not char:
                self.fail("unterminated string")
            if char == "\\":
                self.pos += 1
                char = self.peek()
                if char not in ('"', "\\"):
                    self.fail("invalid escape in a string")
            elif not " " <= char <= "~":
                self.fail("invalid character in a string")
            out.append(char)
            self.pos += 1
        self.pos += 1
        return "".join(out)


def _serialize_params(params: Mapping[str, BareItem]) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}"
        for key, value in params.items()
    )


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return f":{base64.b64encode(value).decode()}:"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
