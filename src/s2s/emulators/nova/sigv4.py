"""SigV4 checks for the emulator: the request signature and the chained event signatures.

Bedrock's bidirectional stream is signed twice over. The HTTP request carries an ordinary SigV4
``Authorization`` header whose payload hash is ``STREAMING-AWS4-HMAC-SHA256-EVENTS``; then every
event-stream message the client sends is an envelope with ``:date`` and ``:chunk-signature``
headers, where each chunk signature covers the previous one::

    string_to_sign = "AWS4-HMAC-SHA256-PAYLOAD" \\n amz_date \\n scope \\n hex(prior signature)
                     \\n sha256hex(encoded :date header) \\n sha256hex(inner message bytes)

The first prior signature is the request's. An envelope with an empty payload ends the stream.
Failures raise :class:`SignatureError` carrying the error type AWS answers with.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from .eventstream import Message, Timestamp, encode_headers

__all__ = [
    "DEFAULT_CREDENTIALS",
    "ChunkVerifier",
    "Credentials",
    "SignatureError",
    "SignedRequest",
    "canonical_request",
    "request_signature",
    "signing_key",
    "verify_request",
]

ALGORITHM = "AWS4-HMAC-SHA256"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: How far a request's x-amz-date may be from the server's clock (AWS allows 5 minutes).
MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


#: The emulator's documented default test credentials (AWS's own documentation example keys).
DEFAULT_CREDENTIALS = Credentials(
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)


class SignatureError(Exception):
    """A signature check failed. ``error_type`` is what AWS puts in ``x-amzn-errortype``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over ``YYYYMMDD``, region, service and ``aws4_request``."""
    key = _hmac(("AWS4" + secret_access_key).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _canonical_path(path: str) -> str:
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return quote(normalized, safe="/")


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(key, safe=""), quote(value, safe=""))
        for key, value in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{key}={value}" for key, value in pairs)


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    """SigV4's canonical request (non-S3 rules: the path is normalised and encoded again)."""
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            _canonical_path(path),
            _canonical_query(query),
            lines,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def request_signature(canonical: str, amz_date: str, scope: str, secret_access_key: str) -> str:
    """Hex signature of a canonical request (``scope`` is ``date/region/service/aws4_request``)."""
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = signing_key(secret_access_key, date, region, service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request whose signature checked out."""

    credentials: Credentials
    signature: str
    region: str
    service: str


def _parse_amz_date(value: str) -> datetime.datetime:
    try:
        return datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise SignatureError(
            "IncompleteSignatureException", f"X-Amz-Date {value!r} is not in ISO 8601 basic format"
        ) from exc


def verify_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    accepted: Mapping[str, Credentials],
    *,
    region: str,
    service: str = "bedrock",
    now: datetime.datetime | None = None,
) -> SignedRequest:
    """Check a request's SigV4 ``Authorization`` against ``accepted`` (by access key id).

    ``headers`` are lower-case; ``host`` falls back to HTTP/2's ``:authority``.
    """
    auth = headers.get("authorization")
    if not auth:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.match(auth.strip())
    if match is None:
        raise SignatureError(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            f"parameters. Authorization={auth}",
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureError(
            "IncompleteSignatureException",
            f"Credential should be scoped to a valid region. Credential={match['credential']}",
        )
    key_id, date, scope_region, scope_service, _ = parts
    credentials = accepted.get(key_id)
    if credentials is None:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if scope_region != region:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    if scope_service != service:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    token = headers.get("x-amz-security-token")
    if token != credentials.session_token:
        raise SignatureError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    amz_date = headers.get("x-amz-date", "")
    signed_at = _parse_amz_date(amz_date)
    if amz_date[:8] != date:
        raise SignatureError(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    current = now or datetime.datetime.now(datetime.UTC)
    if abs(current - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than "
            f"{(current - MAX_CLOCK_SKEW).strftime('%Y%m%dT%H%M%SZ')}",
        )
    signed = match["signed"].split(";")
    values = dict(headers)
    if "host" not in values and ":authority" in values:
        values["host"] = values[":authority"]
    missing = [name for name in signed if name not in values]
    if missing or "host" not in signed:
        raise SignatureError(
            "InvalidSignatureException",
            f"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization; "
            f"missing: {', '.join(missing) or 'host'}",
        )
    payload_hash = values.get("x-amz-content-sha256", EMPTY_SHA256)
    canonical = canonical_request(method, path, query, values, signed, payload_hash)
    scope = f"{date}/{scope_region}/{scope_service}/aws4_request"
    expected = request_signature(canonical, amz_date, scope, credentials.secret_access_key)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return SignedRequest(credentials, expected, scope_region, scope_service)


class ChunkVerifier:
    """Checks the chain of event signatures of one request body, message by message."""

    def __init__(self, request: SignedRequest) -> None:
        self._secret = request.credentials.secret_access_key
        self._region = request.region
        self._service = request.service
        self._prior = request.signature
        self.finished = False

    def verify(self, envelope: Message) -> bytes:
        """Return the envelope's payload (the signed inner message; ``b""`` ends the stream)."""
        if self.finished:
            raise SignatureError(
                "InvalidSignatureException", "an event arrived after the final signed empty event"
            )
        date = envelope.headers.get(":date")
        signature = envelope.headers.get(":chunk-signature")
        if not isinstance(date, Timestamp) or not isinstance(signature, bytes):
            raise SignatureError(
                "InvalidSignatureException",
                "each event must be signed: headers ':date' (timestamp) and ':chunk-signature' "
                f"(bytes) are required, got {sorted(envelope.headers)}",
            )
        if set(envelope.headers) != {":date", ":chunk-signature"}:
            raise SignatureError(
                "InvalidSignatureException",
                f"unexpected envelope headers {sorted(envelope.headers)}",
            )
        amz_date = date.to_datetime().strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{self._region}/{self._service}/aws4_request"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                self._prior,
                hashlib.sha256(encode_headers({":date": date})).hexdigest(),
                hashlib.sha256(envelope.payload).hexdigest(),
            ]
        )
        key = signing_key(self._secret, amz_date[:8], self._region, self._service)
        expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise SignatureError(
                "InvalidSignatureException",
                "The event signature we calculated does not match the signature you provided "
                "(each :chunk-signature must chain from the previous one).",
            )
        self._prior = expected.hex()
        if not envelope.payload:
            self.finished = True
        return envelope.payload
